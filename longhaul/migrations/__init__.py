"""Schema migrations of app storage (Alembic), for SQLite and PostgreSQL alike.

Every process that opens app storage calls :func:`prepare`: by default it brings the schema to the newest
revision, so ``longhaul dev`` and a single machine need no extra step. In production, where a release job
runs ``longhaul db upgrade`` before new code rolls out, ``LONGHAUL_MIGRATE_ON_START=false`` makes API and
workers only check that the schema is at the revision their code expects, and refuse to start if not.

An upgrade is one transaction and holds a lock for its whole length (PostgreSQL: an advisory lock; SQLite:
``BEGIN IMMEDIATE``), so processes starting together upgrade once, one after the other. A database that
predates migrations (made by ``create_all``) is adopted: stamped at the baseline, then upgraded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longhaul.db import Database

log = logging.getLogger("longhaul.migrations")

# The revision that matches the schema longhaul made with create_all before it had migrations.
BASELINE = "0001"
# pg_advisory_xact_lock key of schema upgrades: any fixed 64-bit number (this one spells "longhaul").
_UPGRADE_LOCK = 0x6C6F6E676861756C


class SchemaOutdatedError(RuntimeError):
    """The app database is not at the revision this code expects (and upgrading on start is off)."""


def metadata_of(tables: Sequence[Table]) -> MetaData:
    """The schema made of ``tables`` (the catalog's: longhaul's and its pipelines'), for comparisons."""
    metadata = MetaData()
    for table in tables:
        table.to_metadata(metadata)
    return metadata


def alembic_config(connection: Connection | None = None, metadata: MetaData | None = None) -> Config:
    """Alembic's configuration without an ini file; env.py runs on ``connection`` when it is given, and
    compares with ``metadata`` (needed to autogenerate a revision, not to upgrade)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    # New revisions are written in the project's format (`longhaul db revision`).
    config.set_section_option("post_write_hooks", "hooks", "ruff")
    config.set_section_option("post_write_hooks", "ruff.type", "module")
    config.set_section_option("post_write_hooks", "ruff.module", "ruff")
    config.set_section_option("post_write_hooks", "ruff.options", "format REVISION_SCRIPT_FILENAME")
    config.attributes["connection"] = connection
    config.attributes["metadata"] = metadata
    return config


def head() -> str:
    """The newest revision: the schema this code expects."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "no migrations found"
    return revision


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to ``revision`` in one locked transaction (see the module docstring); the
    revisions before and after, as seen under the lock. Processes may race; within one process, upgrade
    once at a time (Alembic's migration context is global)."""
    async with db.engine.connect() as conn, _sqlite_foreign_keys_off(conn):
        conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            before, after = await conn.run_sync(_upgrade, revision)
    if before != after:
        log.info("app database schema upgraded from %s to %s", before or "empty", after)
    return before, after


@asynccontextmanager
async def _sqlite_foreign_keys_off(conn: AsyncConnection) -> AsyncIterator[None]:
    """SQLite: foreign keys off while migrating (the pragma is ignored inside a transaction, so it is set
    on the driver's connection before the upgrade begins). A revision that rebuilds a table (Alembic's
    batch mode: copy, drop, rename, SQLite's way to drop a constraint) would otherwise cascade the drop
    of the old table to every row referencing it; :func:`_upgrade` checks the keys before committing."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver: Any = (await conn.get_raw_connection()).driver_connection
    await driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        await driver.execute("PRAGMA foreign_keys=ON")


def _upgrade(conn: Connection, revision: str) -> tuple[str | None, str | None]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
    config = alembic_config(conn)
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" not in tables and "runs" in tables:
        command.stamp(config, BASELINE)
        log.info("app database made before migrations: adopted at revision %s", BASELINE)
    before = MigrationContext.configure(conn).get_current_revision()
    command.upgrade(config, revision)
    if conn.dialect.name == "sqlite" and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
        raise RuntimeError(f"the upgrade would leave rows referencing missing ones: {broken[:5]}")
    return before, MigrationContext.configure(conn).get_current_revision()


async def current(db: Database) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def differences(db: Database, tables: Sequence[Table]) -> list[Any]:
    """What ``tables`` declare and the database lacks, or has otherwise; empty when migrations and models
    agree (what a test checks after upgrading, on SQLite and PostgreSQL)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata_of(tables)
            )
        )


async def prepare(db: Database, *, migrate: bool) -> None:
    """What a process does before it uses app storage: upgrade, or check the schema is current."""
    if migrate:
        await upgrade(db)
        return
    at, expected = await current(db), head()
    if at != expected:
        raise SchemaOutdatedError(
            f"app database schema is at revision {at or 'none'}, this code needs {expected}: "
            "run `longhaul db upgrade` (or set LONGHAUL_MIGRATE_ON_START=true)"
        )


async def new_revision(message: str, scratch: Path, tables: Sequence[Table]) -> Path:
    """Write a migration for what ``tables`` (the catalog's) changed: autogenerated against a scratch
    SQLite database at the newest revision. Read it before committing; autogenerate misses renames."""
    db = Database(f"sqlite+aiosqlite:///{scratch}")
    try:
        _, latest = await upgrade(db)  # None while there are no migrations yet
        next_id = f"{int(latest) + 1:04d}" if latest else BASELINE
        async with db.engine.connect() as conn:
            script = await conn.run_sync(
                lambda sync: command.revision(
                    alembic_config(sync, metadata_of(tables)),
                    message=message,
                    autogenerate=True,
                    rev_id=next_id,
                )
            )
    finally:
        await db.close()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
