"""Turn suggestion kinds into completions: names from the catalog matched against the word being typed.

Matching (pgcli's): a case-insensitive prefix match ranks first, then a substring, then a fuzzy
subsequence (``tsym`` finds ``trade_symbol``). Keywords follow the case of what was typed (``sel`` →
``select``, ``SEL``/empty → ``SELECT``). Identifiers that would not survive case folding or contain other
characters are double-quoted. :func:`candidates` is UI-free; :class:`VeloCompleter` adapts it to
prompt_toolkit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from velo.cli.completion.catalog import Catalog
from velo.cli.completion.suggest import (
    Column,
    Datatype,
    Function,
    Job,
    Keyword,
    PropertyKey,
    PropertyValue,
    Relation,
    Suggestion,
    Topic,
    context_at,
    suggest,
)
from velo.cli.vocabulary import (
    CATALOG_PROPERTY_KEYS,
    JOB_PROPERTY_KEYS,
    PROPERTY_VALUES,
    RELATION_PROPERTY_KEYS,
    TYPES,
    function_names,
    keywords,
)

_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

# Lower is better: columns and relations before functions before keywords at equal match quality.
_KIND_RANK = {
    "column": 0,
    "stream": 1,
    "table": 1,
    "topic": 2,
    "job": 1,
    "property": 0,
    "value": 0,
    "function": 3,
    "type": 3,
    "keyword": 4,
}

SESSION_KEYS = ("cli.live", "auto.offset.reset")


@dataclass(frozen=True)
class Candidate:
    """One completion before it becomes a prompt_toolkit ``Completion``."""

    text: str  # inserted text
    display: str
    meta: str
    kind: str
    score: tuple[int, int, int, str] = (0, 0, 0, "")


def quote_ident(name: str) -> str:
    """``Price`` → ``"Price"``, ``trades-v2`` → ``"trades-v2"``, ``price`` → ``price``."""
    if _PLAIN_IDENT.match(name) and name.upper() not in _reserved():
        return name
    return '"' + name.replace('"', '""') + '"'


_RESERVED_CACHE: set[str] = set()


def _reserved() -> set[str]:
    if not _RESERVED_CACHE:
        # Only words that would clearly break a statement if left unquoted.
        _RESERVED_CACHE.update({"SELECT", "FROM", "WHERE", "GROUP", "JOIN", "ON", "AS", "WITH", "LIMIT"})
    return _RESERVED_CACHE


def match_score(word: str, name: str) -> tuple[int, int] | None:
    """(quality, position) or ``None``: prefix 0, substring 1, fuzzy 2; compared case-insensitively."""
    if not word:
        return (0, 0)
    w, n = word.lower(), name.lower().strip('"')
    if n.startswith(w):
        return (0, 0)
    pos = n.find(w)
    if pos >= 0:
        return (1, pos)
    # Fuzzy: every character of the word in order; spread penalised.
    at, first = 0, -1
    for ch in w:
        at = n.find(ch, at)
        if at < 0:
            return None
        if first < 0:
            first = at
        at += 1
    return (2, at - first)


def _keyword_case(word: str, kw: str) -> str:
    return kw.lower() if word and word[0].islower() else kw


def _kw_candidates(words: Iterable[str], typed: str) -> Iterator[Candidate]:
    for kw in words:
        yield Candidate(_keyword_case(typed, kw), kw, "keyword", "keyword")


def candidates(suggestions: Iterable[Suggestion], catalog: Catalog, word: str) -> list[Candidate]:
    """Every matching candidate for ``word``, best first, without duplicates."""
    raw: list[Candidate] = []
    for s in suggestions:
        raw.extend(_for_suggestion(s, catalog, word))
    seen: set[tuple[str, str]] = set()
    scored: list[Candidate] = []
    for c in raw:
        key = (c.text.lower(), c.kind if c.kind != "keyword" else "kw")
        if key in seen:
            continue
        m = match_score(word, c.display)
        if m is None:
            continue
        seen.add(key)
        scored.append(
            Candidate(c.text, c.display, c.meta, c.kind, (m[0], _KIND_RANK.get(c.kind, 5), m[1], c.display.lower()))
        )
    scored.sort(key=lambda c: c.score)
    return scored


def _for_suggestion(s: Suggestion, cat: Catalog, word: str) -> Iterator[Candidate]:
    if isinstance(s, Keyword):
        yield from _kw_candidates(s.words or keywords(), word)
    elif isinstance(s, Relation):
        if "stream" in s.kinds:
            for name in cat.streams:
                yield Candidate(quote_ident(name), name, "stream", "stream")
        if "table" in s.kinds:
            for name in cat.tables:
                yield Candidate(quote_ident(name), name, "table", "table")
        if "topic" in s.kinds:
            known = {n.lower() for n in (*cat.streams, *cat.tables)}
            for name in cat.topics:
                if name.lower() not in known:
                    yield Candidate(quote_ident(name), name, "topic", "topic")
    elif isinstance(s, Column):
        rels = s.relations
        multi = len(rels) > 1 and not s.qualified
        for ref in rels:
            for col in cat.columns_of(ref.name):
                meta = f"{col.type} · {ref.name}" if col.type else ref.name
                text = quote_ident(col.name)
                if multi:
                    # Several relations: offer the qualified form too, so joins stay unambiguous.
                    yield Candidate(f"{quote_ident(ref.ref())}.{text}", f"{ref.ref()}.{col.name}", meta, "column")
                yield Candidate(text, col.name, meta, "column")
    elif isinstance(s, Function):
        names = set(function_names()) | set(cat.functions)
        for name in sorted(names):
            info = cat.functions.get(name)
            meta = info.signature if info and info.signature else "function"
            yield Candidate(_keyword_case(word, name), name, meta, "function")
    elif isinstance(s, Job):
        for name in cat.jobs:
            yield Candidate(quote_ident(name), name, "job", "job")
    elif isinstance(s, Topic):
        for name in cat.topics:
            text = f"{name}'" if s.quoted else f"'{name}'"
            yield Candidate(text, name, "topic", "topic")
    elif isinstance(s, PropertyKey):
        yield from _property_keys(s)
    elif isinstance(s, PropertyValue):
        key = s.key.lower().rsplit(".", 1)[-1] if s.key.lower() not in PROPERTY_VALUES else s.key.lower()
        for value in PROPERTY_VALUES.get(key, ()):
            text = f"{value}'" if s.quoted else f"'{value}'"
            yield Candidate(text, value, f"{s.key} value", "value")
    elif isinstance(s, Datatype):
        for t in TYPES:
            yield Candidate(_keyword_case(word, t), t, "type", "type")


def _property_keys(s: PropertyKey) -> Iterator[Candidate]:
    def wrap(key: str) -> str:
        return f"{key}'" if s.quoted else f"'{key}'"

    if s.catalog and not s.quoted:
        for key in CATALOG_PROPERTY_KEYS:
            yield Candidate(key, key, "catalog property", "property")
    keys = list(JOB_PROPERTY_KEYS)
    if s.session:
        keys = list(SESSION_KEYS) + keys
    for key in keys:
        yield Candidate(wrap(key), key, "property", "property")
    for rel in s.relations:
        for key in RELATION_PROPERTY_KEYS:
            full = f"{rel}.{key}"
            yield Candidate(wrap(full), full, f"{rel} property", "property")


class VeloCompleter(Completer):
    """prompt_toolkit completer over a swappable :class:`Catalog` (set by the background refresher)."""

    def __init__(self, catalog: Catalog | None = None, max_items: int = 200) -> None:
        self.catalog = catalog or Catalog()
        self.max_items = max_items

    def set_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog  # one attribute store: atomic for the prompt thread

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        full, before = document.text, document.text_before_cursor
        if before.lstrip().startswith("\\"):
            return  # meta commands take file names/URLs: nothing useful to offer
        ctx = context_at(full, before)
        if ctx is None:
            return
        catalog = self.catalog
        found = candidates(suggest(full, before), catalog, ctx.word)
        # Replace exactly what was typed: the partial word, with its opening quote if it has one.
        start = -(len(ctx.word) + len(ctx.opened))
        if ctx.in_string:
            start = -len(ctx.word.replace("'", "''"))
        for c in found[: self.max_items]:
            yield Completion(c.text, start_position=start, display=c.display, display_meta=c.meta)
