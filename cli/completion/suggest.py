"""What may come next at the cursor: text before the cursor → suggestion kinds (pgcli's ``suggest_type``).

Pure functions, no catalog and no UI: :func:`suggest` looks at the current statement (after the last
``;``), tokenizes it, and returns a list of kinds — :class:`Keyword`, :class:`Relation`, :class:`Column`,
:class:`Function`, :class:`Job`, :class:`Topic`, :class:`PropertyKey`, :class:`PropertyValue`,
:class:`Datatype` — that the completer turns into names. The full statement (also after the cursor) is
scanned for ``FROM``/``JOIN`` relations and their aliases, so columns complete in the SELECT list before
the FROM clause has been typed... as long as it exists somewhere in the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from velo.cli.vocabulary import STATEMENT_STARTERS

# --------------------------------------------------------------------------- suggestion kinds


@dataclass(frozen=True)
class Keyword:
    """Keywords; ``words`` empty means every keyword of the grammar."""

    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableRef:
    """A relation named in the statement, with its alias if any."""

    name: str
    alias: str | None = None

    def ref(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Relation:
    """Names of relations of the given kinds (``stream``, ``table``, ``topic``)."""

    kinds: tuple[str, ...] = ("stream", "table", "topic")


@dataclass(frozen=True)
class Column:
    """Columns of ``relations`` (those of the statement; only the qualified one after ``alias.``)."""

    relations: tuple[TableRef, ...] = ()
    qualified: bool = False


@dataclass(frozen=True)
class Function:
    """Built-in functions (with their signatures as meta text)."""


@dataclass(frozen=True)
class Job:
    """Names of jobs on the server."""


@dataclass(frozen=True)
class Topic:
    """Kafka topic names; ``quoted`` when the cursor is already inside a string literal."""

    quoted: bool = False


@dataclass(frozen=True)
class PropertyKey:
    """Keys of ``WITH (...)``/``SET``; ``relations`` give ``'<name>.<key>'`` forms."""

    relations: tuple[str, ...] = ()
    quoted: bool = False
    catalog: bool = False  # CREATE STREAM x (...) WITH (KAFKA_TOPIC=...) style
    session: bool = False  # SET/UNSET: session keys too (cli.live, auto.offset.reset)


@dataclass(frozen=True)
class PropertyValue:
    """Known values of a property key (``'type' = 'kafka_source'``)."""

    key: str
    quoted: bool = False


@dataclass(frozen=True)
class Datatype:
    """SQL types (column definitions, ``CAST(x AS``, ``x::``)."""


Suggestion = Keyword | Relation | Column | Function | Job | Topic | PropertyKey | PropertyValue | Datatype


# --------------------------------------------------------------------------- tokens

TokKind = Literal["word", "string", "ident", "number", "punct", "op"]


@dataclass(frozen=True)
class Tok:
    kind: TokKind
    text: str

    @property
    def up(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text

    def is_kw(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


_TOKEN_RE = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<lcomment>--[^\n]*)
    | (?P<bcomment>/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:''|[^'])*'?)
    | (?P<ident>"(?:""|[^"])*"?|`[^`]*`?)
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d)?\b|\.\d+)
    | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<op>::|\|\||<>|!=|<=|>=|[-+*/%<>=])
    | (?P<punct>.)
    """,
    re.S | re.X,
)


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind in ("ws", "lcomment", "bcomment") or kind is None:
            continue
        toks.append(Tok(kind, m.group()))  # type: ignore[arg-type]
    return toks


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in "\"`'" and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


# --------------------------------------------------------------------------- cursor context


@dataclass(frozen=True)
class Context:
    """Where the cursor is: the partial word being typed and what precedes it."""

    word: str  # the partial word (or partial string content) being completed
    in_string: bool  # the cursor is inside an unterminated '...'
    qualifier: str | None  # "t" for "t.pri"
    tokens: list[Tok]  # tokens of the statement before the partial word
    statement: str  # the whole statement text (including after the cursor)
    opened: str = ""  # the quote of a quoted identifier being typed ('"' for `"Pri`)


def _split_statement(full_text: str, before: str) -> tuple[str, str]:
    """The current statement's text before the cursor, and all of it (up to its ``;``)."""
    start = _last_separator(before)
    rest = full_text[len(before) :]
    end = _first_separator(rest)
    return before[start:], before[start:] + (rest[:end] if end >= 0 else rest)


def _last_separator(text: str) -> int:
    pos = 0
    for m in _TOKEN_RE.finditer(text):
        if m.lastgroup == "punct" and m.group() == ";":
            pos = m.end()
    return pos


