"""Controls set while the queue runs: the weights of fair-share flows (how many turns a key value takes
to another's one)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from longhaul.db import Database
from longhaul.queue.tables import FAIR_SHARES


@dataclass(frozen=True)
class Weight:
    """A key value's weight in a fair-share queue."""

    queue: str
    key: str
    weight: float


class Controlling:
    """The run queue's runtime controls (see :class:`longhaul.queue.RunQueue`)."""

    db: Database

    async def set_weight(self, queue: str, key: str, weight: float) -> Weight:
        """Give ``key`` of ``queue`` ``weight`` turns to a weight-1 value's one, from the next claim on
        (its place in the turns is kept)."""
        upsert = (sqlite.insert if self.db.is_sqlite else postgresql.insert)(FAIR_SHARES)
        async with self.db.engine.begin() as conn:
            await conn.execute(
                upsert.values(queue=queue, key=key, weight=weight).on_conflict_do_update(
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
