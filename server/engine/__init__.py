"""The streaming engine: AST → plan → generated batch functions, behind the Processor contract.

Public surface (drivers — job runtime, transient queries — use nothing else):
``compile_select``, ``CompiledQuery`` (``.inputs``, ``.plan``, ``.processor(mode)``, ``.explain()``),
``Processor``, ``Emitted``, ``RowEvent``.
"""

from .compile import CompiledQuery, InputSpec, compile_select
from .processor import Emitted, Processor, RecordErrors, RowEvent

__all__ = ["CompiledQuery", "Emitted", "InputSpec", "Processor", "RecordErrors", "RowEvent", "compile_select"]
