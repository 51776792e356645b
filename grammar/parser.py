"""The Velo SQL parser: velo.lark's LALR(1) tables, built once by Lark and cached, driven here.

Lark compiles the grammar (``parser='lalr'``, ``propagate_positions=True``, strict: a conflict is an
error) into action tables. Building them takes a few hundred milliseconds, so they are cached as
JSON keyed by a hash of the grammar and the installed Lark's version — next to the module when
that directory is writable, else in the temp directory — and a warm import never even imports Lark.

The tables are run by ``_drive`` below rather than by ``Lark.parse``: one loop that tokenizes
(lexer.py says what a token is), shifts, and reduces by calling ``transformer.Builder`` directly,
with a parallel stack of offsets so that every node gets an exact span. It is the same LR
automaton as Lark's at a fraction of the cost (docs/grammar.md has the figures), and it is
iterative: no input can exhaust the recursion limit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import ast
from .errors import SqlError, SqlSyntaxError
from .lexer import (
    COMMENT,
    DOTTED,
    END,
    MAX_DEPTH,
    OP,
    OPERATORS,
    QNAME,
    SPECIAL_WORDS,
    TOKEN_RE,
    WORD,
    Token,
    other_token,
    too_deep,
    word_kind,
    word_token,
)  # fmt: skip
from .messages import describe_syntax_error
from .transformer import Builder

GRAMMAR_PATH = Path(__file__).with_name("velo.lark")
_FORMAT = 1  # bump when the cached table layout changes

Callback = Callable[[Builder, list[Any], Any, Any], Any]
Rule = tuple[str, int, Callback | None, bool, tuple[int, ...]]
_FIRST = (0,)  # the splice of a left-recursive list: its first child is the list so far


class Tables:
    """The LALR automaton: per state, terminal/nonterminal → shift target (>= 0) or ~rule."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.rows: list[dict[str, int]] = raw["rows"]
        self.start_state: int = raw["start"]
        self.end_state: int = raw["end"]
        self.keywords: dict[str, str] = raw["keywords"]
        self.terminals: list[str] = raw["terminals"]
        self.rules: list[Rule] = []
        # the name of each rule's node (its alias, else its origin): what Lark's tree calls it
        self.rule_names: list[str] = [r[2] for r in raw["rules"]]
        for origin, size, name, expand1, splice in raw["rules"]:
            callback = None if name.startswith("_") else getattr(Builder, name, None)
            if callback is None and not name.startswith("_") and not (expand1 and size == 1):
                raise RuntimeError(f"velo.lark rule {name} has no Builder method")
            self.rules.append((origin, size, callback, expand1, tuple(splice)))
        self.chains: dict[tuple[int, int, str], int] = {}
        # per state, what a keyword-like word is there (lexer.word_kind; "" when the next
        # character decides), filled as words are met; `special` are the words that need it
        self.word_kinds: list[dict[str, str]] = [{} for _ in self.rows]
        self.special = frozenset(self.keywords) | SPECIAL_WORDS
        # origin of each one-child pass-through rule (`?rule: x`), None for the others
        self.units: list[str | None] = [
            r[0] if r[1] == 1 and r[3] and not r[4] else None for r in self.rules
        ]


def _build_raw(grammar: str) -> dict[str, Any]:
    """Compile velo.lark with Lark into plain, JSON-ready tables."""
    from lark import Lark
    from lark.lexer import Lexer

    class _TablesOnly(Lexer):
        """Stands in for Lark's lexer, which is never run (grammar/lexer.py is)."""

        def __init__(self, conf: Any) -> None:
            pass

        def lex(self, *args: Any) -> Any:  # pragma: no cover - never called
            raise NotImplementedError

    lark = Lark(
        grammar, parser="lalr", lexer=_TablesOnly, propagate_positions=True,
        keep_all_tokens=True, maybe_placeholders=False, strict=True,
    )  # fmt: skip
    table = lark.parser.parser.parser.parse_table
    rules = list(lark.rules)
    index = {id(r): i for i, r in enumerate(rules)}
    rows: list[dict[str, int]] = [{} for _ in range(len(table.states))]
    for state, actions in table.states.items():
        for symbol, (action, arg) in actions.items():
            rows[state][symbol] = arg if action.name == "Shift" else ~index[id(arg)]
    return {
        "format": _FORMAT,
        "rows": rows,
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "keywords": {
            t.pattern.value.lower(): t.name
            for t in lark.terminals
            if t.pattern.type == "str" and t.pattern.value.replace("_", "").isalpha()
        },
        "terminals": sorted(t.name for t in lark.terminals),
        "rules": [
            [
                r.origin.name,
                len(r.expansion),
                r.alias or r.origin.name,
                bool(r.options.expand1) and not r.alias,
                [i for i, s in enumerate(r.expansion) if not s.is_term and s.name.startswith("_")],
            ]
            for r in rules
        ],
    }


