"""The function registry: every built-in with its signature, one-line doc, example and implementation.

The registry feeds validation (arity), the compiler (implementations bound into generated code),
``SHOW FUNCTIONS`` / ``DESCRIBE FUNCTION`` and the shell's completion (through ``GET /catalog``).
"""

from __future__ import annotations

from .registry import REGISTRY, Function, all_functions, lookup

__all__ = ["REGISTRY", "Function", "all_functions", "lookup"]
