"""The wire models: what the API answers and the Python client reads — run status, run updates, the run
record as the product shows it, waitpoints, queues, access tokens, bulk actions, alert destinations and
webhook outcomes. Pydantic only: the client (longhaul.client) imports nothing else of the engine, so it
loads no SQLAlchemy and no Temporal SDK (tests/test_structure.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TENANT = "default"
# longhaul's own runs (the deployment's schedules: reconciling records, cleaning up media) belong to no
# tenant of the product: they run as this one, which no key can be made for, so no tenant's lists, overview
# or failure rate count them; admin keys list them with ``system=true``.
SYSTEM_TENANT = "_system"
ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"  # event ids, business keys, run ids
TAG_PATTERN = r"^[^\s,'\"]+$"  # e.g. user:42, video:abc: no spaces, commas or quotes (lists, queries)


def cancellation(by: str, reason: str | None = None) -> str:
    """What a cancelled run's record says (its ``error``): who cancelled it, and why if they said —
    "cancelled by key 3f2a… (API): customer asked", "cancelled by event order.cancelled (evt-9): …"."""
    return f"cancelled by {by}" + (f": {reason}" if reason else "")


class RunStatus(StrEnum):
    """Where a run is. ``delayed`` and ``pending`` are in longhaul's run queue (not yet in Temporal): delayed
    until a time, or waiting for its turn (``pending_reason`` says why); ``queued`` is started in Temporal
    and waits for a worker; ``expired`` never started before its TTL ran out."""

    DELAYED = "delayed"
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT, RunStatus.EXPIRED}
)
REPLAYABLE_STATUSES = frozenset(
    {RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT, RunStatus.EXPIRED}
)
# In the run queue, not yet started in Temporal (stored as ``pending``; ``delayed`` while not due).
WAITING_STATUSES = frozenset({RunStatus.DELAYED, RunStatus.PENDING})
# Started in Temporal and not closed: what holds a concurrency slot.
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


def run_id_for(workflow_id: str) -> str:
    """The run id of a workflow id: short, URL-safe and derived, so any process can compute it.

    Deriving it (rather than drawing a random one) is what lets duplicate deliveries of an event, the API,
    the worker and a reconciliation sweep all agree on one run record without talking to each other.
    """
    return "run_" + hashlib.sha256(workflow_id.encode()).hexdigest()[:24]


def generation_workflow_id(workflow_id: str, generation: int) -> str:
    """The workflow id of a later run of one event id (sent again after its idempotency key expired):
    ``~`` is in no event id, so it names no other event's run."""
    return workflow_id if generation == 1 else f"{workflow_id}~{generation}"


class RunOrigin(BaseModel):
    """Who a run is, for a run whose record the API did not write (started by a schedule, or by hand
    in the Temporal UI): the worker then creates the record itself."""

    tenant: str
    workflow: str
    workflow_id: str
    event: str
    event_id: str


class RunUpdate(BaseModel):
    """A change to a run record sent by the worker side; ``None`` fields are left as they are."""

    run_id: str
    status: RunStatus | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    stage: str | None = Field(default=None, max_length=200)
    output: Any = None
    error: str | None = None
    attempt: int | None = None
    log: str | None = Field(default=None, description="A log line to append to the run's log.")
    log_level: str = "info"
    metadata: dict[str, Any] | None = Field(
        default=None, description="The run's whole metadata as the workflow holds it now (replaces it)."
    )
    origin: RunOrigin | None = Field(
        default=None, description="Create the record from this if it is missing."
    )
    version: str | None = Field(
        default=None,
        description="The Worker Deployment version of the worker that applies it (set once: the version "
        "the run started on, to which it stays pinned).",
    )
    op_id: str | None = Field(
        default=None,
        description="The operation (workflow run + sequence number): applied again, it logs its line once.",
    )


# The signal that tells a run one of the runs it waits for (its children: trigger_and_wait) closed.
CHILD_DONE_SIGNAL = "longhaul.child-done"


class ChildRun(BaseModel):
    """A run another run started and waits for (``trigger_and_wait``), as its parent sees it: where it is,
    and once closed, its output or error (what :data:`CHILD_DONE_SIGNAL` carries)."""

    run_id: str
    workflow: str
    workflow_id: str
    status: RunStatus
    output: Any = None
    error: str | None = None


class Chunk(BaseModel):
    """One stored chunk of a run's data stream (longhaul/streams.py), as readers get it."""

    seq: int = Field(description="Its place in the stream, from 1: resume after it (SSE id).")
    data: str
    attempt: int = Field(description="The attempt of the activity that wrote it (a retry continues).")
    at: datetime


class StreamInfo(BaseModel):
    """A run's stream: its name, how many chunks it has, its last chunk's seq, when that was written."""

    name: str
    chunks: int
    last_seq: int = Field(description="The seq of its last chunk (read after it for what comes next).")
    last_at: datetime


# The activity header that carries a workflow's pending run updates to the worker that runs the activity.
RUN_UPDATES_HEADER = "longhaul-run-updates"


class RunUpdates(BaseModel):
    """Run updates applied together, in order (one transaction)."""

    updates: list[RunUpdate]