def _first_separator(text: str) -> int:
    for m in _TOKEN_RE.finditer(text):
        if m.lastgroup == "punct" and m.group() == ";":
            return m.start()
    return -1


def _in_comment(before: str) -> bool:
    last = None
    for m in _TOKEN_RE.finditer(before):
        last = m
    if last is None:
        return False
    if last.lastgroup == "lcomment":
        return True
    return last.lastgroup == "bcomment" and not last.group().endswith("*/")


def context_at(full_text: str, before: str) -> Context | None:
    """``None`` when the cursor is in a comment (nothing to complete there)."""
    stmt_before, stmt_all = _split_statement(full_text, before)
    if _in_comment(stmt_before):
        return None
    toks = tokenize(stmt_before)
    # A partial word, an open string or an open quoted identifier right at the cursor is what's typed.
    ends_in_space = bool(stmt_before) and stmt_before[-1].isspace()
    if toks and toks[-1].kind == "string" and not _closed(toks[-1].text, "'"):
        # Inside an unterminated string (even after a space in it): complete the string's content.
        return Context(toks[-1].text[1:].replace("''", "'"), True, None, toks[:-1], stmt_all)
    if toks and not ends_in_space:
        last = toks[-1]
        opened = ""
        if last.kind == "ident" and not _closed(last.text, last.text[0]):
            toks, word, opened = toks[:-1], last.text[1:], last.text[0]
        elif last.kind == "word":
            toks, word = toks[:-1], last.text
        else:
            word = ""
        if len(toks) >= 2 and toks[-1].text == "." and toks[-2].kind in ("word", "ident"):
            return Context(word, False, _unquote(toks[-2].text), toks[:-2], stmt_all, opened)
        return Context(word, False, None, toks, stmt_all, opened)
    return Context("", False, None, toks, stmt_all)


def _closed(text: str, quote: str) -> bool:
    if len(text) < 2 or not text.endswith(quote):
        return False
    if quote != "'":
        return True
    # 'it''s' is closed; 'it'' is not: count the quotes after the opening one.
    body = text[1:]
    return (len(body) - len(body.rstrip("'"))) % 2 == 1


# --------------------------------------------------------------------------- relations in a statement

_NOT_ALIAS = {
    "WHERE", "JOIN", "LEFT", "RIGHT", "INNER", "FULL", "OUTER", "ON", "GROUP", "WINDOW", "EMIT", "LIMIT",
    "WITH", "HAVING", "ORDER", "AS", "WITHIN", "CROSS", "SELECT", "FROM", "UNION", "PARTITION",
}  # fmt: skip


def relations_in(statement: str) -> tuple[TableRef, ...]:
    """``FROM``/``JOIN`` relations of a statement with their aliases, in order."""
    toks = tokenize(statement)
    refs: list[TableRef] = []
    for i, t in enumerate(toks):
        if not t.is_kw("FROM", "JOIN") or i + 1 >= len(toks):
            continue
        nxt = toks[i + 1]
        if nxt.kind not in ("word", "ident", "string") or nxt.is_kw("SELECT", "BEGINNING"):
            continue
        name = _unquote(nxt.text)
        alias = None
        j = i + 2
        if j < len(toks) and toks[j].is_kw("AS"):
            j += 1
        if j < len(toks) and toks[j].kind in ("word", "ident") and toks[j].up not in _NOT_ALIAS:
            alias = _unquote(toks[j].text)
        refs.append(TableRef(name, alias))
    return tuple(refs)


def sink_name(statement: str) -> str | None:
    """The name a job statement creates (``CREATE STREAM x``, ``START JOB x``, ``INSERT INTO x``)."""
    toks = tokenize(statement)
    for i, t in enumerate(toks[:-1]):
        if t.is_kw("STREAM", "TABLE", "JOB", "INTO") and i + 1 < len(toks):
            nxt = toks[i + 1]
            if nxt.kind in ("word", "ident") and not nxt.is_kw("AS", "IF"):
                return _unquote(nxt.text)
    return None


# --------------------------------------------------------------------------- the rules