_VERSION_LINE = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.M)


def lark_version() -> str:
    """The version of the Lark that would build the tables, found without importing Lark.

    Lark states it as a literal in its ``__init__.py`` (what ``lark.__version__`` reports), so
    that line is read; ``importlib.metadata`` says the same but costs about 20 ms to import,
    a third of a warm ``import velo.grammar``, and is only the fallback.
    """
    spec = importlib.util.find_spec("lark")
    if spec is None or spec.origin is None:
        return "absent"  # no cached tables match: building them says that Lark is missing
    try:
        found = _VERSION_LINE.search(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    if found:
        return found[1]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lark")
    except PackageNotFoundError:
        return "unknown"


def cache_key(grammar: str, lark: str) -> str:
    """The name of the tables of ``grammar`` as Lark ``lark`` builds them (and of this layout).

    The Lark version is part of it: Lark's table construction (state numbering, rule order,
    what ``?rule``/``_rule`` mean in its tree) may change between versions, and tables built by
    one are never driven with another's expectations after an upgrade or a downgrade.
    """
    return hashlib.sha256(f"{_FORMAT}|lark {lark}|{grammar}".encode()).hexdigest()[:20]


def _default_cache_dirs() -> Iterator[Path]:
    yield Path(__file__).parent / "__pycache__"
    import tempfile  # only when the package directory has no cache (saves its import time)

    yield Path(tempfile.gettempdir())


def _cache_paths(key: str, dirs: Iterable[Path] | None) -> Iterator[Path]:
    name = f"velo-grammar-{key}.json"
    for folder in _default_cache_dirs() if dirs is None else dirs:
        yield folder / name


def load_tables(lark: str | None = None, cache_dirs: Iterable[Path] | None = None) -> Tables:
    """The tables from the cache, or freshly built (and then cached) when the grammar or Lark changed.

    ``lark`` (the installed Lark's version unless given) and ``cache_dirs`` (the package's
    ``__pycache__``, then the temp directory, unless given) are there for the tests.
    """
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    lark = lark_version() if lark is None else lark
    dirs = None if cache_dirs is None else list(cache_dirs)
    key = cache_key(grammar, lark)
    for path in _cache_paths(key, dirs):
        try:
            raw = json.loads(path.read_bytes())
            if raw.get("format") == _FORMAT and raw.get("lark") == lark:
                return Tables(raw)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    raw = _build_raw(grammar)
    raw["lark"] = lark  # recorded, and checked on reading: a file is only used for its own Lark
    data = json.dumps(raw, separators=(",", ":")).encode()
    for path in _cache_paths(key, dirs):
        try:  # write-then-rename: a concurrent reader never sees half a file
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            break
        except OSError:
            continue
    return Tables(raw)


TABLES = load_tables()


class _Diagnose(Exception):
    """Raised by a fast run at a syntax error: run again, keeping what is needed to describe it."""


def _drive(text: str, t: Tables, diagnose: bool = False) -> list[ast.Statement]:
    """Run the LALR automaton over ``text``; raise SqlSyntaxError at the first error.

    Hot loop: a reduction of a one-child ``?rule`` only changes the top state (the value and its
    offsets stay), which is most reductions of an expression, and a run of them is replayed once
    per (state below, top state, lookahead) and remembered in ``t.chains``; any other one-child
    reduction replaces the top value in place; the rest pop their children and push the result.
    The end of the input goes through ``_reduce``, the same steps written plainly.

    An LALR automaton may reduce a little before it notices an error, so the stack at the error
    no longer shows what could have come. The fast run therefore only signals an error (any
    error); the ``diagnose`` run keeps a copy of the stack from before each token, counts the
    statements, and describes the error from that copy.
    """
    rows, rules, units, chains = t.rows, t.rules, t.units, t.chains
    keywords, word_kinds, special = t.keywords, t.word_kinds, t.special
    builder = Builder(text)
    # the top state is kept in `state` as well as on the stack: read at every step, it is a
    # local variable rather than a subscript
    state = t.start_state
    stack = [state]
    values: list[Any] = []
    # where each value of the stack came from: the token itself for a token (offsets at [2] and
    # [3]), (None, None, start, end) for a reduction — one list, one append per step
    places: list[tuple[Any, ...]] = []
    prev: Token | None = None
    last: Token | None = None
    statement, in_statement = 0, False
    saved = stack

    depth = 0
    try:
        # the tokenizer, inlined (see lexer.py): a call per token is a tenth of the time. Groups
        # by number (WORD, OP, QNAME), the commonest first; a word or operator group ends where
        # the match does, so m.end() and the length give its offsets without a tuple.
        for m in TOKEN_RE.finditer(text):
            group = m.lastindex
            if group == WORD:
                raw = m[WORD]
                end_pos = m.end()
                start_pos = end_pos - len(raw)
                low = raw.lower()
                if low not in special:  # not a keyword anywhere: an identifier
                    kind = "IDENT"
                    tok = Token((kind, low, start_pos, end_pos))
                else:  # what this word is in this state, remembered per state
                    kinds = word_kinds[state]
                    known = kinds.get(low)
                    if known is None:
                        known = kinds[low] = word_kind(low, rows[state], keywords) or ""
                    if not known:  # the next character decides
                        tok = word_token(text, raw, start_pos, end_pos, rows[state], keywords)
                        kind = tok[0]
                    else:
                        kind = known
                        tok = Token((kind, low if kind == "IDENT" else raw, start_pos, end_pos))
            elif group == OP:
                raw = m[OP]
                end_pos = m.end()
                start_pos = end_pos - len(raw)
                if raw in "([":
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise too_deep(text, start_pos)
                elif raw in ")]":
                    depth -= 1
                kind = OPERATORS[raw]
                tok = Token((kind, raw, start_pos, end_pos))
            elif group == QNAME:  # `t.col`
                raw = m[QNAME]
                end_pos = m.end()
                kind = "QNAME"
                tok = Token((kind, raw.lower(), end_pos - len(raw), end_pos))
            elif group == END:  # trailing white space: the end of the text
                break
            elif group == COMMENT:
                continue
            elif group == DOTTED:  # a word before a dot that is not `t.col` or `t.*`
                raw = m[DOTTED]
                start_pos, end_pos = m.span(DOTTED)
                tok = word_token(text, raw, start_pos, end_pos, rows[state], keywords)
                kind = tok[0]
            else:
                name = m.lastgroup or ""  # every match has a group; "" keeps mypy content
                tok = other_token(text, name, m[name], m.start(name))
                kind = tok[0]
            if diagnose:
                saved = stack[:]
                prev, last = last, tok  # `prev` names the place of an error: "after FROM"
                if kind == "SEMICOLON":
                    in_statement = False
                elif not in_statement:
                    statement, in_statement = statement + 1, True
            while True:
                try:  # (a try costs nothing until it catches; dict.get would be a call per step)
                    act = rows[state][kind]
                except KeyError:  # `from None`: a syntax error, not a failure while handling one
                    if not diagnose:
                        raise _Diagnose from None
                    raise describe_syntax_error(text, tok, prev, _viable(t, saved), builder) from None
                if act >= 0:
                    state = act
                    stack.append(act)
                    values.append(tok)
                    places.append(tok)
                    break
                if units[~act] is not None:
                    # a run of pass-through reductions depends only on the two top states and
                    # the lookahead: replay it once, then remember where it ends
                    key = (stack[-2], state, kind)
                    top = chains.get(key)
                    if top is None:
                        top = chains[key] = _unit_chain(t, stack[-2], state, kind)
                    state = stack[-1] = top
                    continue
                # reduce(rules[~act]), inlined: this loop is where parsing time goes
                origin, size, callback, expand1, splice = rules[~act]
                if size == 1 and not splice:
                    # one child: its place (token or reduction) already spans the new value, and
                    # the value, the place and the state are replaced where they stand
                    if callback is not None:
                        place = places[-1]
                        values[-1] = callback(builder, values[-1:], place[2], place[3])
                    elif not expand1:
                        values[-1] = values[-1:]  # a `_rule` or EBNF helper: spliced later
                    state = stack[-1] = rows[stack[-2]][origin]
                    continue
                if size:
                    kids = values[-size:]
                    start, end = places[-size][2], places[-1][3]
                    if start is None or end is None:
                        start, end = _outer(places[-size:])
                    del stack[-size:], values[-size:], places[-size:]
                    if splice:
                        if splice == _FIRST:  # a left-recursive list: extend it in place
                            first = kids[0]
                            first.extend(kids[1:])
                            kids = first
                        else:
                            kids = _splice(kids, splice)
                    if callback is None:
                        value = kids[0] if expand1 and len(kids) == 1 else kids
                    else:
                        value = callback(builder, kids, start, end)
                else:
                    start = end = None
                    value = [] if callback is None else callback(builder, [], None, None)
                state = rows[stack[-1]][origin]
                stack.append(state)
                values.append(value)
                places.append((None, None, start, end))
        end_tok = Token(("$END", "", len(text), len(text)))
        saved, prev = stack[:], last
        while True:
            end_act = rows[stack[-1]].get("$END")
            if end_act is None:
                if not diagnose:
                    raise _Diagnose
                raise describe_syntax_error(text, end_tok, prev, _viable(t, saved), builder)
            _reduce(rules[~end_act], stack, values, places, rows, builder)
            if stack[-1] == t.end_state:
                return values[-1]  # type: ignore[no-any-return]
    except SqlError as exc:
        if not diagnose:  # only the diagnose run counts statements: let it raise this error
            raise _Diagnose from exc
        if exc.statement is None:
            exc.statement = max(statement, 1)
        raise


def _reduce(
    rule: Rule, stack: list[int], values: list[Any], places: list[tuple[Any, ...]],
    rows: list[dict[str, int]], builder: Builder,
) -> None:  # fmt: skip
    """One reduction, the plain way (at the end of the input; the loop in _drive inlines it).

    Not a closure in _drive: the variables a closure shares become cells there, and every use
    of them in the hot loop would be slower.
    """
    origin, size, callback, expand1, splice = rule
    if size:
        kids = values[-size:]
        start, end = places[-size][2], places[-1][3]
        if start is None or end is None:
            start, end = _outer(places[-size:])
        del stack[-size:], values[-size:], places[-size:]
        if splice:
            kids = _splice(kids, splice)
    else:
        kids, start, end = [], None, None
    if expand1 and len(kids) == 1:
        value = kids[0]
    elif callback is None:
        value = kids  # a `_rule` or EBNF helper: spliced into its parent
    else:
        value = callback(builder, kids, start, end)
    stack.append(rows[stack[-1]][origin])
    values.append(value)
    places.append((None, None, start, end))


def _outer(places: list[tuple[Any, ...]]) -> tuple[int | None, int | None]:
    """First start and last end among children (empty optional children have neither)."""
    start = end = None
    for p in places:  # loops, not next(<generator>): no generator object to make and resume
        if p[2] is not None:
            start = p[2]
            break
    for p in reversed(places):
        if p[3] is not None:
            end = p[3]
            break
    return start, end


def _splice(kids: list[Any], splice: tuple[int, ...]) -> list[Any]:
    """Children with the lists of `_rule` children inlined (Lark's `_rule` convention)."""
    if splice == _FIRST:  # a left-recursive list: extend it in place (it is not shared)
        flat: list[Any] = kids[0]
        flat.extend(kids[1:])
        return flat
    if len(splice) == 1:  # every other splice of velo.lark: one list among the children
        i = splice[0]
        flat = kids[:i]
        flat += kids[i]
        flat += kids[i + 1 :]
        return flat
    flat = []
    for i, kid in enumerate(kids):
        if i in splice:
            flat.extend(kid)
        else:
            flat.append(kid)
    return flat


def _unit_chain(t: Tables, below: int, top: int, kind: str) -> int:
    while True:
        act = t.rows[top].get(kind)
        if act is None or act >= 0:
            return top
        origin = t.units[~act]
        if origin is None:
            return top
        top = t.rows[below][origin]


def _viable(t: Tables, stack: list[int]) -> set[str]:
    """The terminals that can really come next.

    An LALR row may list a terminal only because states were merged: reducing would reach a
    state that cannot take it. Replaying the reductions on a copy of the stack sorts those out,
    so that an error lists what the user could actually have written.
    """
    result = set()
    for name in t.rows[stack[-1]]:
        if not (name.isupper() or name == "$END"):
            continue
        states = list(stack)
        while True:
            act = t.rows[states[-1]].get(name)
            if act is None:
                break
            if act >= 0:
                result.add(name)
                break
            origin, size = t.rules[~act][:2]
            if size:
                del states[-size:]
            states.append(t.rows[states[-1]][origin])
            if name == "$END" and states[-1] == t.end_state:
                result.add(name)
                break
    return result


def parse(text: str) -> list[ast.Statement]:
    """Every statement of ``text`` (``;``-separated; empty statements are skipped).

    Raises SqlSyntaxError — and nothing else — when the text is not Velo SQL.
    """
    if not isinstance(text, str):
        raise SqlSyntaxError(f"Expected SQL text, got {type(text).__name__}")
    try:
        try:
            return _drive(text, TABLES)
        except _Diagnose:
            return _drive(text, TABLES, diagnose=True)
    except SqlError:
        raise
    except RecursionError:
        raise SqlSyntaxError("The statement is nested too deeply") from None
    except Exception as exc:  # a parser bug must still reach the user as a SQL error
        raise SqlSyntaxError(f"Internal parser error ({type(exc).__name__}: {exc})") from exc


def parse_statement(text: str) -> ast.Statement:
    """Exactly one statement (a trailing ``;`` is allowed)."""
    statements = parse(text)
    if len(statements) == 1:
        return statements[0]
    if not statements:
        raise SqlSyntaxError("Expected a statement, found nothing", line=1, column=1,
                             statement=1, expected=["a statement"], token="")  # fmt: skip
    second = statements[1].span
    raise SqlSyntaxError(
        f"Expected one statement, found {len(statements)}",
        line=second.line if second else None, column=second.column if second else None,
        statement=2, expected=["one statement"], token=None,
    )  # fmt: skip
