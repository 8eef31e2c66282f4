"""API keys: one tenant each, stored hashed, shown once, revocable, with a role.

A key reads ``lh_<id>_<secret>``: the id finds the row, the secret is checked against its SHA-256 in
constant time. Only the hash is stored, so a copy of the database gives nobody a working key.

A ``tenant`` key acts on its tenant's events and runs only. An ``admin`` key does that for its tenant and
also acts on what belongs to no tenant: the global schedules, the webhook dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import DateTime, String, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, utcnow
from longhaul.models import SYSTEM_TENANT

log = logging.getLogger("longhaul.keys")

PREFIX = "lh_"
REVOKED_CHANNEL = "longhaul_keys_revoked"  # PostgreSQL: NOTIFY on a revocation, LISTENed by API processes
RELISTEN_SECONDS = 1.0


class Role(StrEnum):
    TENANT = "tenant"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    """Who an API request acts for: the key's tenant and role (and the key's id, for the record of who
    did what, e.g. completed a waitpoint)."""

    tenant: str
    role: Role
    key_id: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == Role.ADMIN


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), server_default=Role.TENANT.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(BaseModel):
    id: str
    tenant: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _marker(db: Database) -> Path | None:
    """SQLite: the file beside the database that a revocation appends to. Every process of the database is
    on this machine, so one ``stat`` per request tells each of them that a key was revoked: no query."""
    path = make_url(str(db.engine.url)).database
    return Path(f"{path}.revoked") if db.is_sqlite and path and path != ":memory:" else None


def _stamp(marker: Path) -> int:
    """The marker's size: each revocation appends a line, so it never comes back to a value seen."""
    try:
        return marker.stat().st_size
    except FileNotFoundError:
        return 0


class KeyStore:
    """API keys in app storage. ``cache_seconds``: how long a process may answer a valid key from memory
    instead of the database (a key used again and again costs no query).

    A revocation still takes effect at once in every process: on SQLite, the revoking process appends to a
    marker file beside the database, and a cached answer counts only while the marker is unchanged (one
    ``stat``); on PostgreSQL, it NOTIFYs, and a process trusts its cache only while :meth:`watching`
    LISTENs (the API does), dropping it at each notification and whenever the connection is lost."""

    def __init__(self, db: Database, cache_seconds: float = 0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        # key hash → (caller, valid until (monotonic), the generation it was read in)
        self._valid: dict[str, tuple[Caller, float, int]] = {}
        self._lookup = asyncio.Lock()  # when a busy key's entry expires, one request reads it, not all
        self._marker = _marker(db)
        self._listening = False  # PostgreSQL: whether notifications of revocations reach this process
        self._revocations = 0  # seen by this process (its own, notified ones, a lost connection)

    async def create(self, tenant: str, name: str = "", role: Role = Role.TENANT) -> tuple[ApiKey, str]:
        """A new key for ``tenant``; the second item is the key itself, which is never shown again."""
        if tenant == SYSTEM_TENANT:
            raise ValueError(
                f"'{SYSTEM_TENANT}' is longhaul's own tenant (its schedules' runs): no key acts for it"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        row = ApiKeyRow(
            id=key_id,
            tenant=tenant,
            name=name,
            secret_hash=_hash(secret),
            role=role.value,
            created_at=utcnow(),
            revoked_at=None,
        )
        async with self.db.sessions.begin() as session:
            session.add(row)
        return _key(row), f"{PREFIX}{key_id}_{secret}"

    async def tenant_of(self, presented: str) -> str | None:
        """The tenant of a valid, unrevoked key; None for anything else."""
        caller = await self.caller_of(presented)
        return caller.tenant if caller else None

    async def caller_of(self, presented: str) -> Caller | None:
        """Tenant and role of a valid, unrevoked key; None for anything else."""
        if not presented.startswith(PREFIX) or presented.count("_") < 2:
            return None
        digest = _hash(presented)
        if (caller := self._cached(digest)) is not None:
            return caller
        if self.cache_seconds > 0:
            async with self._lookup:
                return self._cached(digest) or await self._look_up(presented, digest)
        return await self._look_up(presented, digest)

    def _cached(self, digest: str) -> Caller | None:
        cached = self._valid.get(digest)
        if cached is None or cached[1] <= time.monotonic() or cached[2] != self._generation():
            return None
        return cached[0]

    def _generation(self) -> int | None:
        """A number that changes whenever a key may have been revoked: a cached answer counts only in the
        generation it was read in (a lookup that raced a revocation is not trusted). None: no cache can
        be trusted now (PostgreSQL, not listening)."""
        if self._marker is not None:
            return _stamp(self._marker)
        return self._revocations if self.db.is_sqlite or self._listening else None

    def _revoked(self, *_args: Any) -> None:
        self._revocations += 1
        self._valid.clear()

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """On PostgreSQL, LISTEN for revocations made anywhere while the block runs (a cache is trusted
        only while listening); on SQLite, nothing is needed."""
        if self.db.is_sqlite:
            yield
            return
        task = asyncio.create_task(self._listen(), name="longhaul-key-revocations")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        while True:
            try:
                await self._listen_once()
            except Exception as error:  # the database is away: no cache until listening again
                log.warning("not listening for key revocations (%s); keys are checked per request", error)
            finally:
                self._listening = False
                self._revoked()
            await asyncio.sleep(RELISTEN_SECONDS)

    async def _listen_once(self) -> None:
        """LISTEN on one connection until it closes."""
        async with self.db.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            closed = asyncio.Event()
            driver.add_termination_listener(lambda *_args: closed.set())
            await driver.add_listener(REVOKED_CHANNEL, self._revoked)
            self._revoked()  # a new generation: nothing read while not listening is trusted
            self._listening = True
            await closed.wait()

    async def _look_up(self, presented: str, digest: str) -> Caller | None:
        key_id, secret = presented[len(PREFIX) :].split("_", 1)
        generation = self._generation()  # before reading: a revocation meanwhile voids the answer
        async with self.db.session() as session:
            row = await session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        caller = Caller(row.tenant, Role(row.role), row.id)
        if self.cache_seconds > 0 and generation is not None:
            self._valid[digest] = (caller, time.monotonic() + self.cache_seconds, generation)
        return caller

    async def revoke(self, key_id: str) -> bool:
        """Revoke the key: from now on no process accepts it (see the class)."""
        async with self.db.sessions.begin() as session:
            result = await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            revoked = bool(getattr(result, "rowcount", 0))
            if revoked and not self.db.is_sqlite:  # delivered when the revocation commits
                await session.execute(select(func.pg_notify(REVOKED_CHANNEL, key_id)))
        if revoked and self._marker is not None:
            with self._marker.open("a") as marker:  # every process's cache, at its next request
                marker.write(f"{utcnow().isoformat()} {key_id}\n")
        self._revoked()
        return revoked

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        statement = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
        if tenant is not None:
            statement = statement.where(ApiKeyRow.tenant == tenant)
        async with self.db.session() as session:
            return [_key(row) for row in await session.scalars(statement)]


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        role=Role(row.role),
        created_at=as_utc(row.created_at) or row.created_at,
        revoked_at=as_utc(row.revoked_at),
    )
