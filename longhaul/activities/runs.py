"""How run-record updates sent from workflows reach app storage (workflows never do I/O).

Two ways, both idempotent per update (its op id): the ``apply_run_updates`` local activity, and the
updates a workflow attaches to the header of its next activity, applied by :class:`ApplyCarriedUpdates`
on the worker that runs that activity just before the activity itself (no extra task on the server).
"""

from __future__ import annotations

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from longhaul.activities.streams import writing_streams
from longhaul.models import RUN_UPDATES_HEADER, RunUpdate, RunUpdates
from longhaul.storage import RunStore


def stamped(updates: list[RunUpdate], version: str | None) -> list[RunUpdate]:
    """``updates`` carrying the worker's Worker Deployment version (the record keeps the first: the
    version a run started on, which its later tasks and activities run on too when pinned)."""
    if version is None:
        return updates
    return [update.model_copy(update={"version": version}) for update in updates]


class RunActivities:
    """Activities that need app storage; the worker creates one instance with its store (and its Worker
    Deployment version, if versioned)."""

    def __init__(self, store: RunStore, version: str | None = None) -> None:
        self.store = store
        self.version = version

    @activity.defn(name="apply_run_updates")
    async def apply_run_updates(self, batch: RunUpdates) -> None:
        """Apply ``batch`` to the run record, in order. Idempotent: applying the same updates twice is
        harmless, and a run that reached a final status is never moved back."""
        changed = await self.store.apply_all(stamped(batch.updates, self.version))
        if not all(changed):
            activity.logger.info("run %s already final or missing; update skipped", batch.updates[0].run_id)

    @activity.defn(name="runs.open")
    async def open_runs(self, run_ids: list[str]) -> list[str]:
        """Which of ``run_ids`` have not closed yet (a missing run counts as closed)."""
        runs = [await self.store.get(run_id, logs=False) for run_id in run_ids]
        return [run.id for run in runs if run is not None and not run.status.terminal]


class ApplyCarriedUpdates(ActivityInboundInterceptor):
    """Applies the run updates carried in an activity's header, then runs the activity (with the run's
    streams open to it: :func:`longhaul.activities.streams.stream`).

    Progress must never fail the work: if app storage refuses the updates, the activity still runs and
    the failure is logged; the run's next update, its final record (a local activity, retried until
    storage is back) and the ``reconcile-runs`` schedule bring the record up to date.
    """

    def __init__(self, next: ActivityInboundInterceptor, store: RunStore, version: str | None = None) -> None:
        super().__init__(next)
        self.store = store
        self.version = version

    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        writing_streams(self.store.streams)  # stream() in the activity writes to the run's streams
        payload = input.headers.get(RUN_UPDATES_HEADER)
        if payload is not None:
            batch = activity.payload_converter().from_payload(payload, RunUpdates)
            try:
                await self.store.apply_all(stamped(batch.updates, self.version))
            except Exception as error:
                activity.logger.warning("run %s: progress not recorded: %s", batch.updates[0].run_id, error)
        return await super().execute_activity(input)
