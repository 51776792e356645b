"""The plan tree (engine/plan.py, engine/planner.py): schemas, changelog modes, refusals, EXPLAIN.

Every query is compiled the way ``POST /query`` and a job compile it (``compile_select`` against a
catalog); the tree is read from the compiled plan, so what is checked is what the lowering was given.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from velo.grammar.errors import SqlValidationError
from velo.server.engine.compiler.model import CompiledQuery
from velo.server.engine.plan import (
    Aggregate,
    Filter,
    Join,
    OutputColumn,
    PlanNode,
    Project,
    Scan,
    Sink,
)

from .tables import compile_with

CATALOG = [
    "CREATE STREAM trades (symbol STRING, price DOUBLE, qty BIGINT, ts BIGINT) "
    "WITH (KAFKA_TOPIC='trades', TIMESTAMP='ts')",
    "CREATE STREAM quotes (symbol STRING, bid DOUBLE, ts BIGINT) WITH (KAFKA_TOPIC='quotes', TIMESTAMP='ts')",
    "CREATE TABLE inst (symbol STRING PRIMARY KEY, sector STRING) WITH (KAFKA_TOPIC='inst')",
]


def _compile(sql: str) -> CompiledQuery:
    return compile_with(CATALOG, sql)


def _tree(sql: str) -> Sink:
    tree = _compile(sql).plan.tree
    assert tree is not None
    return tree


def _shape(node: PlanNode) -> str:
    """The tree as nested kinds: ``Sink(Project(Filter(Scan)))``."""
    kids = node.inputs()
    return node.kind + (f"({', '.join(_shape(k) for k in kids)})" if kids else "")


SHAPES = {
    "SELECT symbol, price * qty AS notional FROM trades WHERE price > 10":
        "Sink(Project(Filter(Scan)))",
    "SELECT symbol, COUNT(*) AS n FROM trades WHERE qty > 0 GROUP BY symbol HAVING COUNT(*) > 1":
        "Sink(Project(Filter(Aggregate(Filter(Scan)))))",
    "SELECT DISTINCT symbol FROM trades": "Sink(Project(Aggregate(Scan)))",
    "SELECT t.symbol, i.sector FROM trades t JOIN inst i ON t.symbol = i.symbol WHERE t.qty > 1 AND i.sector > 'a'":
        "Sink(Project(Filter(Join(Filter(Scan), Scan))))",  # the stream's conjunct pushed (rules.py)
    "SELECT t.symbol, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol WITHIN 5 SECONDS "
    "JOIN inst i ON t.symbol = i.symbol": "Sink(Project(Join(Join(Scan, Scan), Scan)))",
    "SELECT i.sector, COUNT(*) AS n FROM trades t JOIN inst i ON t.symbol = i.symbol GROUP BY i.sector "
    "WINDOW TUMBLING (SIZE 1 MINUTE)": "Sink(Project(Aggregate(Join(Scan, Scan))))",
    "SELECT symbol, AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS a "
    "FROM trades WHERE price > 1": "Sink(Project(Filter(Over(Scan))))",
}


@pytest.mark.parametrize("sql", list(SHAPES))
def test_every_family_plans_as_a_tree_whose_schema_is_the_output(sql: str) -> None:
    compiled = _compile(sql)
    tree = compiled.plan.tree
    assert tree is not None
    assert _shape(tree) == SHAPES[sql]
    # The root's schema is what the lowering produced: the planner and the code agree on names and types.
    assert tree.columns == compiled.plan.columns


def test_scans_carry_the_relation_schema_and_event_time() -> None:
    tree = _tree("SELECT symbol FROM trades")
    scan = tree.walk()[-1]
    assert isinstance(scan, Scan)
    assert scan.columns == (OutputColumn("symbol", "STRING"), OutputColumn("price", "DOUBLE"),
                            OutputColumn("qty", "BIGINT"), OutputColumn("ts", "BIGINT"))
    assert scan.event_time == "ts" and scan.changelog.append_only
    project = tree.child
    assert isinstance(project, Project) and project.columns == (OutputColumn("symbol", "STRING"),)


def test_a_table_on_a_topic_is_an_upsert_changelog_by_its_key() -> None:
    tree = _tree("SELECT t.symbol, i.sector FROM trades t JOIN inst i ON t.symbol = i.symbol")
    join = tree.walk()[2]
    assert isinstance(join, Join)
    left, right = join.inputs()
    assert left.changelog.append_only
    assert str(right.changelog) == "upsert by (_key), with deletes"
    # A stream meets the table as it stands: the join's output is append-only.
    assert join.changelog.append_only and tree.changelog.append_only
    assert join.shape == "stream-table" and "latest row per key" in join.state()


def test_changelog_modes_of_aggregations() -> None:
    final = _tree("SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol WINDOW TUMBLING (SIZE 1 MINUTE)")
    assert str(final.changelog) == "append-only"
    changes = _tree("SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol WINDOW TUMBLING (SIZE 1 MINUTE) "
                    "EMIT CHANGES")
    assert str(changes.changelog) == "upsert by (symbol, window_start)"
    having = _tree("SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol HAVING COUNT(*) > 2")
    assert str(having.changelog) == "upsert by (symbol), with deletes"
    session = _tree("SELECT symbol, COUNT(*) AS n FROM trades GROUP BY symbol WINDOW SESSION (30 SECONDS) "
                    "EMIT CHANGES")
    assert session.changelog.deletes  # merged sessions are deleted
    agg = next(n for n in final.walk() if isinstance(n, Aggregate))
    assert agg.columns == (OutputColumn("symbol", "STRING"), OutputColumn("COUNT(*)", "BIGINT"),
                           OutputColumn("window_start", "BIGINT"), OutputColumn("window_end", "BIGINT"))
    assert "dropped once the watermark passes its end + grace" in agg.state()
    unbounded = next(n for n in having.walk() if isinstance(n, Aggregate))
    assert "unbounded" in unbounded.state()


@pytest.mark.parametrize(("sql", "what"), [
    ("SELECT sector, COUNT(*) AS n FROM inst GROUP BY sector", "an aggregation (GROUP BY)"),
    ("SELECT DISTINCT sector FROM inst", "SELECT DISTINCT"),
    ("SELECT sector, ROW_NUMBER() OVER (PARTITION BY sector) AS r FROM inst", "OVER"),
    ("SELECT i.sector FROM inst i JOIN trades t ON t.symbol = i.symbol", "a join"),
])
def test_an_operator_refuses_an_upsert_input_at_the_table(sql: str, what: str) -> None:
    with pytest.raises(SqlValidationError) as info:
        _compile(sql)
    assert str(info.value.message).startswith(f"{what} cannot read table 'inst' ")
    assert "a table on a topic is an upsert changelog (a row per key, replaced or deleted)" in str(info.value.message)
    # Placed at the relation that makes the upsert changelog: the table's name in FROM.
    assert (info.value.line, info.value.column) == (1, sql.index("FROM inst") + len("FROM ") + 1)


def test_a_filter_over_a_table_keeps_its_changelog() -> None:
    tree = _tree("SELECT symbol, sector FROM inst WHERE sector = 'tech'")
    filt = tree.child.inputs()[0]
    assert isinstance(filt, Filter)
    assert str(tree.changelog) == "upsert by (_key), with deletes"


def test_explain_prints_the_tree_with_sql_expressions_modes_state_and_stages() -> None:
    text = _compile("SELECT symbol, COUNT(*) AS n, AVG(price) AS avg_price FROM trades WHERE price > 10 "
                    "GROUP BY symbol HAVING COUNT(*) > 1 WINDOW TUMBLING (SIZE 1 MINUTE) EMIT CHANGES").explain()
    lines = text.splitlines()
    assert lines[0] == "Sink: the client, JSON, key (symbol, window_start)"
    heads = [ln.strip("│└├─ ") for ln in lines
             if ": " in ln and not ln.strip("│ ").startswith(("changelog", "state", "columns"))]
    assert heads[:5] == [
        "Sink: the client, JSON, key (symbol, window_start)",
        "Project: symbol, COUNT(*) AS n, AVG(price) AS avg_price, window_start, window_end",
        "Filter: COUNT(*) > 1 (HAVING)",
        "Aggregate: GROUP BY symbol; COUNT(*), AVG(price); window tumbling size 60000 ms, grace 0 ms "
        "(event time: ts); EMIT CHANGES",
        "Filter: price > 10",
    ]
    assert "WHERE clause" not in text
    assert "│  changelog: upsert by (symbol, window_start), with deletes; stateless\n" in text
    assert "│  changelog: upsert by (symbol, window_start)\n" in text
    assert ("│  state: an accumulator set per group and open tumbling window, each window dropped once the "
            "watermark passes its end + grace") in text
    assert "  extract: the Aggregate's input" in text and "  project: per group: HAVING → Project" in text
    assert text.index("Fused stages") < text.index("Generated code:\ndef extract(batch):")


def test_the_tree_as_json_is_what_the_console_draws() -> None:
    tree = _tree("SELECT symbol FROM trades WHERE price > 10").to_dict()
    assert tree["kind"] == "Sink" and tree["changelog"] == "append-only"
    project = tree["children"][0]
    assert project["kind"] == "Project" and project["columns"] == [{"name": "symbol", "type": "STRING"}]
    filt = project["children"][0]
    assert (filt["kind"], filt["text"]) == ("Filter", "price > 10")
    (source,) = filt["children"]
    assert source["kind"] == "Source" and source["node"] == "Scan" and "kafka topic 'trades'" in source["text"]
    assert source["children"] == []


def _pushed(tree: PlanNode) -> list[str]:
    return [n.detail() for n in tree.walk() if isinstance(n, Filter) and n.clause == "WHERE, pushed down"]


def _where(tree: PlanNode) -> list[str]:
    return [n.detail() for n in tree.walk() if isinstance(n, Filter) and n.clause == "WHERE"]


def test_where_conjuncts_on_the_stream_move_under_its_table_joins() -> None:
    tree = _tree("SELECT t.symbol, i.sector FROM trades t LEFT JOIN inst i ON t.symbol = i.symbol "
                 "WHERE t.qty > 1 AND i.sector IS NULL AND price < 3")
    # The stream's conjuncts (qualified or not) run in its scan; the table's stays above the LEFT join,
    # where it sees the NULL-extended row.
    assert _pushed(tree) == ["t.qty > 1 AND price < 3 (WHERE, pushed down)"]
    assert _where(tree) == ["i.sector IS NULL"]
    join = next(n for n in tree.walk() if isinstance(n, Join))
    assert isinstance(join.left, Filter) and isinstance(join.left.child, Scan)
    code = _compile("SELECT t.symbol, i.sector FROM trades t LEFT JOIN inst i ON t.symbol = i.symbol "
                    "WHERE t.qty > 1").source_code
    scan0 = code[code.index("def scan0"):code.index("def scan1")]
    assert "_t1 > 1" in scan0  # dropped as it is decoded, before the lookup


@pytest.mark.parametrize("sql", [
    # a stream–stream join's scans feed its watermark: nothing moves under it
    "SELECT t.symbol FROM trades t JOIN quotes q ON t.symbol = q.symbol WITHIN 5 SECONDS WHERE t.qty > 1",
    # subqueries, system columns and ambiguous names stay where they are
    "SELECT t.symbol FROM trades t JOIN inst i ON t.symbol = i.symbol "
    "WHERE t.symbol IN (SELECT symbol FROM inst WHERE sector = 'tech')",
    "SELECT t.symbol FROM trades t JOIN inst i ON t.symbol = i.symbol WHERE t._partition = 0",
    "SELECT t.symbol FROM trades t JOIN inst i ON t.symbol = i.symbol WHERE t.symbol = i.symbol",
    # a relation whose columns are inferred from its records: an unqualified name's relation is unknown
    "SELECT o.x FROM orders o JOIN inst i ON o.symbol = i.symbol WHERE o.x > 1",
])
def test_where_stays_above_the_join_when_moving_it_could_change_the_result(sql: str) -> None:
    tree = _tree(sql)
    assert _pushed(tree) == []
    assert len(_where(tree)) == 1


async def test_the_explain_in_the_engine_docs_is_what_the_server_prints() -> None:
    """docs/engine.md shows EXPLAIN of a three-input query as POST /statements answers it: kept true here."""
    import re
    from pathlib import Path

    from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
    from velo.server.jobs.statements import StatementExecutor

    docs = (Path(__file__).parents[3] / "docs" / "engine.md").read_text(encoding="utf-8")
    match = re.search(r"after the catalog statements\n(.*?):\n\n```sql\n(EXPLAIN .*?;)\n```\n```\n(.*?)\n```",
                      docs, re.S)
    assert match, "docs/engine.md lost its EXPLAIN example"
    catalog = ";".join(re.findall(r"`(CREATE [^`]*)`", match.group(1).replace("\n", " ")))
    shown = match.group(3)
    executor = StatementExecutor(MultiJobSqlServer(ManagerConfig("127.0.0.1:1")))
    results = await executor.execute_script(f"{catalog}; {match.group(2)}", {})
    printed = results[-1]["message"]
    head, rest = shown.split("\n\n… (", 1)
    assert printed.startswith(head + "\n\n")
    assert rest.startswith("scan1, scan2, chain, extract, project and agg_encode follow)")


def test_explain_shows_file_paths_relative_to_the_data_dir(tmp_path: Path) -> None:
    """A plan says nothing of the machine's folders: a file relation and a file sink are shown as written."""
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "sectors.csv").write_text("symbol,sector\nA,tech\n")
    text = compile_with(CATALOG, "SELECT t.symbol, r.sector FROM trades t JOIN r ON t.symbol = r.symbol "
                        "WITH ('r.type' = 'file_source', 'r.path' = 'ref/sectors.csv', 'r.format' = 'csv')",
                        data_dir=tmp_path).explain()
    assert "file 'ref/sectors.csv'" in text, text
    assert str(tmp_path) not in text
