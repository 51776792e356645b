"""What completion knows about the server: streams, tables, topics, jobs, functions (from ``GET /catalog``).

Immutable, so the background refresher can swap a new one in with a single attribute assignment while
the prompt reads the old one. Parsing tolerates a partial or older catalog (missing sections are empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str = ""


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    signature: str = ""
    description: str = ""


@dataclass(frozen=True)
class Catalog:
    """A snapshot of the server's names."""

    streams: dict[str, tuple[CatalogColumn, ...]] = field(default_factory=dict)
    tables: dict[str, tuple[CatalogColumn, ...]] = field(default_factory=dict)
    topics: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    functions: dict[str, FunctionInfo] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any) -> Catalog:
        if not isinstance(doc, dict):
            return cls()
        return cls(
            streams=_relations(doc.get("streams")),
            tables=_relations(doc.get("tables")),
            topics=tuple(_names(doc.get("topics"))),
            jobs=tuple(_names(doc.get("jobs"))),
            functions=_functions(doc.get("functions")),
        )

    def columns_of(self, relation: str) -> tuple[CatalogColumn, ...]:
        """Columns of a stream or table, matched case-insensitively (identifiers fold to lower case)."""
        for group in (self.streams, self.tables):
            if relation in group:
                return group[relation]
            low = relation.lower()
            for name, cols in group.items():
                if name.lower() == low:
                    return cols
        return ()

    def relation_kind(self, name: str) -> str | None:
        low = name.lower()
        if any(n.lower() == low for n in self.streams):
            return "stream"
        if any(n.lower() == low for n in self.tables):
            return "table"
        if any(n.lower() == low for n in self.topics):
            return "topic"
        return None


def _names(items: Any) -> Iterable[str]:
    for item in items or []:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict) and item.get("name"):
            yield str(item["name"])


def _relations(items: Any) -> dict[str, tuple[CatalogColumn, ...]]:
    out: dict[str, tuple[CatalogColumn, ...]] = {}
    for item in items or []:
        if isinstance(item, str):
            out[item] = ()
        elif isinstance(item, dict) and item.get("name"):
            cols = []
            for c in item.get("columns") or []:
                if isinstance(c, dict) and c.get("name"):
                    cols.append(CatalogColumn(str(c["name"]), str(c.get("type") or "")))
                elif isinstance(c, str):
                    cols.append(CatalogColumn(c))
            out[str(item["name"])] = tuple(cols)
    return out


def _functions(items: Any) -> dict[str, FunctionInfo]:
    out: dict[str, FunctionInfo] = {}
    for item in items or []:
        if isinstance(item, str):
            out[item.upper()] = FunctionInfo(item.upper())
        elif isinstance(item, dict) and item.get("name"):
            name = str(item["name"]).upper()
            out[name] = FunctionInfo(name, str(item.get("signature") or ""), str(item.get("description") or ""))
    return out
