"""API keys: one tenant each, stored hashed, shown once, revocable, with a role.

A key reads ``lh_<id>_<secret>``: the id finds the row, the secret is checked against its SHA-256 in
constant time. Only the hash is stored, so a copy of the database gives nobody a working key.

A ``tenant`` key acts on its tenant's events and runs only. An ``admin`` key does that for its tenant and
also acts on what belongs to no tenant: the global schedules, the webhook dead letters.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import DateTime, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, utcnow

PREFIX = "lh_"


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


class KeyStore:
    """API keys in app storage. ``cache_seconds``: how long a process may answer a valid key from memory
    instead of the database (a revocation made elsewhere takes effect within that time)."""

    def __init__(self, db: Database, cache_seconds: float = 0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._valid: dict[str, tuple[Caller, float]] = {}  # key hash → (caller, valid until, monotonic)
        self._lookup = asyncio.Lock()  # when a busy key's entry expires, one request reads it, not all

    async def create(self, tenant: str, name: str = "", role: Role = Role.TENANT) -> tuple[ApiKey, str]:
        """A new key for ``tenant``; the second item is the key itself, which is never shown again."""
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
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    async def _look_up(self, presented: str, digest: str) -> Caller | None:
        key_id, secret = presented[len(PREFIX) :].split("_", 1)
        async with self.db.session() as session:
            row = await session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        caller = Caller(row.tenant, Role(row.role), row.id)
        if self.cache_seconds > 0:
            self._valid[digest] = (caller, time.monotonic() + self.cache_seconds)
        return caller

    async def revoke(self, key_id: str) -> bool:
        self._valid.clear()  # this process stops accepting it at once; others within cache_seconds
        async with self.db.sessions.begin() as session:
            result = await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return bool(getattr(result, "rowcount", 0))

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