_SHOW_WORDS = (
    "JOBS", "QUERIES", "STATUS", "METRICS", "STREAMS", "TABLES", "TOPICS", "FUNCTIONS", "PROPERTIES",
)  # fmt: skip
_AFTER_RELATION = (
    "AS", "WHERE", "JOIN", "LEFT JOIN", "INNER JOIN", "RIGHT JOIN", "FULL OUTER JOIN", "GROUP BY",
    "WINDOW", "HAVING", "EMIT CHANGES", "EMIT FINAL", "LIMIT", "WITH",
)  # fmt: skip
_AFTER_JOINED = ("ON", "AS")
_AFTER_CONDITION = (
    "AND", "OR", "NOT", "IS NULL", "IS NOT NULL", "IN", "LIKE", "BETWEEN", "GROUP BY", "WINDOW",
    "HAVING", "EMIT CHANGES", "EMIT FINAL", "LIMIT", "WITH",
)  # fmt: skip
_AFTER_SELECT_ITEM = ("AS", "FROM", "PRIMARY KEY")
_EXPR_KEYWORDS = ("CASE", "CAST", "NOT", "NULL", "TRUE", "FALSE", "INTERVAL", "EXISTS")
_WINDOW_TYPES = ("TUMBLING", "HOPPING", "SESSION", "SLIDING")
_OPERATOR_TEXTS = {"=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*", "/", "%", "||"}
_CLAUSES = (
    "SELECT", "FROM", "JOIN", "ON", "WHERE", "GROUP", "HAVING", "WINDOW", "EMIT", "LIMIT", "WITH",
    "WITHIN", "VALUES",
)  # fmt: skip


def _expr(relations: tuple[TableRef, ...], extra: tuple[str, ...] = ()) -> list[Suggestion]:
    return [Column(relations), Function(), Keyword(_EXPR_KEYWORDS + extra)]


def _open_paren(toks: list[Tok]) -> int | None:
    """Index of the innermost unclosed ``(`` before the cursor."""
    depth = 0
    for i in range(len(toks) - 1, -1, -1):
        t = toks[i]
        if t.text == ")":
            depth += 1
        elif t.text == "(":
            if depth == 0:
                return i
            depth -= 1
    return None


def _clause(toks: list[Tok], start: int = 0) -> tuple[str | None, int]:
    """The last clause keyword at the cursor's paren depth (from ``start``), and its index."""
    depth = 0
    for i in range(len(toks) - 1, start - 1, -1):
        t = toks[i]
        if t.text == ")":
            depth += 1
        elif t.text == "(":
            depth -= 1
        elif depth == 0 and t.kind == "word" and t.up in _CLAUSES:
            return t.up, i
    return None, -1


def _with_props(ctx: Context, paren: int) -> list[Suggestion]:
    """Inside ``WITH (``: a key after ``(``/``,``, a value after ``key =``."""
    toks = ctx.tokens
    relations = tuple(r.name for r in relations_in(ctx.statement))
    sink = sink_name(ctx.statement)
    names = relations + ((sink,) if sink and sink not in relations else ())
    catalog = _is_catalog_ddl(ctx.statement)
    tail = toks[paren + 1 :]
    # Position since the last ',' at this depth.
    depth = 0
    since: list[Tok] = []
    for t in tail:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        if t.text == "," and depth == 0:
            since = []
        else:
            since.append(t)
    if not since:
        return [PropertyKey(names, quoted=ctx.in_string, catalog=catalog)]
    if since[-1].text == "=" and len(since) == 2:
        key = _unquote(since[0].text)
        if key.lower() in ("kafka_topic", "topic", "topic.name") or key.lower().endswith((".topic", ".topic.name")):
            return [Topic(quoted=ctx.in_string)]
        return [PropertyValue(key, quoted=ctx.in_string)]
    return []


def _is_catalog_ddl(statement: str) -> bool:
    """``CREATE STREAM x (cols) WITH (...)`` without ``AS SELECT``: the ksqlDB-style keys apply."""
    toks = tokenize(statement)
    if not toks or not toks[0].is_kw("CREATE"):
        return False
    return not any(t.is_kw("SELECT") for t in toks)


