"""The run queue: what lies between accepting an event and starting its workflow in Temporal.

In five parts: :mod:`~longhaul.queue.accepting`, :mod:`~longhaul.queue.claiming` (dispatchers),
:mod:`~longhaul.queue.controls` (set while it runs), :mod:`~longhaul.queue.inspecting` (why a run
waits, queue depth) and :mod:`~longhaul.queue.signals` (signals routed to runs, sent behind);
:mod:`~longhaul.queue.tables` holds its tables and shared queries, and :mod:`longhaul.flow` makes the
plans it records.

Accepting an event is one transaction here (:meth:`RunQueue.accept`): a ``pending`` run record per
subscription, with the *slots* its subscription's flow control asks for (:mod:`longhaul.flow`). Dispatchers
(:mod:`longhaul.server.dispatcher`) then :meth:`~RunQueue.claim` due runs in priority then arrival order, only
where every slot has room, mark them ``queued`` and start their workflows behind.

A slot is a named scope with a limit (``video-processing/user_id=42``):

- ``concurrency``: at most ``limit`` runs of the scope started and not closed. Nothing is counted up or
  down: the claim counts the scope's runs whose record is ``queued`` or ``running``, so a slot frees the
  moment its run's record closes, and the reconcile sweep (which closes the records of runs whose
  workflow closed without telling) repairs every slot with them.
- ``rate``: at most ``limit`` starts per ``period``: each claim marks its slot busy until claim time +
  period. A throttle (starts spread evenly) is a rate of 1 per ``period / limit``.

One run per ``gate`` may be open at a time (debounce, batch): a unique column, so two API processes
accepting the same key at once cannot open two.

Fair share: a subscription's runs may take turns between the values of a key (the tenant by default):
the dispatchers claim in turns (:meth:`~longhaul.queue.claiming.Claiming.claim`), weighted per value.

PostgreSQL: any number of dispatchers claim together: candidate rows are locked ``FOR UPDATE SKIP
LOCKED``, and the scopes they count are locked with transaction advisory locks (in one order, so no
deadlock) before counting, so two dispatchers never both take a scope's last slot. New work and freed
slots are announced with ``NOTIFY``. SQLite: one dispatcher holds a lease (:meth:`RunQueue.claim` renews
it in the claim's own write transaction); the others stand by.
"""

from __future__ import annotations

from longhaul.db import Database
from longhaul.queue.accepting import Acceptance, Accepting, IntakeRefusedError, Recorded
from longhaul.queue.claiming import Claiming, Lease, LeaseLostError
from longhaul.queue.controls import Controlling, LimitOverride, Pause, Weight
from longhaul.queue.inspecting import Inspecting, QueueDepth
from longhaul.queue.signals import DueSignal, Signalling, SignalPlan
from longhaul.queue.tables import (
    FairShareRow,
    LeaseRow,
    LimitOverrideRow,
    QueuePauseRow,
    RunSlotRow,
    RunWaiterRow,
    SignalDeliveryRow,
)

__all__ = [
    "Acceptance",
    "DueSignal",
    "FairShareRow",
    "IntakeRefusedError",
    "Lease",
    "LeaseLostError",
    "LeaseRow",
    "LimitOverride",
    "LimitOverrideRow",
    "Pause",
    "QueueDepth",
    "QueuePauseRow",
    "Recorded",
    "RunQueue",
    "RunSlotRow",
    "RunWaiterRow",
    "SignalDeliveryRow",
    "SignalPlan",
    "Weight",
]


class RunQueue(Accepting, Claiming, Controlling, Inspecting, Signalling):
    """Accepts runs, hands them to dispatchers and says why each waits. One per process, sharing the
    process's database."""

    def __init__(self, db: Database) -> None:
        Accepting.__init__(self, db)
