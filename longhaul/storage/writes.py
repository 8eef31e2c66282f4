"""Writing run records: what workers report (status, progress, logs, output), applied idempotently by
operation id and group-committed, and the progress of a run's parallel parts."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert, Update

from longhaul.alerts import enqueue
from longhaul.db import insert_new, utcnow
from longhaul.group_commit import GroupCommit
from longhaul.models import TERMINAL_STATUSES, AlertKind, RunRecord, RunStatus, RunUpdate, StepProgress
from longhaul.records import OPEN, RUNS, TAGS, RunRow, RunStepRow, notify_queue, record_of
from longhaul.storage.reads import RunReads
from longhaul.waitpoints import cancel_waiting


def _update_values(change: RunUpdate, now: datetime) -> dict[str, Any]:
    """The column values ``change`` sets (``None`` fields are left as they are)."""
    values: dict[str, Any] = {"updated_at": now}
    if change.status is not None:
        values["status"] = change.status.value
        if change.status == RunStatus.RUNNING:
            values["started_at"] = now  # unless set already: see _update_statement
        if change.status.terminal:
            values["finished_at"] = now
            values["gate"] = None  # no event joins a closed run
            if change.status == RunStatus.COMPLETED:
                values["progress"] = 100
    for field in ("progress", "stage", "error", "output"):
        value = getattr(change, field)
        if value is not None:
            values[field] = value
    if change.metadata is not None:
        values["run_metadata"] = change.metadata
    if change.attempt is not None:
        values["attempts"] = change.attempt
    if change.version is not None:
        values["version"] = change.version  # unless set already: see _update_statement
    return values


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Update:
    """The UPDATE of an open run that sets ``columns``, built once per set of columns and executed with
    parameters (``run`` and ``new_<column>``): building statements per change cost more CPU than running
    them. ``started_at`` keeps the first start, ``version`` the first version."""
    values: dict[str, Any] = {
        column: bindparam(f"new_{column}", type_=RUNS.c[column].type) for column in columns
    }
    for kept in ("started_at", "version"):
        if kept in values:
            values[kept] = func.coalesce(RUNS.c[kept], values[kept])
    return update(RUNS).where(RUNS.c.id == bindparam("run"), OPEN).values(values)


class _Applied:
    """What one group commit's updates did: per caller, whether each change changed its record; and, for
    the whole group, the log lines to insert, the runs closed and those failed (written once, together,
    at the end of the transaction: one statement each instead of one per change)."""

    def __init__(self) -> None:
        self.changed: builtins.list[builtins.list[bool]] = []
        self.lines: builtins.list[dict[str, Any]] = []
        self.closed: builtins.list[str] = []
        self.failed: builtins.list[tuple[str, str]] = []

    async def apply(self, conn: AsyncConnection, changes: Sequence[RunUpdate]) -> None:
        """Apply ``changes`` in order within ``conn``'s transaction."""
        results = []
        for change in changes:
            now = utcnow()
            values = _update_values(change, now)
            statement = _update_statement(tuple(values))
            parameters = {"run": change.run_id, **{f"new_{column}": v for column, v in values.items()}}
            changed = bool(getattr(await conn.execute(statement, parameters), "rowcount", 0))
            if changed and change.log:
                self.lines.append(
                    {
                        "run_id": change.run_id,
                        "at": now,
                        "level": change.log_level,
                        "message": change.log,
                        "op_id": change.op_id or f"update-{now.timestamp()}",
                    }
                )
            results.append(changed)
            if changed and change.status is not None and change.status.terminal:
                self.closed.append(change.run_id)
                if change.status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
                    self.failed.append((change.run_id, change.run_id))
        self.changed.append(results)

    async def finish(self, conn: AsyncConnection, insert_log: Insert) -> None:
        if self.lines:  # a retry's line is there already: the unique (run, op id) key keeps one
            await conn.execute(insert_log, self.lines)
        await enqueue(conn, AlertKind.RUN_FAILED, self.failed)  # alerts, in the transaction of the failure
        if self.closed:
            await cancel_waiting(conn, self.closed)  # a closed run waits for no token
            await notify_queue(conn)  # a closed run frees its slots: wake the dispatchers


