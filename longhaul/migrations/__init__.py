"""Schema migrations of app storage (Alembic), for SQLite and PostgreSQL alike.

Two histories: longhaul's own tables (runs, keys, waitpoints, ...) in this package, and the application's
tables (its pipelines') in the application's ``migrations/versions`` folder, each with its own version
table. An upgrade runs longhaul's, then the application's; ``longhaul db revision`` writes into the
application's.

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
from dataclasses import dataclass
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
from longhaul.project import app_dir

log = logging.getLogger("longhaul.migrations")

# The revision that matches the schema longhaul made with create_all before it had migrations.
BASELINE = "0001"
# pg_advisory_xact_lock key of schema upgrades: any fixed 64-bit number (this one spells "longhaul").
_UPGRADE_LOCK = 0x6C6F6E676861756C


class SchemaOutdatedError(RuntimeError):
    """The app database is not at the revision this code expects (and upgrading on start is off)."""


@dataclass(frozen=True)
class History:
    """One Alembic history of app storage: its revisions' folder and the table that records where a
    database is in it."""

    name: str
    versions: Path
    version_table: str


ENGINE = History("longhaul", Path(__file__).parent / "versions", "alembic_version")


def application_history() -> History | None:
    """The application's history: ``migrations/versions`` in its folder, if it has one."""
    folder = app_dir()
    versions = folder / "migrations" / "versions" if folder is not None else None
    if versions is None or not versions.is_dir():
        return None
    return History("application", versions, "alembic_version_app")


def histories() -> list[History]:
    """What an upgrade runs, in order: longhaul's history, then the application's."""
    return [ENGINE, *filter(None, [application_history()])]


def metadata_of(tables: Sequence[Table]) -> MetaData:
    """The schema made of ``tables`` (the catalog's: longhaul's and its pipelines'), for comparisons."""
    metadata = MetaData()
    for table in tables:
        table.to_metadata(metadata)
    return metadata


def alembic_config(
    connection: Connection | None = None, metadata: MetaData | None = None, history: History = ENGINE
) -> Config:
    """Alembic's configuration of ``history`` without an ini file; env.py runs on ``connection`` when it is
    given, and compares with ``metadata`` (needed to autogenerate a revision, not to upgrade)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.set_main_option("path_separator", "os")  # a folder with a space in its name is one folder
    config.set_main_option("version_locations", str(history.versions))
    # New revisions are written in the project's format (`longhaul db revision`).
    config.set_section_option("post_write_hooks", "hooks", "ruff")
    config.set_section_option("post_write_hooks", "ruff.type", "module")
    config.set_section_option("post_write_hooks", "ruff.module", "ruff")
    config.set_section_option("post_write_hooks", "ruff.options", "format REVISION_SCRIPT_FILENAME")
    config.attributes["connection"] = connection
    config.attributes["metadata"] = metadata
    config.attributes["version_table"] = history.version_table
    return config


def _head_of(history: History) -> str | None:
    return ScriptDirectory.from_config(alembic_config(history=history)).get_current_head()


def head() -> str:
    """The newest revisions: the schema this code expects (longhaul's, and the application's after it)."""
    revisions = {history: _head_of(history) for history in histories()}
    label = _label(revisions)
    assert label is not None, "no migrations found"
    return label


def _label(revisions: dict[History, str | None]) -> str | None:
    """Where a database is, as one text: ``0011`` or ``0011, application 0001`` (None: no schema)."""
    engine = revisions.get(ENGINE)
    if engine is None:
        return None
    parts = [engine, *(f"{h.name} {r or 'none'}" for h, r in revisions.items() if h is not ENGINE)]
    return ", ".join(parts)


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
    """Longhaul's history to ``revision``, then (to head only) the application's."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
    config = alembic_config(conn)
    tables = set(inspect(conn).get_table_names())
    if ENGINE.version_table not in tables and "runs" in tables:
        command.stamp(config, BASELINE)
        log.info("app database made before migrations: adopted at revision %s", BASELINE)
    run = histories()
    before = _revisions(conn, run)
    command.upgrade(config, revision)
    if revision == "head":
        for history in run[1:]:
            command.upgrade(alembic_config(conn, history=history), "head")
    if conn.dialect.name == "sqlite" and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
        raise RuntimeError(f"the upgrade would leave rows referencing missing ones: {broken[:5]}")
    return _label(before), _label(_revisions(conn, run))


def _revisions(conn: Connection, run: Sequence[History]) -> dict[History, str | None]:
    """Where the database is in each history of ``run`` (None: not begun)."""
    return {history: _context(conn, history).get_current_revision() for history in run}


def _context(conn: Connection, history: History, **options: Any) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": history.version_table, **options})


async def current(db: Database) -> str | None:
    """Where the database is (as :func:`head` says it; None: no schema yet)."""
    async with db.engine.connect() as conn:
        return _label(await conn.run_sync(_revisions, histories()))


def given_tables_only(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """What a comparison looks at: the tables given, not the other history's or the version tables."""
    return not (type_ == "table" and reflected and compare_to is None)


async def differences(db: Database, tables: Sequence[Table]) -> list[Any]:
    """What ``tables`` declare and the database lacks, or has otherwise; empty when migrations and models
    agree (what a test checks after upgrading, on SQLite and PostgreSQL). Tables the database has beyond
    them are not differences (the version tables, another history's)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(
                _context(sync, ENGINE, compare_type=True, include_object=given_tables_only),
                metadata_of(tables),
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


async def new_revision(message: str, scratch: Path, tables: Sequence[Table], history: History) -> Path:
    """Write a revision of ``history`` for what ``tables`` (its tables) changed: autogenerated against a
    scratch SQLite database at the newest revisions. Read it before committing; autogenerate misses
    renames."""
    db = Database(f"sqlite+aiosqlite:///{scratch}")
    try:
        await upgrade(db)
        async with db.engine.connect() as conn:
            latest = (await conn.run_sync(_revisions, [history]))[history]
            next_id = f"{int(latest) + 1:04d}" if latest else BASELINE
            script = await conn.run_sync(
                lambda sync: command.revision(
                    alembic_config(sync, metadata_of(tables), history),
                    message=message,
                    autogenerate=True,
                    rev_id=next_id,
                )
            )
    finally:
        await db.close()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
