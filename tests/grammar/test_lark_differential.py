"""parser.py against Lark's own ``Lark.parse``, same grammar (velo.lark, LALR), on the fuzz corpus.

parser.py drives Lark's parse tables with a loop of its own (inlined reductions, memoised chains
of one-child rules, splicing of ``_rule`` children, a parallel stack of offsets). Here the same
inputs go through Lark's own parser and tree building (``propagate_positions``), fed the tokens
that grammar/lexer.py defines: Lark calls a custom lexer with its parser state, and that lexer
classifies each word with ``word_token`` and the state's own row, as parser.py does (inlined,
with fast paths). Lark's own regex lexer is not used: Velo's keywords depend on the parser state
in ways it cannot express (RESERVED words, ``POSITION(``, ``INTERVAL '``; see lexer.py).

Compared, exactly:

* the parse tree: parser.py's loop run with callbacks that build plain ``(rule, children,
  start, end)`` nodes against Lark's tree, node for node, token for token, offset for offset;
* the AST: ``parse()`` against ``transformer.Builder`` applied to Lark's tree, with every node's
  span (spans are not part of AST equality, so they are compared apart);
* rejection: the same token (or the end of the input) at the same line and column, and the same
  set of terminals that could have come there (``_viable``, against Lark's interactive parser
  fed the same tokens, copied before the offending one); tokenizer errors alike.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from lark import Lark, Tree
from lark import Token as LarkToken
from lark.exceptions import UnexpectedToken
from lark.lexer import Lexer
from velo.grammar import SqlError, SqlSyntaxError, ast, parse, parser, to_sql
from velo.grammar.lexer import (
    COMMENT,
    DOTTED,
    END,
    MAX_DEPTH,
    OP,
    OPERATORS,
    QNAME,
    TOKEN_RE,
    WORD,
    Token,
    line_col,
    other_token,
    too_deep,
    word_token,
)  # fmt: skip
from velo.grammar.parser import GRAMMAR_PATH, TABLES, Tables
from velo.grammar.transformer import Builder

from .strategies import statements
from .test_errors import ERRORS
from .test_fuzz import CORPUS, _inputs

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


class _VeloTokens(Lexer):
    """grammar/lexer.py's tokens for Lark's parser: every word classified by ``word_token`` with
    the row of the state Lark's parser is in (the general path that parser.py inlines)."""

    __future_interface__ = 1  # lex() gets the parser state (Lark 1.2: True; Lark 1.3: 1)

    def __init__(self, conf: Any) -> None:
        pass

    def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[LarkToken]:
        text = lexer_state.text
        text = getattr(text, "text", text)  # Lark 1.3 wraps it in a TextSlice
        states = parser_state.parse_conf.states
        depth = 0
        for m in TOKEN_RE.finditer(text):
            group = m.lastindex
            if group == END:
                break
            if group == COMMENT:
                continue
            row = states[parser_state.position]
            if group in (WORD, DOTTED):
                start, end = m.span(group)
                tok = word_token(text, m[group], start, end, row, KEYWORDS)
            elif group == OP:
                raw = m[OP]
                start, end = m.span(OP)
                if raw in "([":
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise too_deep(text, start)
                elif raw in ")]":
                    depth -= 1
                tok = Token((OPERATORS[raw], raw, start, end))
            elif group == QNAME:
                start, end = m.span(QNAME)
                tok = Token(("QNAME", m[QNAME].lower(), start, end))
            else:
                name = m.lastgroup or ""
                tok = other_token(text, name, m[name], m.start(name))
            line, column = line_col(text, tok.start)
            end_line, end_column = line_col(text, tok.end)
            yield LarkToken(
                tok.type, tok.value, start_pos=tok.start, end_pos=tok.end, line=line, column=column,
                end_line=end_line, end_column=end_column,
            )  # fmt: skip


# the options parser.py builds its tables with; the lexer is the one above
LARK = Lark(
    GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", lexer=_VeloTokens, propagate_positions=True,
    keep_all_tokens=True, maybe_placeholders=False, strict=True,
)  # fmt: skip
# keyword text -> terminal, from Lark's terminals (parser.py derives TABLES.keywords the same way)
KEYWORDS = {
    t.pattern.value.lower(): t.name
    for t in LARK.terminals
    if t.pattern.type == "str" and t.pattern.value.replace("_", "").isalpha()
}

FUZZ_COUNT = 4_000  # Lark's parse and interactive re-runs: about 2 ms an input
Node = tuple[str, list[Any], int | None, int | None]


def _tree_tables() -> Tables:
    """TABLES (the cached tables parse() runs on), with every callback building a plain node."""
    t = copy.copy(TABLES)

    def node(name: str) -> Any:
        return lambda builder, kids, start, end: (name, list(kids), start, end)

    t.rules = [
        (origin, size, None if callback is None else node(name), expand1, splice)
        for (origin, size, callback, expand1, splice), name in zip(TABLES.rules, TABLES.rule_names, strict=True)
    ]
    t.chains, t.word_kinds = {}, [{} for _ in t.rows]  # not shared with TABLES
    return t


