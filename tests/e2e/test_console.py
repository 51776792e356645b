"""The web console (/ui) in a real headless Chromium against a real velo-server and the real broker.

Debian's ``chromium`` is driven by Playwright through ``executable_path`` (Playwright's own browser
download is never used; ``tests/e2e/ensure_chromium.sh`` installs the package, ``make test`` runs it).
One browser per module, a fresh context (so a fresh sessionStorage) per test and a fresh server per
test. Every wait is Playwright's ``expect``/``wait_for`` or a polled condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import ServerProcess
from tests.kafka_helpers import create_topic, produce

CHROMIUM = os.environ.get("VELO_CHROMIUM", "/usr/bin/chromium")
# The machine has no network: without these, chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "console-s3cret"
WAIT_MS = 20_000

expect.set_options(timeout=WAIT_MS)


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from a sync test (Playwright's sync API owns this thread's loop)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
    return result[0] if result else None


def eventually(condition: Callable[[], bool], timeout: float = 20.0, message: str = "condition") -> None:
    """Poll ``condition`` until it holds (never a fixed sleep); fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.05)


@dataclass
class Tab:
    """A page of the console and everything it logged as an error."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def open(self, server: ServerProcess, view: str = "#/jobs") -> Page:
        self.page.goto(f"{server.url}/ui{view}")
        return self.page


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run tests/e2e/ensure_chromium.sh (make test does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One velo-server for the module's tests (each names its topics and jobs uniquely)."""
    process = ServerProcess(broker, tmp_path_factory.mktemp("console"))
    yield process
    process.stop()


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    tab = Tab(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    yield tab
    context.close()


def api(server: ServerProcess, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def deploy(client: httpx.Client, sql: str) -> dict[str, Any]:
    resp = client.post("/jobs", json={"sql": sql})
    assert resp.status_code == 201, resp.text
    job: dict[str, Any] = resp.json()
    return job


def job_state(client: httpx.Client, name: str) -> str:
    state: str = client.get(f"/jobs/{name}").json()["state"]
    return state


def run_sql(page: Page, sql: str, from_beginning: bool = True) -> None:
    """Type ``sql`` into the SQL box and run it with Ctrl-Enter."""
    page.locator("#nav a[data-view=sql]").click()
    box = page.locator("#sql-input")
    box.fill(sql)
    page.locator("#from-beginning").set_checked(from_beginning)
    box.press("Control+Enter")


# ---------------------------------------------------------------------------------------------- tests


def test_every_page_loads_with_no_console_errors(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("loads")
    run_async(create_topic(broker, source))
    with api(server) as client:
        deploy(client, f"CREATE STREAM j_{source} AS SELECT id FROM {source};")
    page = tab.open(server)
    expect(page.locator(f"tr[data-job=j_{source}]")).to_be_visible()
    expect(page.locator("#server-status")).to_contain_text("Kafka")
    page.locator("#nav a[data-view=sql]").click()
    expect(page.locator("#sql-input")).to_be_visible()
    page.locator("#nav a[data-view=catalog]").click()
    expect(page.locator(f"#topics-table tr[data-topic={source}]")).to_be_visible()
    expect(page.locator("#functions-table tbody tr").first).to_be_visible()
    page.locator("#nav a[data-view=jobs]").click()
    page.locator(f"tr[data-job=j_{source}] a.job-link").click()
    expect(page.locator("#plan-tree")).to_be_visible()
    # Content-Security-Policy violations, failed loads and script errors all land here.
    assert tab.errors == []


def test_deployed_jobs_appear_with_their_states_and_filter_by_state_app_and_name(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("states")
    app = f"shop_{source}"
    run_async(create_topic(broker, source))
    app_sql = (f"-- @app: {app}\n-- @name: a_{source}\nCREATE STREAM a_{source} AS SELECT id FROM {source};\n"
               f"-- @name: b_{source}\nCREATE STREAM b_{source} AS SELECT id FROM {source} WHERE id > 1;\n")
    with api(server) as client:
        assert client.post("/apps", json={"sql": app_sql}).status_code == 201
        deploy(client, f"CREATE STREAM solo_{source} AS SELECT id FROM {source};")
        assert client.post(f"/jobs/b_{source}/pause").json()["state"] == "PAUSED"

    page = tab.open(server)
    expect(page.locator(f"tr[data-job=solo_{source}]")).to_be_visible()
    # The module's server also runs other tests' jobs: the name filter keeps this test's three.
    page.locator("#filter-text").fill(source)
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator(f"tr[data-job=a_{source}] .state")).to_have_text("RUNNING")
    expect(page.locator(f"tr[data-job=b_{source}] .state")).to_have_text("PAUSED")
    expect(page.locator(f"tr[data-job=solo_{source}] .state")).to_have_text("RUNNING")
    expect(page.locator(f"tr[data-job=a_{source}] .cell-app")).to_contain_text(app)

    page.locator(".chip[data-state=PAUSED]").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job", f"b_{source}")
    page.locator(".chip[data-state=ALL]").click()
    expect(rows).to_have_count(3)
    page.locator("#filter-app").select_option(app)
    expect(rows).to_have_count(2)
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.job)")) == [f"a_{source}", f"b_{source}"]
    assert tab.errors == []


def test_pause_resume_and_stop_from_the_page_change_the_state_on_the_server_and_on_screen(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source, name = topic_name("pause"), topic_name("pj")
    run_async(create_topic(broker, source, partitions=2))
    with api(server) as client:
        deploy(client, f"CREATE STREAM {name} AS SELECT id, name FROM {source} WHERE id >= 0;")
        page = tab.open(server)
        row = page.locator(f"tr[data-job={name}]")
        expect(row.locator(".state")).to_have_text("RUNNING")

        row.locator("button[data-action=pause]").click()
        expect(row.locator(".state")).to_have_text("PAUSED")
        assert job_state(client, name) == "PAUSED"

        # The job's page: highlighted SQL, the plan drawn from source to sink, history with reasons,
        # one row per partition, and the sink topic's records as they are written.
        row.locator("a.job-link").click()
        expect(page.locator(".job-state")).to_have_text("PAUSED")
        expect(page.locator(".code-sql .t-kw").first).to_have_text("CREATE")
        expect(page.locator("#plan-tree .plan-box[data-kind=Source]")).to_contain_text(source)
        expect(page.locator("#plan-tree .plan-box[data-kind=Sink]")).to_contain_text(name)
        expect(page.locator("#plan-tree .plan-box[data-kind=Filter]")).to_contain_text("id >= 0")
        # Drawn from the job's plan_tree (engine/plan.py): every node with its changelog mode.
        expect(page.locator("#plan-tree .plan-box[data-kind=Project] .plan-mode")).to_have_text("append-only")
        expect(page.locator("#history")).to_contain_text("paused")

        page.locator("button[data-action=resume]").click()
        expect(page.locator(".job-state")).to_have_text("RUNNING")
        assert job_state(client, name) == "RUNNING"
        expect(page.locator("#partitions tbody tr")).to_have_count(2)
        expect(page.locator("#output-toggle")).to_be_visible()
        # The live output starts from the sink's end: produce until a record shows (the PRINT's
        # start offset is pinned at its first fetch, a moment after the page opened it).
        output = page.locator("#output-table tbody tr")
        deadline = time.monotonic() + 20
        while output.count() == 0:
            assert time.monotonic() < deadline, "no live output on the job's page"
            run_async(produce(broker, source, [{"id": 7, "name": "seven"}]))
            with contextlib.suppress(PlaywrightTimeout):
                output.first.wait_for(timeout=1_000)
        expect(page.locator("#output-table tbody tr").first.locator("td[data-col=name]")).to_have_text("seven")

        stop = page.locator("button[data-action=stop]")
        stop.click()
        expect(stop).to_have_text("Confirm stop")  # two clicks: a stop cannot be undone from here
        assert job_state(client, name) == "RUNNING"
        stop.click()
        # A stopped job leaves the server's list; its page keeps the final figures.
        expect(page.locator(".job-state")).to_have_text("STOPPED")
        expect(page.locator(".banner")).to_contain_text("final figures")
        assert client.get(f"/jobs/{name}").status_code == 404
    assert tab.errors == []


def test_a_query_typed_in_the_sql_box_streams_rows_until_stopped(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("rows")
    run_async(create_topic(broker, source))
    run_async(produce(broker, source, [{"id": i, "name": f"n{i}"} for i in range(3)]))
    page = tab.open(server)
    run_sql(page, f"SELECT id, name FROM {source};")
    rows = page.locator("#result tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#run-status")).to_contain_text("streaming")
    run_async(produce(broker, source, [{"id": 3, "name": "n3"}, {"id": 4, "name": "n4"}]))
    expect(rows).to_have_count(5)
    expect(rows.nth(4).locator("td[data-col=name]")).to_have_text("n4")
    with api(server) as client:
        assert len(client.get("/queries").json()["queries"]) == 1
        page.locator("#stop").click()
        expect(page.locator("#run-status")).to_contain_text("cancelled")
        eventually(lambda: client.get("/queries").json()["queries"] == [], message="the query to be released")
    assert tab.errors == []


def test_an_emit_changes_table_updates_in_place_by_key(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("changes")
    run_async(create_topic(broker, source))
    run_async(produce(broker, source, [{"k": "a"}, {"k": "a"}, {"k": "b"}]))
    page = tab.open(server)
    run_sql(page, f"SELECT k, COUNT(*) AS n FROM {source} GROUP BY k EMIT CHANGES;")
    row_a = page.locator("#result tr[data-key='[\"a\"]']")
    expect(row_a.locator("td[data-col=n]")).to_have_text("2")
    expect(page.locator("#result tr[data-key='[\"b\"]'] td[data-col=n]")).to_have_text("1")
    expect(page.locator("#result tbody tr")).to_have_count(2)
    row_a.evaluate("tr => { tr.dataset.marker = 'before' }")  # the same element must be updated

    run_async(produce(broker, source, [{"k": "a"}, {"k": "a"}, {"k": "a"}]))
    expect(row_a.locator("td[data-col=n]")).to_have_text("5")
    expect(page.locator("#result tbody tr")).to_have_count(2)
    assert row_a.get_attribute("data-marker") == "before"
    expect(page.locator("#result")).to_have_attribute("data-emit", "changes")
    expect(page.locator("#row-count")).to_contain_text("2 keys")
    page.locator("#stop").click()
    expect(page.locator("#run-status")).to_contain_text("cancelled")
    assert tab.errors == []


def test_a_sql_error_is_shown_with_a_caret_at_its_line_and_column(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("err")
    run_async(create_topic(broker, source))
    run_async(produce(broker, source, [{"id": 1}]))
    page = tab.open(server)
    run_sql(page, f"SELECT id,\n       nope FROM {source};")
    expect(page.locator("#sql-error")).to_contain_text("line 2, column 8")
    expect(page.locator("#sql-error")).to_contain_text("nope")
    source_line, caret_line = page.locator("#error-caret").inner_text().split("\n")[:2]
    assert source_line.endswith(f"       nope FROM {source};")
    assert caret_line.rstrip().endswith("^")
    assert source_line[caret_line.index("^"):].startswith("nope")  # the caret sits under the column
    expect(page.locator("#sql-input + .t-error, .editor-hl .t-error")).to_have_text("nope")
    # A syntax error too (a different code and its "expected" list).
    run_sql(page, "SELECT FROM WHERE;")
    expect(page.locator("#sql-error .badge")).to_have_text("sql_syntax")
    expect(page.locator("#error-caret .caret")).to_be_visible()
    # Errors here are answers, not failures of the page.
    assert [e for e in tab.errors if "400" not in e] == []


def test_other_statements_run_once_through_post_statements(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("stmts")
    name = f"made_{source}"
    run_async(create_topic(broker, source))
    page = tab.open(server)
    run_sql(page, f"CREATE STREAM {name} AS SELECT id FROM {source};")
    expect(page.locator(".messages .message a.job-link")).to_have_text(name)
    with api(server) as client:
        assert job_state(client, name) == "RUNNING"
    run_sql(page, "SHOW JOBS;")
    expect(page.locator(".messages table")).to_contain_text(name)
    # A script stops at its first failure; the page says the statements before it stay applied.
    run_sql(page, f"CREATE STREAM s_{source} (id INT) WITH (KAFKA_TOPIC = '{source}', VALUE_FORMAT = 'JSON');\n"
                  f"CREATE STREAM ok_{source} AS SELECT id FROM s_{source};\n"
                  f"START JOB bad_{source} AS SELECT nope FROM s_{source};")
    expect(page.locator("#sql-error")).to_contain_text("line 3, column")
    expect(page.locator("#sql-error")).to_contain_text("statement 3")
    expect(page.locator("#sql-error")).to_contain_text("statements 1–2 ran before it and stay applied")
    with api(server) as client:
        assert job_state(client, f"ok_{source}") == "RUNNING"
        assert client.get(f"/jobs/bad_{source}").status_code == 404
    assert [e for e in tab.errors if "400" not in e] == []


def test_with_a_token_the_console_asks_for_it_once_per_tab_and_then_works(
    browser: Browser, tab: Tab, start_server: Callable[..., ServerProcess], broker: str,
    topic_name: Callable[[str], str],
) -> None:
    server = start_server("--auth-token", TOKEN)
    source, name = topic_name("auth"), topic_name("aj")
    run_async(create_topic(broker, source))
    with api(server, TOKEN) as client:
        deploy(client, f"CREATE STREAM {name} AS SELECT id FROM {source};")
    with api(server) as anonymous:
        # Only the login page is served without the token; the console's code and data are not.
        assert anonymous.get("/ui").status_code == 200
        assert anonymous.get("/ui/app.js").status_code == 401
        assert anonymous.get("/jobs").status_code == 401

    loaded: list[int] = []
    tab.page.on("response", lambda r: loaded.append(r.status) if r.url.endswith("/ui/app.js") else None)
    page = tab.open(server)
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    assert page.locator("#app").inner_html() == ""
    assert loaded == []  # nothing asked before a token is given

    page.locator("#token").fill("wrong-token")
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#login-error")).to_contain_text("not valid")
    expect(page.locator("#nav")).to_be_hidden()

    page.locator("#token").fill(TOKEN)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator(f"tr[data-job={name}] .state")).to_have_text("RUNNING")
    assert page.evaluate("sessionStorage.getItem('velo.token')") == TOKEN

    # Kept for the tab: a reload does not ask again, and actions carry the token.
    page.reload()
    expect(page.locator(f"tr[data-job={name}] .state")).to_have_text("RUNNING")
    expect(page.locator("#login")).to_be_hidden()
    page.locator(f"tr[data-job={name}] button[data-action=pause]").click()
    expect(page.locator(f"tr[data-job={name}] .state")).to_have_text("PAUSED")
    with api(server, TOKEN) as client:
        assert job_state(client, name) == "PAUSED"

    # Another tab (a new browser context) has no token: it is asked again; signing out forgets it.
    other = browser.new_context().new_page()
    try:
        other.goto(f"{server.url}/ui")
        expect(other.locator("#login")).to_be_visible()
    finally:
        other.context.close()
    page.locator("#logout").click()
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('velo.token')") is None
    assert [e for e in tab.errors if "401" not in e] == []


def test_the_topics_and_catalog_page_lists_topics_streams_and_functions(
    tab: Tab, server: ServerProcess, broker: str, topic_name: Callable[[str], str]
) -> None:
    source = topic_name("cat")
    run_async(create_topic(broker, source, partitions=3))
    run_async(produce(broker, source, [{"id": i} for i in range(4)]))
    with api(server) as client:
        declare = (f"CREATE STREAM s_{source} (id INT, name STRING) "
                   f"WITH (KAFKA_TOPIC = '{source}', VALUE_FORMAT = 'JSON');")
        resp = client.post("/statements", json={"sql": declare})
        assert resp.status_code == 200, resp.text
        functions = len(client.get("/catalog").json()["functions"])
    page = tab.open(server, "#/catalog")
    topic = page.locator(f"#topics-table tr[data-topic={source}]")
    expect(topic.locator("td").nth(1)).to_have_text("3")
    expect(topic.locator("td").nth(2)).to_have_text("4")
    relation = page.locator(f".relation[data-relation=s_{source}]")
    expect(relation).to_contain_text("id")
    expect(relation.locator(".colpill")).to_have_count(2)
    expect(page.locator("#functions-table tbody tr")).to_have_count(functions)
    expect(page.locator("#functions-table")).to_contain_text("COALESCE")
    # Print opens the SQL box with the topic's records.
    topic.locator("a", has_text="Print").click()
    expect(page.locator("#sql-input")).to_have_value(f"PRINT '{source}' FROM BEGINNING LIMIT 50;")
    page.locator("#sql-input").press("Control+Enter")
    expect(page.locator("#result tbody tr")).to_have_count(4)
    page.locator("#sql-input").press("Escape")  # Esc stops, like the stop button
    expect(page.locator("#run-status")).to_contain_text("cancelled")
    assert tab.errors == []
