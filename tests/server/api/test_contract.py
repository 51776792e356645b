"""Contract fuzzing: schemathesis generates requests from ``/openapi.json`` (valid and invalid ones)
against a real server; no response may be a 500, and every response must match its documented status,
content type and schema. Bounded: a fixed number of examples per operation, no shrinking deadline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import ServerProcess
from tests.server.api.conftest import TOKEN

EXAMPLES = 60  # per operation: ~20 operations x 60 requests stays well under a minute


@pytest.fixture(scope="module")
def fuzz_server(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A token makes the 401 paths part of the contract too; a small body cap exercises 413.
    server = ServerProcess(broker, tmp_path_factory.mktemp("fuzz"), "--auth-token", TOKEN, "--max-body", "65536")
    yield server
    server.stop()
    assert "internal error" not in Path(server.log_path).read_text()  # no 500 was ever logged


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess) -> schemathesis.schemas.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json",
                                           headers={"Authorization": f"Bearer {TOKEN}"})
    return schema


def test_every_operation_keeps_its_contract(api_schema: schemathesis.schemas.BaseSchema) -> None:
    # Driven by hand rather than with schemathesis' pytest plugin, which does not support pytest 9 yet.
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def check(case: schemathesis.Case) -> None:
            if case.path == "/query" and case.method == "POST" and isinstance(case.body, dict):
                case.body["limit"] = 1  # a generated query that happens to be valid must still end
            # SQL is a grammar the JSON schema cannot express: a schema-valid body is often rightly a
            # 400, so positive_data_acceptance does not apply.
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
            statuses[response.status_code] += 1
            assert response.status_code != 500, response.text
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # schemathesis' FailureGroup: collect, report all at the end
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The fuzzing reached the handlers: successes, and both kinds of refusal (invalid bodies, unknown names).
    assert sum(statuses.values()) >= 300 and statuses[200] and statuses[400] and statuses[404], statuses