TREE_TABLES = _tree_tables()


def _plain(value: Any) -> Any:
    """Lark's tree as the plain nodes of _tree_tables (tokens as parser.py's Token tuples)."""
    if isinstance(value, LarkToken):
        return (value.type, str(value), value.start_pos, value.end_pos)
    # iterative: a long left-recursive chain (a + b + ... ) is as deep as it is long
    out: dict[int, Node] = {}
    stack: list[tuple[Tree[Any], bool]] = [(value, False)]
    while stack:
        tree, done = stack.pop()
        if not done:
            stack.append((tree, True))
            stack.extend((c, False) for c in reversed(tree.children) if isinstance(c, Tree))
            continue
        kids = [out.pop(id(c)) if isinstance(c, Tree) else _plain(c) for c in tree.children]
        meta = tree.meta
        start, end = (None, None) if meta.empty else (meta.start_pos, meta.end_pos)
        out[id(tree)] = (str(tree.data), kids, start, end)
    return out[id(value)]


def _build(value: Any, builder: Builder) -> Any:
    """Lark's tree through transformer.Builder, bottom-up and left to right, as parser.py calls it."""
    if isinstance(value, LarkToken):
        return Token((value.type, str(value), value.start_pos, value.end_pos))
    out: dict[int, Any] = {}
    stack: list[tuple[Tree[Any], bool]] = [(value, False)]
    while stack:
        tree, done = stack.pop()
        if not done:
            stack.append((tree, True))
            stack.extend((c, False) for c in reversed(tree.children) if isinstance(c, Tree))
            continue
        kids = [out.pop(id(c)) if isinstance(c, Tree) else _build(c, builder) for c in tree.children]
        meta = tree.meta
        start, end = (None, None) if meta.empty else (meta.start_pos, meta.end_pos)
        out[id(tree)] = getattr(Builder, str(tree.data))(builder, kids, start, end)
    return out[id(value)]


def _spans(node: Any, path: str = "") -> Iterator[tuple[str, tuple[int, int] | None]]:
    """(where, (start, end)) of every AST node, depth first."""
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _spans(item, f"{path}[{i}]")
    elif isinstance(node, ast.Node):
        yield path or type(node).__name__, (node.span.start_pos, node.span.end_pos) if node.span else None
        for f in dataclasses.fields(node):
            if f.name != "span":
                yield from _spans(getattr(node, f.name), f"{path}.{f.name}")


def _lark_viable(text: str) -> tuple[LarkToken | None, set[str]]:
    """Lark's view of where ``text`` fails: the offending token (None: the end of the input) and
    the terminals Lark's interactive parser accepts in the state before it."""
    ip = LARK.parse_interactive(text)
    tokens = ip.iter_parse()
    before = ip.copy(deepcopy_values=False)
    while True:
        try:
            next(tokens)  # feeds the token before this one, then reads this one
        except StopIteration:
            break
        except UnexpectedToken as exc:
            return exc.token, _accepts(before)
        before = ip.copy(deepcopy_values=False)
    before = ip.copy(deepcopy_values=False)  # feeding reduces in place before it fails
    try:
        ip.feed_eof()
    except UnexpectedToken:
        return None, _accepts(before)
    raise AssertionError(f"Lark's interactive parser accepts what Lark.parse refused: {text!r}")


def _accepts(ip: Any) -> set[str]:
    # InteractiveParser.accepts() feeds '$END' as an ordinary token, which never reaches the end
    # state: whether the input may end here is asked with is_end, as Lark.parse does at the end
    accepts = set(ip.accepts())
    end = ip.copy(deepcopy_values=False)
    end.parser_state.parse_conf = copy.copy(end.parser_state.parse_conf)
    end.parser_state.parse_conf.callbacks = {}
    try:
        end.parser_state.feed_token(LarkToken("$END", ""), is_end=True)
        accepts.add("$END")
    except UnexpectedToken:
        accepts.discard("$END")
    return accepts


def _ours_tree(text: str) -> Node | SqlSyntaxError:
    try:
        return parser._drive(text, TREE_TABLES)  # type: ignore[return-value]
    except parser._Diagnose:
        pass
    try:
        parser._drive(text, TREE_TABLES, diagnose=True)
    except SqlSyntaxError as exc:
        return exc
    raise AssertionError(f"the diagnose run accepts what the fast run refused: {text!r}")


@contextlib.contextmanager
def _recording_viable() -> Iterator[list[set[str]]]:
    """What parser._viable answers while in the block (the diagnose run asks it once, at the error)."""
    seen: list[set[str]] = []
    real = parser._viable

    def recording(t: Tables, stack: list[int]) -> set[str]:
        seen.append(real(t, stack))
        return seen[-1]

    parser._viable = recording  # looked up at each call: _drive sees this one
    try:
        yield seen
    finally:
        parser._viable = real


def _parse_error(text: str) -> SqlError:
    try:
        parse(text)
    except SqlError as exc:
        return exc
    raise AssertionError(f"parse() accepts what its own loop refused: {text!r}")


