"""Function records and the registry they are entered in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Function:
    """A built-in scalar function."""

    name: str
    signature: str
    description: str
    example: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: variadic
    return_type: str = "ANY"
    kind: str = "scalar"  # "scalar" | "aggregate" | "analytic"

    def accepts(self, n: int) -> bool:
        """Whether ``n`` arguments fit the signature."""
        return n >= self.min_args and (self.max_args is None or n <= self.max_args)


REGISTRY: dict[str, Function] = {}


def register(
    name: str,
    signature: str,
    description: str,
    example: str,
    min_args: int,
    max_args: int | None,
    return_type: str = "ANY",
    kind: str = "scalar",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator entering an implementation in the registry under ``name``.

    For aggregates and analytic functions ``impl`` is the accumulator class (see aggregates.py).
    A name is registered once: a second registration would silently replace the first one's
    implementation, signature and example, so it is an error.
    """

    def wrap(impl: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY:
            raise ValueError(f"function {name} is registered twice")
        REGISTRY[name] = Function(
            name, signature, description, example, impl, min_args, max_args, return_type, kind
        )
        return impl

    return wrap


def lookup(name: str) -> Function | None:
    """The function called ``name`` (case-insensitive), if any."""
    _load()
    return REGISTRY.get(name.upper())


def all_functions() -> list[Function]:
    """Every registered function, by name."""
    _load()
    return [REGISTRY[name] for name in sorted(REGISTRY)]


_loaded = False


def _load() -> None:
    # Importing the implementation modules registers them; done lazily to keep imports cheap.
    global _loaded
    if not _loaded:
        import importlib

        for module in ("scalar", "ksql", "aggregates"):
            importlib.import_module(f"{__package__}.{module}")

        _loaded = True