def suggest(full_text: str, before: str | None = None) -> list[Suggestion]:
    """Suggestion kinds for the cursor at ``len(before)`` in ``full_text`` (``before`` defaults to all)."""
    before = full_text if before is None else before
    ctx = context_at(full_text, before)
    if ctx is None:
        return []
    toks = ctx.tokens
    relations = relations_in(ctx.statement)
    first = toks[0].up if toks else ""

    # alias.column
    if ctx.qualifier is not None:
        q = ctx.qualifier.lower()
        chosen = tuple(r for r in relations if r.ref().lower() == q or r.name.lower() == q)
        return [Column(chosen or (TableRef(ctx.qualifier),), qualified=True)]

    paren = _open_paren(toks)
    if paren is not None:
        opener = toks[paren - 1] if paren >= 1 else None
        if opener is not None and opener.is_kw("WITH"):
            return _with_props(ctx, paren)

    if ctx.in_string:
        return _string_context(ctx)

    if not toks:
        return [Keyword(STATEMENT_STARTERS)]

    prev = toks[-1]
    prev2 = toks[-2] if len(toks) >= 2 else None
    p = prev.up

    # Type positions: CAST(x AS |, x::|, column definitions of CREATE STREAM x (a |, b |)
    if p == "::":
        return [Datatype()]
    if p == "AS" and paren is not None and paren >= 1 and toks[paren - 1].is_kw("CAST"):
        return [Datatype()]
    if paren is not None and _is_column_definitions(toks, paren):
        since = _since_comma(toks, paren)
        if len(since) == 1:
            return [Datatype()]
        if len(since) >= 2:
            return [Keyword(("KEY", "PRIMARY KEY"))]
        return []

    # Statement heads
    if len(toks) == 1 or (prev2 is not None and prev2.is_kw("OR") and first == "CREATE"):
        heads = {
            "CREATE": ("STREAM", "TABLE", "OR REPLACE"),
            "DROP": ("STREAM", "TABLE"),
            "STOP": ("JOB",),
            "PAUSE": ("JOB",),
            "RESUME": ("JOB",),
            "START": ("JOB",),
            "SHOW": _SHOW_WORDS,
            "INSERT": ("INTO",),
            "REPLACE": ("STREAM", "TABLE"),
        }
        if p in heads:
            return [Keyword(heads[p])]
        if p == "TERMINATE":
            return [Job()]
        if p == "DESCRIBE":
            return [Relation(), Job(), Keyword(("FUNCTION",))]
        if p == "EXPLAIN":
            return [Job(), Keyword(("SELECT", "CREATE STREAM", "CREATE TABLE", "START JOB"))]
        if p == "PRINT":
            return [Topic()]
        if p in ("SET", "UNSET"):
            return [PropertyKey(session=True)]
    if p == "JOB" and first in ("STOP", "PAUSE", "RESUME"):
        return [Job()]
    if p in ("STATUS", "METRICS") and first == "SHOW":
        return [Job()]
    if p == "FUNCTION" and first == "DESCRIBE":
        return [Function()]
    if p == "OR" and first == "CREATE" and len(toks) == 2:
        return [Keyword(("REPLACE",))]
    if first == "DROP" and p in ("STREAM", "TABLE"):
        return [Relation(("stream",) if p == "STREAM" else ("table",)), Keyword(("IF EXISTS",))]
    if first == "DROP" and p == "EXISTS":
        return [Relation(("stream", "table"))]
    if first == "START" and len(toks) == 3 and prev2 is not None and prev2.is_kw("JOB"):
        return [Keyword(("AS",))]
    if first == "CREATE" and p == "AS":
        return [Keyword(("SELECT",))]
    if first == "START" and p == "AS":
        return [Keyword(("SELECT",))]
    if first == "PRINT" and len(toks) >= 2:
        return [Keyword(("FROM BEGINNING", "INTERVAL", "LIMIT"))]

    # Fixed successors anywhere
    if p == "EMIT":
        return [Keyword(("CHANGES", "FINAL"))]
    if p == "WINDOW":
        return [Keyword(_WINDOW_TYPES)]
    if p in ("GROUP", "ORDER", "PARTITION"):
        return [Keyword(("BY",))]
    if p in ("FROM", "JOIN"):
        if p == "FROM" and prev2 is not None and prev2.is_kw("PRINT"):
            return [Topic()]
        return [Relation()]
    if p == "INTO":
        return [Relation(("stream", "topic"))]
    if p in ("LEFT", "RIGHT", "FULL", "INNER") and not (prev2 is not None and prev2.text == "("):
        return [Keyword(("JOIN", "OUTER JOIN"))]
    if p == "OUTER":
        return [Keyword(("JOIN",))]
    if p == "WITH":
        return []
    if p == "IS":
        return [Keyword(("NULL", "NOT NULL"))]
    if p in ("LIMIT", "INTERVAL", "WITHIN"):
        return []
    if p == "KAFKA_TOPIC":
        return []

    # Inside a function call's parentheses or OVER (...) / window spec.
    if paren is not None and paren >= 1:
        opener = toks[paren - 1]
        if opener.is_kw("OVER"):
            if p in ("BY", ","):
                return _expr(relations)
            return [Keyword(("PARTITION BY", "ORDER BY", "ROWS BETWEEN"))]
        if opener.is_kw(*_WINDOW_TYPES):
            if p in ("(", ","):
                return [Column(relations), Keyword(("SIZE", "ADVANCE BY", "GRACE PERIOD"))]
            return [Keyword(("SECONDS", "MINUTES", "HOURS", "MILLISECONDS", "DAYS", "GRACE PERIOD"))]
        if opener.is_kw("IN", "EXISTS") and p == "(":
            return [Keyword(("SELECT",))]

    clause, at = _clause(toks, (paren + 1) if paren is not None else 0)

    # After a complete term: what may follow depends on the clause.
    star_item = prev.text == "*" and (prev2 is None or prev2.is_kw("SELECT") or prev2.text in (",", "."))
    term_end = prev.kind in ("word", "ident", "number", "string") or prev.text == ")" or star_item
    if clause in ("FROM", "JOIN") and term_end:
        since = toks[at + 1 :]
        words_after = [t for t in since if t.kind in ("word", "ident", "string")]
        if 1 <= len(words_after) <= 2 and all(t.text not in (",", "(") for t in since):
            if clause == "JOIN":
                return [Keyword(_AFTER_JOINED)]
            return [Keyword(_AFTER_RELATION)]
    if clause == "SELECT" and term_end and not _expects_operand(prev):
        if p == "AS":
            return []
        if prev2 is not None and prev2.is_kw("AS"):
            return [Keyword(("FROM", "PRIMARY KEY"))]
        return [Keyword((*_AFTER_SELECT_ITEM, "OVER") if prev.text == ")" else _AFTER_SELECT_ITEM)]
    if clause in ("WHERE", "ON", "HAVING") and term_end and not _expects_operand(prev):
        extra = ("WITHIN",) if clause == "ON" else ()
        return [Keyword(_AFTER_CONDITION + extra)]
    if clause == "GROUP" and term_end and p != "BY":
        return [Keyword(("WINDOW", "HAVING", "EMIT CHANGES", "EMIT FINAL", "LIMIT", "WITH"))]
    if clause == "EMIT" and term_end:
        return [Keyword(("LIMIT", "WITH"))]
    if clause == "WINDOW" and prev.text == ")":
        return [Keyword(("GRACE PERIOD", "GROUP BY", "HAVING", "EMIT CHANGES", "EMIT FINAL", "LIMIT"))]

    # Expression positions.
    if clause in ("SELECT", "WHERE", "ON", "HAVING", "GROUP") or paren is not None:
        if clause == "SELECT" and p == "SELECT":
            return [*_expr(relations, ("DISTINCT", "*"))]
        return _expr(relations)

    return [Keyword()]


