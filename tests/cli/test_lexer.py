"""The pygments lexer: keywords and functions from the grammar, strings, comments, annotations."""

from __future__ import annotations

from pygments.token import Comment, Keyword, Name, Number, Operator, String, Token
from velo.cli.lexer import VeloLexer
from velo.cli.vocabulary import function_names, keywords


def tokens(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in VeloLexer().get_tokens(text) if v.strip()]


def test_keywords_and_functions_come_from_the_grammar() -> None:
    from velo.grammar.keywords import FUNCTION_NAMES, KEYWORDS

    assert {k.upper() for k in KEYWORDS} == set(keywords())
    assert {f.upper() for f in FUNCTION_NAMES} == set(function_names())


def test_select_statement_tokens() -> None:
    toks = tokens("SELECT symbol, AVG(price) FROM trades WHERE side = 'BUY' LIMIT 5;")
    assert (Keyword, "SELECT") in toks
    assert (Name.Function, "AVG") in toks
    assert (Name, "symbol") in toks
    assert (String.Single, "'BUY'") in toks
    assert (Number, "5") in toks
    assert (Operator, "=") in toks


def test_case_insensitive_and_function_vs_keyword() -> None:
    toks = tokens("select left(s, 3) from a left join b")
    assert toks[0] == (Keyword, "select")
    assert (Name.Function, "left") in toks
    assert (Keyword, "left") in toks  # LEFT JOIN stays a keyword


def test_comments_annotations_durations_and_quoted_identifiers() -> None:
    toks = tokens('-- @name: big_buys\n-- plain\n/* block */ SELECT "Price", 5s FROM t')
    assert toks[0] == (Comment.Special, "-- @name: big_buys")
    assert toks[1] == (Comment.Single, "-- plain")
    assert toks[2][0] in Comment
    assert (Name.Variable, '"Price"') in toks
    assert (Number, "5s") in toks


def test_unterminated_string_while_typing_does_not_error() -> None:
    toks = list(VeloLexer().get_tokens("SELECT 'abc"))
    assert all(t is not Token.Error for t, _ in toks)
    assert (String.Single, "'abc") in [(t, v.rstrip()) for t, v in toks]


def test_types_are_keyword_types() -> None:
    toks = tokens("CREATE STREAM s (a STRING, b BIGINT) WITH (KAFKA_TOPIC='s')")
    assert (Keyword.Type, "STRING") in toks and (Keyword.Type, "BIGINT") in toks
