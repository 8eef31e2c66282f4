"""The app database: one SQLAlchemy 2 async engine per process, SQLite by default, PostgreSQL by URL.

Every table of app storage derives from :class:`Base`; the stores (runs, keys, the pipelines' own) share
one :class:`Database`, so a process holds one connection pool. Which tables make up app storage is the
catalog's to say (:meth:`longhaul.workflows.catalog.Catalog.tables`), not this module's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert

_WAL_ATTEMPTS = 100  # 5 s at most


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite drops time zones; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL lets the API read while the worker writes; busy_timeout makes writers queue instead of failing;
    foreign keys are off by default in SQLite.

    The driver's own transaction handling is switched off and SQLAlchemy emits BEGIN itself (the recipe of
    SQLAlchemy's SQLite documentation): otherwise a SAVEPOINT opens an implicit transaction that its
    RELEASE commits, and a later rollback of the "outer" transaction undoes nothing.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A schema upgrade asks for IMMEDIATE: it takes the write lock before reading the schema's revision.
        connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get('sqlite_begin', '')}")


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a no-op once it is). A new file needs its exclusive lock for that: when
    several connections open a fresh file at once, each can hold the shared lock another waits on, and
    SQLite answers "database is locked" at once rather than wait into a deadlock. The first to switch
    wins; the others retry, briefly, and find WAL on."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


async def insert_new(session: AsyncSession, row: Base) -> bool:
    """Insert ``row`` in a savepoint; False (and nothing written) if its key exists already.

    This is how "once per key" is enforced: a retried operation finds its earlier row. Done first in a
    transaction, it also takes SQLite's write lock at once, so the transaction never needs a lock upgrade.
    """
    try:
        async with session.begin_nested():
            session.add(row)
        return True
    except IntegrityError:
        return False


def upsert(table: Table, *, is_sqlite: bool) -> sqlite.Insert | postgresql.Insert:
    """An ``INSERT`` in SQLite's or PostgreSQL's dialect, which both take ``ON CONFLICT`` clauses
    (``on_conflict_do_nothing``, ``on_conflict_do_update``)."""
    return sqlite.insert(table) if is_sqlite else postgresql.insert(table)


def insert_ignoring_duplicates(table: Table, *, is_sqlite: bool) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` in SQLite's or PostgreSQL's dialect: a row whose unique key
    exists already is skipped, without the cost of a savepoint. Unlike :func:`insert_new`, only a
    unique-key conflict is skipped: a missing foreign key still raises. Build it once and execute it with
    parameters: it is on the hot paths (every event, every run update)."""
    return upsert(table, is_sqlite=is_sqlite).on_conflict_do_nothing()


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(
            url,
            pool_pre_ping=not self.is_sqlite,
            **({"pool_size": 1, "max_overflow": 0, "pool_timeout": 120} if self.is_sqlite else {}),
        )
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    async def close(self) -> None:
        await self.engine.dispose()


async def lock_scopes(conn: AsyncConnection, scopes: Sequence[str], *, is_sqlite: bool) -> None:
    """On PostgreSQL, hold a transaction advisory lock on each of ``scopes`` (give them in one order, so
    two transactions never wait on each other): what one counts or moves, no other counts meanwhile. On
    SQLite the transaction's write lock does that already."""
    if not is_sqlite:
        for scope in scopes:
            await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(scope))))


@asynccontextmanager
async def writing(db: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction that reads, then writes: on SQLite it takes the write lock at BEGIN (IMMEDIATE).
    A deferred one would start as a reader, and SQLite refuses at once ("database is locked", no
    busy wait) to upgrade a reader whose snapshot another connection's commit has made stale."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            yield conn