class LogLine(BaseModel):
    at: datetime
    level: str
    message: str


class StepProgress(BaseModel):
    """Progress of one part of a run that runs beside others (e.g. one rendition's transcode)."""

    group: str
    step: str
    percent: int = Field(ge=0, le=100)
    detail: str | None = None


class WaitpointStatus(StrEnum):
    """Where a waitpoint token is: ``waiting`` for its completion; then completed, timed out (nobody
    completed it in time) or cancelled (its run closed first)."""

    WAITING = "waiting"
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Waitpoint(BaseModel):
    """A waitpoint token: a run waits (durably) until someone completes it or its time runs out."""

    id: str
    tenant: str
    run_id: str
    workflow_id: str
    kind: str = Field(
        description="What it waits for (e.g. order.approval); a declared kind's output is typed."
    )
    status: WaitpointStatus
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    timeout_at: datetime = Field(description="No completion is taken after this time.")
    created_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = Field(
        default=None, description="Who completed it: an API key (key:<id>) or the callback URL (callback)."
    )
    output: Any = Field(default=None, description="What its completion carried (JSON).")
    callback_url: str | None = Field(
        default=None,
        description="A signed URL that completes it with a POST of the output as the JSON body, without an "
        "API key (for an approver's link or another service's webhook); single use, void after timeout_at.",
    )


class RunRecord(BaseModel):
    """A run as the product sees it: the durable record in app storage."""

    id: str
    tenant: str
    workflow: str
    workflow_id: str
    event: str
    event_id: str
    business_key: str | None = None
    generation: int = Field(
        default=1,
        description="Which run of its event id this is: 2 and up when the id was sent again after its "
        "idempotency key expired.",
    )
    idempotency_key_expires_at: datetime | None = Field(
        default=None,
        description="Sending the event id again returns this run until then (never, if unset); after it, "
        "the same id makes a new run.",
    )
    tags: list[str] = Field(default_factory=list)
    replay_of: str | None = None
    parent_run_id: str | None = Field(
        default=None, description="The run whose workflow started this one and waits for it (a child run)."
    )
    root_run_id: str | None = Field(
        default=None, description="The run at the top of its parent's chain (a child of a child: the first)."
    )
    version: str | None = Field(
        default=None,
        description="The Worker Deployment version (deployment:build) whose workers started it and run it "
        "to the end (pinned); none for runs of unversioned workers.",
    )
    status: RunStatus
    pending_reason: str | None = Field(
        default=None, description="Why a delayed or pending run has not started yet."
    )
    priority: int = Field(default=3, description="1 starts first … 5 last.")
    not_before: datetime | None = Field(default=None, description="Not started before this time.")
    expires_at: datetime | None = Field(
        default=None, description="Expires (never starts) if not started by this time."
    )
    traceparent: str | None = Field(
        default=None, description="The trace of the request that accepted it (W3C traceparent), if traced."
    )
    paused_at: datetime | None = Field(
        default=None,
        description="Paused since then: a waiting run is not started, a started one is paused in Temporal "
        "(its timers and steps wait) until it is unpaused.",
    )
    pause_reason: str | None = Field(default=None, description="Who paused it, and why.")
    progress: int
    stage: str | None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="What the workflow reports about itself as it goes (set, increment, append from its "
        "code: longhaul/workflows/metadata.py), e.g. each rendition's state or the payment's; "
        "at most 64 KiB.",
    )
    input: Any
    output: Any
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    logs: list[LogLine] = Field(
        default_factory=list, description="Log lines, oldest first (run detail only)."
    )
    steps: list[StepProgress] = Field(
        default_factory=list, description="Progress of parallel parts, e.g. each transcode (run detail only)."
    )
    waitpoints: list[Waitpoint] = Field(
        default_factory=list,
        description="Its waitpoint tokens, oldest first, with the callback URL of each (run detail only).",
    )


class RunPage(BaseModel):
    """One page of a run listing; pass ``next_cursor`` back to get the next page."""

    runs: list[RunRecord]
    next_cursor: str | None


# How a request reached a run: started it, signalled it, replayed it, joined an open run of its key
# (the singleton running already, debounced into it, collected into its batch), or cancelled it.
Via = Literal["start", "signal", "replay", "singleton", "debounce", "batch", "cancel"]


class RunRef(BaseModel):
    """A run an API call reached, and where to read it."""

    run_id: str
    workflow: str
    status: RunStatus
    via: Via = Field(
        description="How the request reached the run: started it, signalled it, replayed it, joined an open "
        "run of its key (singleton, debounce, batch), or cancelled it (cancel_on)."
    )
    status_url: str


class EventAccepted(BaseModel):
    """The answer to a sent event: its id (generated if none was given) and the runs it reached."""

    event_id: str
    runs: list[RunRef]
    filtered_out: list[str] = Field(
        default_factory=list,
        description="Workflows subscribed to the event whose trigger filter it did not match: no run.",
    )


class BatchAccepted(BaseModel):
    results: list[EventAccepted]


