"""Controls set while the queue runs: pauses (of a queue, of one tenant's runs in it, or of one run), limits
and the weights of fair-share flows (how many turns a key value takes to another's one). Stored: restarts
and deploys keep them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from longhaul.db import Database, as_utc, upsert, utcnow
from longhaul.queue.tables import ACTIVE, FAIR_SHARES, LIMITS, PAUSES, PENDING, RUNS
from longhaul.records import notify_queue


@dataclass(frozen=True)
class Weight:
    """A key value's weight in a fair-share queue."""

    queue: str
    key: str
    weight: float


@dataclass(frozen=True)
class Pause:
    """A queue paused (``key`` None), or one tenant's runs of it."""

    queue: str
    key: str | None
    reason: str | None
    paused_by: str | None
    paused_at: datetime


@dataclass(frozen=True)
class LimitOverride:
    """A limit set at run time for one scope, in place of the declared one."""

    scope: str
    limit: int
    set_by: str | None


class Controlling:
    """The run queue's runtime controls (see :class:`longhaul.queue.RunQueue`)."""

    db: Database

    async def pause(self, queue: str, key: str | None, reason: str | None, by: str | None) -> Pause:
        """Hold ``queue``'s pending runs (of tenant ``key`` only, if given) until :meth:`resume`; runs
        already started go on. Pausing again replaces the reason."""
        statement = upsert(PAUSES, is_sqlite=self.db.is_sqlite)
        now = utcnow()
        values = {"queue": queue, "key": key or "", "reason": reason, "paused_by": by, "paused_at": now}
        async with self.db.engine.begin() as conn:
            await conn.execute(
                statement.values(**values).on_conflict_do_update(
                    index_elements=["queue", "key"],
                    set_={name: values[name] for name in ("reason", "paused_by", "paused_at")},
                )
            )
        return Pause(queue, key, reason, by, now)

    async def resume(self, queue: str, key: str | None) -> bool:
        """Let the paused runs start again (the dispatchers are woken); False if it was not paused."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                delete(PAUSES).where(PAUSES.c.queue == queue, PAUSES.c.key == (key or ""))
            )
            if resumed := bool(getattr(result, "rowcount", 0)):
                await notify_queue(conn)
        return resumed

    async def pauses(self, queue: str | None = None) -> list[Pause]:
        """The pauses in force, of ``queue`` or of every queue."""
        statement = select(PAUSES).order_by(PAUSES.c.queue, PAUSES.c.key)
        if queue is not None:
            statement = statement.where(PAUSES.c.queue == queue)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [
            Pause(
                row["queue"],
                row["key"] or None,
                row["reason"],
                row["paused_by"],
                as_utc(row["paused_at"]) or utcnow(),
            )
            for row in rows
        ]

    async def pause_run(self, run_id: str, why: str) -> bool:
        """Hold a run no dispatcher has taken yet (it stays pending, saying ``why``) until
        :meth:`unpause_run`; False if one has taken it (or it is not waiting)."""
        return await self._set_paused(run_id, [PENDING], utcnow(), why)

    async def mark_paused(self, run_id: str, why: str | None) -> bool:
        """Note in the record of a started run that its workflow is paused in Temporal (``why`` None:
        unpaused); False if the run is not started and open."""
        return await self._set_paused(run_id, ACTIVE, utcnow() if why else None, why)

    async def unpause_run(self, run_id: str) -> bool:
        """Let a held waiting run start (the dispatchers are woken); False if it was not held waiting."""
        return await self._set_paused(run_id, [PENDING], None, None)

    async def _set_paused(
        self, run_id: str, statuses: list[str], at: datetime | None, why: str | None
    ) -> bool:
        held = RUNS.c.paused_at.is_(None) if at is not None else RUNS.c.paused_at.is_not(None)
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.status.in_(statuses), held)
                .values(paused_at=at, pause_reason=why, updated_at=utcnow())
            )
            if (changed := bool(getattr(result, "rowcount", 0))) and at is None:
                await notify_queue(conn)
        return changed

    async def set_limit(self, scope: str, limit: int, by: str | None) -> LimitOverride:
        """Hold ``scope`` (a concurrency or rate scope, as a waiting run's reason names it) to ``limit``
        instead of its declared limit, from the next claim on."""
        statement = upsert(LIMITS, is_sqlite=self.db.is_sqlite)
        values = {"scope": scope, "limit": limit, "set_by": by, "set_at": utcnow()}
        async with self.db.engine.begin() as conn:
            await conn.execute(
                statement.values(**values).on_conflict_do_update(
                    index_elements=["scope"], set_={"limit": limit, "set_by": by, "set_at": values["set_at"]}
                )
            )
            await notify_queue(conn)  # a raised limit may let runs start now
        return LimitOverride(scope, limit, by)

    async def clear_limit(self, scope: str) -> bool:
        """Back to the declared limit; False if none was set."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(delete(LIMITS).where(LIMITS.c.scope == scope))
            await notify_queue(conn)
        return bool(getattr(result, "rowcount", 0))

    async def limits(self) -> list[LimitOverride]:
        """The limits set at run time."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(LIMITS.c.scope, LIMITS.c.limit, LIMITS.c.set_by).order_by(LIMITS.c.scope)
            )
            return [LimitOverride(scope, limit, by) for scope, limit, by in rows]

    async def set_weight(self, queue: str, key: str, weight: float) -> Weight:
        """Give ``key`` of ``queue`` ``weight`` turns to a weight-1 value's one, from the next claim on
        (its place in the turns is kept)."""
        statement = upsert(FAIR_SHARES, is_sqlite=self.db.is_sqlite)
        async with self.db.engine.begin() as conn:
            await conn.execute(
                statement.values(queue=queue, key=key, weight=weight).on_conflict_do_update(
                    index_elements=["queue", "key"], set_={"weight": weight}
                )
            )
        return Weight(queue, key, weight)

    async def clear_weight(self, queue: str, key: str) -> bool:
        """Back to weight 1; False if it had none set."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(FAIR_SHARES)
                .where(FAIR_SHARES.c.queue == queue, FAIR_SHARES.c.key == key, FAIR_SHARES.c.weight != 1)
                .values(weight=1.0)
            )
        return bool(getattr(result, "rowcount", 0))

    async def weights(self, queue: str | None = None) -> list[Weight]:
        """The weights set (other than 1), of ``queue`` or of every queue."""
        statement = select(FAIR_SHARES.c.queue, FAIR_SHARES.c.key, FAIR_SHARES.c.weight).where(
            FAIR_SHARES.c.weight != 1, FAIR_SHARES.c.queue != ""
        )
        if queue is not None:
            statement = statement.where(FAIR_SHARES.c.queue == queue)
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(statement.order_by(FAIR_SHARES.c.queue, FAIR_SHARES.c.key))
            return [Weight(q, k, w) for q, k, w in rows]
