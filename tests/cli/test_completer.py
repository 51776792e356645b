"""Matching suggestions against the catalog, and the prompt_toolkit adapter."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from velo.cli.completion.catalog import Catalog
from velo.cli.completion.completer import VeloCompleter, candidates, match_score, quote_ident
from velo.cli.completion.refresh import CatalogRefresher
from velo.cli.completion.suggest import Column, Function, Job, Keyword, PropertyKey, Relation, TableRef, Topic

CATALOG = Catalog.from_json(
    {
        "streams": [
            {"name": "trades", "columns": [{"name": "symbol", "type": "STRING"}, {"name": "price", "type": "DOUBLE"}]},
            {"name": "ohlc_1m", "columns": [{"name": "symbol", "type": "STRING"}, {"name": "open", "type": "DOUBLE"}]},
        ],
        "tables": [{"name": "instruments", "columns": [{"name": "sector", "type": "STRING"}]}],
        "topics": ["trades", "orders-v2", "Audit"],
        "jobs": ["big_buys", "ohlc_1m"],
        "functions": [{"name": "avg", "signature": "AVG(x DOUBLE) -> DOUBLE", "description": "mean"}],
    }
)


def texts(sugg: list, word: str = "") -> list[str]:  # type: ignore[type-arg]
    return [c.text for c in candidates(sugg, CATALOG, word)]


def complete(text: str, cursor: int | None = None) -> list[str]:
    doc = Document(text, cursor if cursor is not None else len(text))
    return [c.text for c in VeloCompleter(CATALOG).get_completions(doc, CompleteEvent())]


def test_match_quality_order() -> None:
    assert match_score("", "x") == (0, 0)
    assert match_score("sym", "symbol") == (0, 0)
    assert match_score("bol", "symbol")[0] == 1  # type: ignore[index]
    assert match_score("sbl", "symbol")[0] == 2  # type: ignore[index]
    assert match_score("zz", "symbol") is None


def test_relations_with_kinds_and_quoting() -> None:
    out = texts([Relation()])
    assert out[:3] == ["ohlc_1m", "trades", "instruments"] or set(out[:3]) == {"ohlc_1m", "trades", "instruments"}
    assert '"orders-v2"' in out and '"Audit"' in out
    assert out.count("trades") == 1  # a stream and its topic appear once


def test_quote_ident() -> None:
    assert quote_ident("price") == "price"
    assert quote_ident("Price") == '"Price"'
    assert quote_ident("a-b") == '"a-b"'
    assert quote_ident("from") == '"from"'


def test_columns_single_and_joined() -> None:
    assert texts([Column((TableRef("trades"),))]) == ["price", "symbol"]
    joined = texts([Column((TableRef("trades", "t"), TableRef("instruments", "i")))])
    assert {"t.symbol", "i.sector", "symbol", "sector"} <= set(joined)


def test_prefix_beats_fuzzy_and_columns_beat_keywords() -> None:
    out = texts([Column((TableRef("trades"),)), Function(), Keyword()], "pr")
    assert out[0] == "price"
    assert out.index("price") < out.index("PRIMARY") if "PRIMARY" in out else True


def test_function_meta_is_the_signature() -> None:
    found = [c for c in candidates([Function()], CATALOG, "av") if c.display == "AVG"]
    assert found and found[0].meta == "AVG(x DOUBLE) -> DOUBLE"


def test_keyword_case_follows_the_typed_word() -> None:
    assert texts([Keyword(("SELECT",))], "sel") == ["select"]
    assert texts([Keyword(("SELECT",))], "SEL") == ["SELECT"]
    assert texts([Keyword(("SELECT",))], "") == ["SELECT"]


def test_jobs_topics_properties() -> None:
    assert texts([Job()], "big") == ["big_buys"]
    assert texts([Topic(quoted=True)], "ord") == ["orders-v2'"]
    assert "'trades'" in texts([Topic()])
    props = texts([PropertyKey(relations=("trades",))], "trades.")
    assert "'trades.type'" in props and "'trades.topic'" in props
    assert "'output.topic'" in texts([PropertyKey()], "output")


def test_prompt_toolkit_completer_end_to_end() -> None:
    assert "trades" in complete("SELECT * FROM tr")
    assert complete("SELECT pri FROM trades", len("SELECT pri"))[0] == "price"
    assert complete("STOP JOB oh") == ["ohlc_1m"]
    assert complete("SELECT * FROM trades WITH ('trades.ty") == ["trades.type'"]
    assert complete(r"\i some/fi") == []  # meta commands take paths


def test_completion_replaces_only_the_partial_word() -> None:
    doc = Document("SELECT * FROM tra")
    comps = list(VeloCompleter(CATALOG).get_completions(doc, CompleteEvent()))
    assert comps[0].start_position == -3


def test_catalog_tolerates_partial_documents() -> None:
    cat = Catalog.from_json({"streams": ["s1"], "functions": ["abs"], "topics": [{"name": "t"}]})
    assert cat.streams == {"s1": ()} and "ABS" in cat.functions and cat.topics == ("t",)
    assert Catalog.from_json(None) == Catalog()
    assert cat.columns_of("S1") == () and cat.relation_kind("t") == "topic"


def test_refresher_updates_in_the_background(fake_server) -> None:  # type: ignore[no-untyped-def]
    from velo.cli.client import VeloClient

    got: list[Catalog] = []
    health: list[object] = []
    r = CatalogRefresher(lambda: VeloClient(fake_server.url), got.append, health.append)
    r.refresh()
    r.refresh()  # coalesces with the one in flight
    assert r.wait(10)
    assert got and "trades" in got[-1].streams and len(got) <= 2
    assert health and health[-1]["status"] == "ok"  # type: ignore[index]


def test_refresher_survives_an_unreachable_server() -> None:
    from velo.cli.client import VeloClient

    got: list[Catalog] = []
    r = CatalogRefresher(lambda: VeloClient("http://127.0.0.1:1"), got.append)
    r.refresh()
    assert r.wait(10)
    assert got == [] and r.last_error is not None


def test_quoted_identifier_being_typed_is_replaced_with_its_quote() -> None:
    doc = Document('SELECT * FROM "orde')
    comps = list(VeloCompleter(CATALOG).get_completions(doc, CompleteEvent()))
    assert comps[0].text == '"orders-v2"' and comps[0].start_position == -5