class RunWrites(RunReads):
    """Writing run records (see :class:`longhaul.storage.RunStore`); it reads what it wrote before."""

    _insert_run: Insert
    _insert_log: Insert
    _updates: GroupCommit[Sequence[RunUpdate], builtins.list[bool]]

    async def adopt(
        self,
        *,
        run_id: str,
        tenant: str,
        workflow: str,
        workflow_id: str,
        event: str,
        event_id: str,
        input: Any,
        business_key: str | None = None,
        tags: list[str] | None = None,
        replay_of: str | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert a ``queued`` record; if the same run exists already, return it. Second item: inserted?"""
        now = utcnow()
        values: dict[str, Any] = dict.fromkeys(RUNS.columns.keys())
        values.update(
            priority=3,
            generation=1,
            id=run_id,
            tenant=tenant,
            workflow=workflow,
            workflow_id=workflow_id,
            event=event,
            event_id=event_id,
            business_key=business_key,
            replay_of=replay_of,
            status=RunStatus.QUEUED.value,
            progress=0,
            input=input,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        unique_tags = sorted(set(tags or []))
        # Core on a connection, a statement built once, no savepoint: this is on every event's path.
        async with self.db.engine.begin() as conn:
            result = await conn.execute(self._insert_run, values)
            inserted = bool(getattr(result, "rowcount", 0))
            if inserted and unique_tags:
                await conn.execute(insert(TAGS), [{"run_id": run_id, "tag": t} for t in unique_tags])
        if inserted:
            return record_of(values, unique_tags), True
        existing = await self.get(run_id, logs=False)
        if existing is None:  # a different run holds a unique key: a caller bug, not a duplicate
            raise IntegrityError("insert run", {"id": run_id}, Exception("unique key held by another run"))
        return existing, False

    async def reopen(self, change: RunUpdate, *, stage: str) -> bool:
        """The one way back from a final status: a failed run that is resumed (longhaul/server/resume.py) is
        ``running`` again, its error and finish cleared; ``change``'s log line is added. False if the run
        is not failed (resumed already by another call)."""
        now = utcnow()
        reopened = (
            update(RUNS)
            .where(RUNS.c.id == change.run_id, RUNS.c.status == RunStatus.FAILED.value)
            .values(status=RunStatus.RUNNING.value, error=None, output=None, finished_at=None, stage=stage,
                    updated_at=now)
        )  # fmt: skip
        async with self.db.engine.begin() as conn:
            if not getattr(await conn.execute(reopened), "rowcount", 0):
                return False
            if change.log:
                line = {"run_id": change.run_id, "at": now, "level": change.log_level, "message": change.log,
                        "op_id": f"reopen-{now.timestamp()}"}  # fmt: skip
                await conn.execute(self._insert_log, line)
        return True

    async def apply(self, change: RunUpdate, *, op_id: str) -> bool:
        """Apply a worker-side update; see :meth:`apply_all`. Returns whether the record changed."""
        [changed] = await self.apply_all([change.model_copy(update={"op_id": op_id})])
        return changed

    async def apply_all(self, changes: Sequence[RunUpdate]) -> builtins.list[bool]:
        """Apply worker-side updates in order, in one transaction. A run that reached a final status is
        never changed again.

        Each change's ``op_id`` names its operation (workflow run + sequence number): applied again (a
        retry, a redelivery), it changes nothing new and its log line is stored once (unique per run and
        op id). A change with an ``origin`` creates the record if it is missing (schedule-started runs).
        Returns, per change, whether the record changed.
        """
        changed = await self._apply_all(changes)
        missing = [c for c, done in zip(changes, changed, strict=True) if not done and c.origin is not None]
        if missing and await self.get(missing[0].run_id, logs=False) is None:
            origin = missing[0].origin
            assert origin is not None
            await self.adopt(
                run_id=missing[0].run_id,
                tenant=origin.tenant,
                workflow=origin.workflow,
                workflow_id=origin.workflow_id,
                event=origin.event,
                event_id=origin.event_id,
                input=None,
            )
            changed = await self._apply_all(changes)
        return changed

    async def _apply_all(self, changes: Sequence[RunUpdate]) -> builtins.list[bool]:
        """Group commit: updates sent at about the same time (many runs in flight) are applied by one
        writer in one transaction, which is far cheaper than a transaction each. Each caller still
        returns only once its own updates are committed."""
        return await self._updates.submit(changes)

    async def _write_updates(
        self, group: builtins.list[Sequence[RunUpdate]]
    ) -> builtins.list[builtins.list[bool]]:
        applied = _Applied()
        async with self.db.engine.begin() as conn:
            for changes in group:
                await applied.apply(conn, changes)
            await applied.finish(conn, self._insert_log)
        return applied.changed

    async def report_step(self, run_id: str, progress: StepProgress, *, span: tuple[int, int]) -> None:
        """Record one parallel part's progress and fold its group into the run's percent and stage.

        The group's mean percent maps onto ``span`` of the run's progress (e.g. transcodes cover 10 to
        70 %); the stage lists each part ("transcoding: 1080p 40%, 720p 75%"). Progress only moves forward,
        and a finished run is left alone.
        """
        values = {"percent": progress.percent, "detail": progress.detail}
        key = (
            RunStepRow.run_id == run_id,
            RunStepRow.group == progress.group,
            RunStepRow.step == progress.step,
        )
        async with self._sessions.begin() as session:
            # Write first: an SQLite transaction that reads before it writes can fail to upgrade its lock.
            updated = await session.execute(update(RunStepRow).where(*key).values(**values))
            if not getattr(updated, "rowcount", 0):
                step = RunStepRow(run_id=run_id, group=progress.group, step=progress.step, **values)
                if not await insert_new(session, step):
                    return  # no such run (a workflow started outside the catalog): nothing to report to
            rows = list(
                await session.scalars(
                    select(RunStepRow)
                    .where(RunStepRow.run_id == run_id, RunStepRow.group == progress.group)
                    .order_by(RunStepRow.step)
                )
            )
            mean = sum(r.percent for r in rows) / len(rows)
            percent = round(span[0] + (span[1] - span[0]) * mean / 100)
            stage = f"{progress.group}: " + ", ".join(f"{r.step} {r.percent}%" for r in rows)
            await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.not_in([s.value for s in TERMINAL_STATUSES]))
                .values(
                    progress=func.max(RunRow.progress, percent)
                    if self.db.is_sqlite
                    else func.greatest(RunRow.progress, percent),
                    stage=stage[:200],
                    updated_at=utcnow(),
                )
            )