class QueuePause(BaseModel):
    """A queue paused (``key`` null), or one tenant's runs of it: pending runs stay pending until resumed."""

    queue: str
    key: str | None = Field(description="The tenant whose runs are held; null: the whole queue.")
    reason: str | None
    paused_by: str | None = Field(description="The API key that paused it.")
    paused_at: datetime


class QueueInfo(BaseModel):
    """A queue of the run queue as ``GET /api/queues`` shows it (one tenant's runs)."""

    name: str
    workflows: list[str] = Field(description="What runs in it.")
    rules: list[str] = Field(description="Its flow control: limits, rates, singleton, debounce, batch.")
    pending: int = Field(description="Runs due but not started (waiting for a slot, a rate, or their turn).")
    delayed: int = Field(description="Runs not due yet (a delay, a debounce or a batch window).")
    running: int = Field(description="Runs started and not closed (what holds its slots).")
    oldest_wait_seconds: float = Field(description="How long the oldest pending run has waited.")
    pauses: list[QueuePause] = Field(
        default_factory=list,
        description="The queue paused (key null), or tenants' runs of it: yours, or every one for an admin.",
    )
    limits: dict[str, int] = Field(
        default_factory=dict,
        description="Limits set at run time, by scope, in place of the declared ones (admin keys see them).",
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Fair share: the key values whose weight is set (any other's is 1); a tenant key sees "
        "its own tenant's.",
    )


class PauseRequest(BaseModel):
    """``POST /api/queues/{queue}/pause`` and ``/resume``: the whole queue, or one tenant's runs of it."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(
        default=None, min_length=1, max_length=64, description="A tenant (a tenant key: its own only)."
    )
    reason: str | None = Field(default=None, max_length=500, description="Shown on every held run.")


class LimitRequest(BaseModel):
    """``PUT /api/queues/{queue}/limits``: a concurrency or rate limit for one scope of the queue."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(
        min_length=1,
        max_length=300,
        description="As a waiting run's reason names it: the queue (``video-processing``), a key of it "
        "(``video-processing/tenant=acme``), or a rate's (``rate:video-processing/tenant=acme``).",
    )
    limit: int = Field(ge=1, le=1_000_000, description="Runs at once, or starts per the declared period.")


class LimitSet(BaseModel):
    scope: str
    limit: int
    set_by: str | None


class WeightRequest(BaseModel):
    """``PUT /api/queues/{queue}/weights/{key}``: how many turns the key value takes to another's one."""

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(gt=0, le=100, description="Turns to a weight-1 value's one (0.5: one per two).")


class FairWeight(BaseModel):
    """A key value's weight in a fair-share queue."""

    queue: str
    key: str = Field(description="The tenant, or <tenant>/<value> for a payload field.")
    weight: float


# -- what the API answers about access tokens, bulk actions, alerts and webhooks ----------------------


class AccessToken(BaseModel):
    token: str = Field(description="Hand it to the browser: ?access_token=<token> or Authorization: Bearer.")
    expires_at: datetime
    run_id: str | None
    tag: str | None
    stream_url: str = Field(description="The stream it opens, token included (for an EventSource).")
    page_url: str = Field(description="The API's example page showing what the token watches, live.")


SAMPLE = 20  # runs a bulk request's answer names


class BulkAction(StrEnum):
    CANCEL = "cancel"
    REPLAY = "replay"
    RESUME = "resume"


class BulkAnswer(BaseModel):
    action: BulkAction
    dry_run: bool
    matched: int = Field(description="Runs the filter matches now.")
    sample: list[str] = Field(description=f"The first {SAMPLE} of them, newest first.")
    run: RunRef | None = Field(
        default=None, description="The bulk-action run carrying it out (not a dry run)."
    )
    status: Literal["counted", "accepted"]


class AlertKind(StrEnum):
    RUN_FAILED = "run.failed"  # failed or timed out
    RUN_EXPIRED = "run.expired"  # never started before its TTL ran out
    WAITPOINT_TIMED_OUT = "waitpoint.timed_out"


class DestinationType(StrEnum):
    WEBHOOK = "webhook"
    LOG = "log"


class AlertDestination(BaseModel):
    id: str
    tenant: str
    type: DestinationType
    url: str | None
    workflow: str | None
    kinds: list[AlertKind]
    created_at: datetime
    secret: str | None = Field(
        default=None,
        description='Verifies its webhooks (Longhaul-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")): '
        "shown when the destination is created only.",
    )


class DeadLetterStatus(StrEnum):
    DEAD = "dead"
    REDELIVERED = "redelivered"


class DeadLetter(BaseModel):
    id: str
    source: str
    event_id: str | None
    body: str
    reason: str
    status: DeadLetterStatus
    attempts: int
    received_at: datetime
    updated_at: datetime


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetter]


class WebhookOutcome(BaseModel):
    """What a webhook (or its re-delivery) came to: the runs it reached, or why it was ignored, or the
    dead letter it is kept as. The provider is always answered 2xx with it: nothing more will be done."""

    received: bool = Field(default=True, description="False: a re-delivery that still failed.")
    runs: list[str] = Field(default_factory=list)
    ignored: str | None = None
    dead_letter: str | None = None
    reason: str | None = None
