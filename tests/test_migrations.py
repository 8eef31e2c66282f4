"""Schema migrations on real SQLite and PostgreSQL: they build exactly what the models declare (longhaul's
history, then the application's), adopt a database made before migrations or before the two histories
were split, run once when processes start together, and the ``longhaul db`` commands a release job uses
work as a user would call them."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from longhaul.config import Settings
from longhaul.db import Database
from longhaul.migrations import BASELINE, SchemaOutdatedError, current, differences, head, prepare, upgrade
from longhaul.models import RunStatus
from longhaul.storage import RunStore
from tests.postgres import both_databases
from tests.processes import LONGHAUL, clean_env
from workflows.catalog import CATALOG

pytestmark = both_databases

SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture
async def empty_db(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.app_database_url)
    try:
        yield db
    finally:
        await db.close()


async def test_upgrade_builds_exactly_the_schema_the_models_declare(
    empty_db: Database, request: pytest.FixtureRequest
) -> None:
    assert empty_db.engine.dialect.name == request.node.callspec.params["app_database"]
    assert await current(empty_db) is None
    await upgrade(empty_db)
    assert await current(empty_db) == head()
    assert await differences(empty_db, CATALOG.tables()) == []


async def _load(db: Database, script: str) -> None:
    """Run an SQL dump as its tool would (sqlite3's iterdump, pg_dump --inserts)."""
    async with db.engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if not db.is_sqlite:
            await driver.execute(script)
            return
        await driver.execute("PRAGMA foreign_keys=OFF")  # iterdump writes tables in name order
        await driver.executescript(script)
        await driver.execute("PRAGMA foreign_keys=ON")


async def _counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        return {name: await conn.scalar(text(f'SELECT count(*) FROM "{name}"')) for name in names}


async def test_a_database_made_before_the_histories_were_split_upgrades_in_place_with_every_row(
    empty_db: Database,
) -> None:
    """tests/schemas: databases at 0011, when longhaul's one history held the pipelines' tables too, with
    runs, tags, logs, waitpoints, a key and products (made by the test kit on that code, dumped)."""
    await _load(empty_db, (SCHEMAS / f"0011-{empty_db.engine.dialect.name}.sql").read_text())
    before = await _counts(empty_db)
    assert before["runs"] == 5 and before["waitpoints"] == 2 and before["products"] == 3
    await upgrade(empty_db)
    assert await current(empty_db) == head() == "0019, application 0001"
    after = await _counts(empty_db)
    # every row kept; the application's history begun; tables of later migrations (empty) added
    added = {
        "alembic_version_app": 1,
        "fair_shares": 0,
        "queue_pauses": 0,
        "queue_limits": 0,
        "signal_deliveries": 0,
        "run_waiters": 0,
        "run_stream_chunks": 0,
        "tenant_schedules": 0,
    }
    assert after == {**before, **added}
    assert await differences(empty_db, CATALOG.tables()) == []
    run = await RunStore(empty_db).get("run_72d3c9e9d2d068173eb1df56")
    assert run is not None and run.status == RunStatus.COMPLETED and sorted(run.tags) == ["head", "vip"]
    assert [t.status for t in await RunStore(empty_db).waitpoints.of_run("run_210e18ff3a7db0a02a01a4c2")] == [
        "waiting"
    ]


async def test_a_model_change_without_a_migration_shows_as_a_difference(empty_db: Database) -> None:
    await upgrade(empty_db)
    async with empty_db.engine.begin() as conn:
        await conn.exec_driver_sql("DROP INDEX ix_runs_status")
    assert [change[0] for change in await differences(empty_db, CATALOG.tables())] == ["add_index"]


async def test_a_database_made_before_migrations_is_adopted_with_its_data(empty_db: Database) -> None:
    # What longhaul's create_all made before it had migrations: the baseline's schema, without Alembic's
    # version table.
    await upgrade(empty_db, BASELINE)
    async with empty_db.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE alembic_version")
        # A run as that version wrote it (its columns, not today's).
        await conn.exec_driver_sql(
            "INSERT INTO runs (id, tenant, workflow, workflow_id, event, event_id, status, progress, input, "
            "attempts, created_at, updated_at) VALUES ('run_1', 't1', 'hello', 'hello/t1/e1', 'hello', 'e1', "
            "'queued', 0, '{\"name\": \"x\"}', 0, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        )
    store = RunStore(empty_db)
    await upgrade(empty_db)
    assert await current(empty_db) == head()
    record = await store.get("run_1")
    assert record is not None and record.status == RunStatus.QUEUED and record.input == {"name": "x"}
    assert record.priority == 3  # a new column's default


async def test_an_upgrade_that_rebuilds_the_runs_table_keeps_the_rows_that_reference_runs(
    empty_db: Database,
) -> None:
    # 0005 rebuilds ``runs`` on SQLite (to change a unique constraint): with foreign keys on, dropping the
    # old table would cascade to the run's tags, logs and slots.
    await upgrade(empty_db, "0004")
    async with empty_db.engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO runs (id, tenant, workflow, workflow_id, event, event_id, status, priority, "
            "progress, input, attempts, created_at, updated_at) VALUES ('run_1', 't1', 'hello', "
            "'hello/t1/e1', 'hello', 'e1', 'running', 3, 50, '{}', 0, '2026-01-01 00:00:00+00:00', "
            "'2026-01-01 00:00:00+00:00')"
        )
        await conn.exec_driver_sql("INSERT INTO run_tags (run_id, tag) VALUES ('run_1', 'vip')")
        await conn.exec_driver_sql(
            "INSERT INTO run_logs (run_id, at, level, message, op_id) "
            "VALUES ('run_1', '2026-01-01 00:00:00+00:00', 'info', 'started', 'op-1')"
        )
        await conn.exec_driver_sql(
            "INSERT INTO run_slots (run_id, scope, kind, \"limit\") VALUES ('run_1', 'q/k', 'concurrency', 1)"
        )
    await upgrade(empty_db)
    record = await RunStore(empty_db).get("run_1")
    assert record is not None and record.generation == 1
    assert record.tags == ["vip"] and [line.message for line in record.logs] == ["started"]
    async with empty_db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM run_slots")).scalar() == 1


async def test_processes_starting_together_upgrade_once_without_errors(
    settings: Settings, empty_db: Database
) -> None:
    env = clean_env(LONGHAUL_DATA_DIR=str(settings.data_dir), LONGHAUL_DATABASE_URL=settings.app_database_url)
    upgrades = [
        await asyncio.create_subprocess_exec(
            LONGHAUL, "db", "upgrade", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = [await process.communicate() for process in upgrades]
    assert [process.returncode for process in upgrades] == [0] * 4, [err.decode() for _, err in outputs]
    said = sorted(
        out.decode().strip() for out, _ in outputs
    )  # one of them upgraded; the others found it done
    assert said == [f"app database at revision {head()}"] * 3 + [
        f"app database at revision {head()} (was empty)"
    ]
    db = Database(settings.app_database_url)
    try:
        assert await differences(db, CATALOG.tables()) == []
    finally:
        await db.close()


async def test_with_migrate_on_start_off_an_outdated_schema_is_refused_naming_the_fix(
    empty_db: Database,
) -> None:
    with pytest.raises(SchemaOutdatedError, match="longhaul db upgrade"):
        await prepare(empty_db, migrate=False)
    await prepare(empty_db, migrate=True)
    await prepare(empty_db, migrate=False)  # current now: nothing to refuse


def test_db_commands_upgrade_report_and_print_sql(settings: Settings, tmp_path: Path) -> None:
    env = clean_env(LONGHAUL_DATA_DIR=str(settings.data_dir), LONGHAUL_DATABASE_URL=settings.app_database_url)

    def longhaul(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LONGHAUL, "db", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    behind = longhaul("current")
    assert (behind.returncode, behind.stdout.strip()) == (
        1,
        f"app database at no schema; this code needs {head()}",
    )
    upgraded = longhaul("upgrade")
    assert (upgraded.returncode, upgraded.stdout.strip()) == (
        0,
        f"app database at revision {head()} (was empty)",
    )
    assert longhaul("upgrade").stdout.strip() == f"app database at revision {head()}"
    assert longhaul("current").returncode == 0
    sql = longhaul("upgrade", "--sql")
    assert sql.returncode == 0, sql.stderr
    assert "CREATE TABLE runs" in sql.stdout