def compare(text: str) -> str:
    """Checks parser.py against Lark on ``text``; returns how it went ("parsed", "refused", ...)."""
    with _recording_viable() as seen:
        ours = _ours_tree(text)
    try:
        theirs: Any = _plain(LARK.parse(text))
    except UnexpectedToken as exc:
        theirs = exc
    except SqlSyntaxError as exc:  # grammar/lexer.py refused a character, inside Lark's parse
        theirs = exc

    if isinstance(theirs, (UnexpectedToken, SqlSyntaxError)):
        assert isinstance(ours, SqlSyntaxError), f"Lark refuses ({theirs}), parser.py accepts: {text!r}"
        if isinstance(theirs, UnexpectedToken):
            token, accepts = _lark_viable(text)
            end = token is None or token.type == "$END"
            at = len(text) if end else token.start_pos
            assert end or token.start_pos == theirs.token.start_pos, text
            assert (ours.line, ours.column) == line_col(text, at), (
                f"parser.py stops at {ours.line}:{ours.column}, Lark at {line_col(text, at)}: {text!r}"
            )
            assert ours.token == ("" if end else text[token.start_pos : token.end_pos]), text
            assert seen == [accepts], f"what may come there: parser.py {seen}, Lark {accepts}: {text!r}"
            how = "refused"
        else:
            assert (ours.message, ours.line, ours.column) == (theirs.message, theirs.line, theirs.column), text
            assert not seen, text
            how = "tokenizer"
        # parse() itself (the AST callbacks on): this error, or one the callbacks raised before it
        error = _parse_error(text)
        assert (error.line, error.column) <= (ours.line, ours.column), (error, ours, text)
        if (error.line, error.column) == (ours.line, ours.column):
            assert error.message == ours.message, text
        return how
    assert not isinstance(ours, SqlSyntaxError), f"parser.py refuses ({ours}), Lark accepts: {text!r}"
    assert ours == theirs, f"the trees differ: {text!r}"

    # the whole parse: parse() against Builder applied to Lark's tree
    try:
        expected: Any = _build(LARK.parse(text), Builder(text))
    except SqlError as exc:
        expected = exc
    try:
        got: Any = parse(text)
    except SqlError as exc:
        got = exc
    if isinstance(expected, SqlError):
        assert isinstance(got, SqlError), f"Builder refuses Lark's tree ({expected}), parse() accepts: {text!r}"
        assert (got.message, got.line, got.column) == (expected.message, expected.line, expected.column), text
        return "invalid"
    assert not isinstance(got, SqlError), f"parse() refuses ({got}), Builder accepts Lark's tree: {text!r}"
    assert got == expected, text
    assert list(_spans(got)) == list(_spans(expected)), f"the spans differ: {text!r}"
    return "parsed"


def test_the_keywords_are_larks_terminals() -> None:
    assert TABLES.keywords == KEYWORDS


def test_the_corpus_parses_exactly_as_lark_parses_it() -> None:
    outcomes = {text: compare(text) for text in CORPUS}
    # the fuzzer's seeds: the valid examples (every statement kind), then test_errors.py's errors
    errors = {sql for sql, *_ in ERRORS}
    assert all(outcomes[text] == "parsed" for text in CORPUS if text not in errors), outcomes
    assert all(outcomes[text] != "parsed" for text in errors), outcomes
    # the same in other cases (keywords, folded names, `T.Col`), where the grammar allows it
    for text in CORPUS:
        compare(text.upper())
        compare(text.swapcase())


DEEP = "SELECT " + "(" * MAX_DEPTH + "-a" + ")" * MAX_DEPTH + " FROM t"


@pytest.mark.parametrize(
    ("text", "how"),
    [
        (DEEP, "parsed"),  # as deep as brackets may go
        (DEEP.replace("-a", "-a[1]"), "tokenizer"),  # one deeper
        ("SELECT a FROM t WHERE " + " + ".join(["a"] * 120), "parsed"),  # a long left-recursive chain
        ("", "parsed"),
        (";;", "parsed"),
        ("SELECT a FROM t /* never closed", "tokenizer"),
        ("SELECT a FROM t WHERE b = 1 AND", "refused"),  # at the end of the input
        ('SELECT T.Col, "Q"."R", t . c, (a).b, x.* FROM T t', "parsed"),
    ],
)
def test_edges_parse_exactly_as_lark_parses_them(text: str, how: str) -> None:
    assert compare(text) == how


def test_fuzz_inputs_are_accepted_refused_and_parsed_as_lark_does() -> None:
    outcomes: dict[str, int] = {}
    for text in _inputs(FUZZ_COUNT):  # the first of test_fuzz.py's 20,000 (same seed)
        how = compare(text)
        outcomes[how] = outcomes.get(how, 0) + 1
    # every path was taken, and the commoner ones often
    assert outcomes.get("parsed", 0) > 100 and outcomes.get("refused", 0) > 2_000, outcomes
    assert outcomes.get("tokenizer", 0) > 100 and outcomes.get("invalid", 0) > 0, outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements)
def test_generated_statements_parse_exactly_as_lark_parses_them(stmt: ast.Statement) -> None:
    assert compare(to_sql(stmt)) == "parsed"
