"""The SELECT compiler, in parts; ``velo.server.engine.compile`` is its public face.

model.py (what a compiled query is) · relations.py (FROM/JOIN relations) · codegen.py (generated
source and its namespace) · sqlutil.py (AST helpers) · base.py (name resolution, output shape) ·
filter_project.py · aggregate.py · over.py · join.py (one planner per operator family) ·
processors.py (the small processors and post-join adapters the planners hand out).
"""
