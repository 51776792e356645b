"""SQL applications: deployed all-or-nothing, listed and stopped as a unit, errors located in the file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from velo.grammar.errors import SqlError
from velo.server.errors import DuplicateJobError, JobLimitError, VeloError
from velo.server.jobs.apps import AppDeployer
from velo.server.jobs.manager import ManagerConfig, MultiJobSqlServer
from velo.server.jobs.runtime import JobState

from tests.kafka_helpers import create_topic

APP = """-- @app: trading
-- @version: 1.2.0
-- @description: Two jobs over one topic.

-- @name: big_trades
-- @property: batch.size=500
CREATE STREAM big AS SELECT symbol, price FROM ${SOURCE} WHERE price > ${LIMIT:100};

-- Name: Small Trades
START JOB small AS SELECT symbol FROM ${SOURCE} WHERE price <= 10 WITH ('output.topic' = 'small_${SOURCE}');
"""


@pytest.fixture
async def deployer(broker: str) -> AsyncIterator[AppDeployer]:
    manager = MultiJobSqlServer(ManagerConfig(broker, max_jobs=3))
    yield AppDeployer(manager)
    await manager.shutdown()


@pytest.fixture
async def source(broker: str, topic_name: Callable[[str], str]) -> str:
    name = topic_name("app")
    await create_topic(broker, name, 1)
    return name


async def test_deploy_list_stop_an_app(deployer: AppDeployer, source: str) -> None:
    app = await deployer.deploy(APP, variables={"SOURCE": source})
    assert (app.name, app.version, app.description) == ("trading", "1.2.0", "Two jobs over one topic.")
    assert sorted(j.name for j in app.jobs) == ["big_trades", "small_trades"]
    big = deployer.manager.get_job("big_trades")
    assert big.spec.batch_size == 500  # from -- @property:
    assert "price > 100" in big.spec.sql  # ${LIMIT:100} took its default
    assert all(j.state is JobState.RUNNING and j.spec.app == "trading" for j in app.jobs)
    assert [a.name for a in deployer.list()] == ["trading"]
    with pytest.raises(DuplicateJobError):
        await deployer.deploy(APP, variables={"SOURCE": source})

    stopped = await deployer.stop("trading")
    assert all(j.state is JobState.STOPPED for j in stopped.jobs)
    assert deployer.list() == [] and deployer.manager.list_jobs() == []


async def test_a_bad_statement_starts_nothing_and_names_its_line(deployer: AppDeployer, source: str) -> None:
    broken = APP.replace("WHERE price <= 10", "WHERE NOSUCHFN(price) <= 10")
    with pytest.raises((SqlError, VeloError)) as info:
        await deployer.deploy(broken, variables={"SOURCE": source})
    error = info.value
    where = (error.statement, error.line) if isinstance(error, SqlError) else (
        error.details["statement"], error.details["line"])
    assert where == (2, 10)
    assert deployer.manager.list_jobs() == []  # the first job was never started


async def test_an_app_larger_than_the_free_slots_is_refused_whole(deployer: AppDeployer, source: str) -> None:
    for name in ("other", "other2"):
        await deployer.manager.deploy_job(
            f"START JOB {name} AS SELECT * FROM {source} WITH ('output.topic' = '{name}_{source}');")
    with pytest.raises(JobLimitError, match="2 jobs but only 1"):
        await deployer.deploy(APP, variables={"SOURCE": source})
    assert sorted(j.name for j in deployer.manager.list_jobs()) == ["other", "other2"]


async def test_a_job_that_fails_to_start_rolls_the_app_back(deployer: AppDeployer, source: str) -> None:
    missing = APP.replace("SELECT symbol FROM ${SOURCE} WHERE price <= 10", "SELECT symbol FROM nowhere_${SOURCE}")
    with pytest.raises((SqlError, VeloError), match="nowhere"):
        await deployer.deploy(missing, variables={"SOURCE": source})
    assert deployer.manager.list_jobs() == []
