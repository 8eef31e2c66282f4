"""Schema migrations on real SQLite and PostgreSQL: they build exactly what the models declare, adopt a
database made before migrations, run once when processes start together, and the ``longhaul db``
commands a release job uses work as a user would call them."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longhaul.config import Settings
from longhaul.db import Database
from longhaul.migrations import BASELINE, SchemaOutdatedError, current, differences, head, prepare, upgrade
from longhaul.models import RunStatus
from longhaul.storage import RunStore
from tests.postgres import both_databases
from tests.processes import LONGHAUL, clean_env
from workflows.catalog import CATALOG

pytestmark = both_databases


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