def _expects_operand(tok: Tok) -> bool:
    """True when ``tok`` needs something after it (an operator or a keyword like AND)."""
    return tok.kind == "word" and tok.up in {
        "SELECT", "WHERE", "AND", "OR", "NOT", "ON", "BY", "HAVING", "WHEN", "THEN", "ELSE", "CASE",
        "BETWEEN", "IN", "LIKE", "DISTINCT", "IS",
    }  # fmt: skip


def _since_comma(toks: list[Tok], paren: int) -> list[Tok]:
    depth = 0
    since: list[Tok] = []
    for t in toks[paren + 1 :]:
        if t.text in ("(", "<"):
            depth += 1
        elif t.text in (")", ">"):
            depth -= 1
        if t.text == "," and depth == 0:
            since = []
        else:
            since.append(t)
    return since


def _is_column_definitions(toks: list[Tok], paren: int) -> bool:
    """``CREATE [OR REPLACE] STREAM|TABLE name (`` — the parentheses hold column definitions."""
    return (
        paren >= 3
        and toks[0].is_kw("CREATE")
        and toks[paren - 2].is_kw("STREAM", "TABLE")
        and toks[paren - 1].kind in ("word", "ident")
    )


def _string_context(ctx: Context) -> list[Suggestion]:
    toks = ctx.tokens
    if not toks:
        return []
    first = toks[0].up
    prev = toks[-1]
    if first == "PRINT" and len(toks) == 1:
        return [Topic(quoted=True)]
    if first in ("SET", "UNSET") and len(toks) == 1:
        return [PropertyKey(quoted=True, session=True)]
    if first == "SET" and prev.text == "=" and len(toks) == 3:
        return [PropertyValue(_unquote(toks[1].text), quoted=True)]
    if prev.text == "=" and len(toks) >= 2 and toks[-2].up in ("KAFKA_TOPIC",):
        return [Topic(quoted=True)]
    if prev.text == "=" and len(toks) >= 2 and toks[-2].up in ("VALUE_FORMAT", "KEY_FORMAT"):
        return [PropertyValue("value_format", quoted=True)]
    if prev.is_kw("FROM", "JOIN"):
        return [Topic(quoted=True)]
    return []
