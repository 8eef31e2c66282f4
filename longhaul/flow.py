"""Flow control's one home: a subscription plus an event becomes a typed :class:`RunPlan`.

A :class:`~longhaul.workflows.pipeline.Subscription` declares the rules (concurrency, rate limit,
throttle, singleton, debounce, batch, cancel-on); :func:`plan_run` turns them, for one event of one
tenant, into what the run queue (:mod:`longhaul.queue`) records and enforces:

- **slots** (:class:`Slot`): named scopes with a limit the run must fit in to start, and marks it is found
  by (what another event's ``cancel_on`` cancels);
- a **gate** (:class:`Gate`): the one open run per scope that later events join instead of making a run
  (singleton, debounce, batch), with how they join;
- **cancels**: the scopes whose open runs this run cancels (a cancelling singleton's predecessor);
- a **fair key**: the value of the subscription's ``fair_share`` key, whose runs take turns with the
  other values' (:mod:`longhaul.queue.claiming`).

A scope's name (``video-processing/tenant=acme``) is the storage key that runs sharing a limit share; it
is made here and nowhere else; only :func:`scope_queue` and :data:`INTAKE` read one back (which queue a
limit set at run time belongs to; the key an intake refusal names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from longhaul.humanize import duration
from longhaul.workflows.pipeline import TENANT_KEY, Subscription

_VALUE_CHARS = 150  # of a payload value in a scope's name (the column holds 300)
# Before the scope of a limit of starts: a rate, a throttle, a refusing rate's intake.
_RATE, _THROTTLE, INTAKE = "rate:", "throttle:", "intake:"


def scope_queue(scope: str) -> str:
    """The queue a concurrency or rate scope belongs to (``rate:orders/tenant=acme`` → ``orders``)."""
    return scope.removeprefix(_RATE).removeprefix(_THROTTLE).partition("/")[0]


class SlotKind(StrEnum):
    CONCURRENCY = "concurrency"
    RATE = "rate"
    MARK = "mark"  # no limit: a name the run is found by (what an event's cancel_on matches)
    INTAKE = "intake"  # at most ``limit`` runs accepted per ``period``: more are refused, not delayed


_NO_WAIT = frozenset({SlotKind.MARK, SlotKind.INTAKE})  # kinds a claim never waits for


@dataclass(frozen=True)
class Slot:
    """A limit a run must fit in to start (see :mod:`longhaul.queue`), or a mark (no limit).

    - ``concurrency``: at most ``limit`` runs of the scope started and not closed;
    - ``rate``: at most ``limit`` starts per ``period`` seconds (a throttle is 1 per period / limit);
    - ``intake``: at most ``limit`` runs accepted per ``period`` seconds; the accept refuses more.
    """

    scope: str
    kind: SlotKind
    limit: int
    period: float | None = None  # seconds, for a rate

    @property
    def holds_back(self) -> bool:
        """Whether a run may wait for it (a concurrency or rate limit), once accepted."""
        return self.kind not in _NO_WAIT

    def describe(self, used: int) -> str:
        """Why a run waits for this slot, for people."""
        if self.kind == SlotKind.CONCURRENCY:
            return f"{used} of {self.limit} slots of {self.scope} busy"
        assert self.period is not None  # a rate's
        return f"rate limited: {self.limit} start(s) per {duration(self.period)} of {self.scope}"


class JoinKind(StrEnum):
    SINGLETON = "singleton"  # the open run of the key is the answer; nothing new is recorded
    DEBOUNCE = "debounce"  # the open run waits ``delay`` longer (and takes the payload, if trailing)
    BATCH = "batch"  # the payload is added to the open run's list


@dataclass(frozen=True)
class Gate:
    """The one open run per ``scope`` that later events of the scope join, and how they join it."""

    kind: JoinKind
    scope: str
    delay: timedelta = timedelta(0)  # debounce: the quiet time before the run may start
    max_delay: timedelta | None = None  # debounce: the latest start, counted from the run's first event
    take_payload: bool = False  # debounce, trailing: the run starts with the newest payload
    collect: bool = False  # debounce, collecting: each event is added to the run's list
    max_size: int = 0  # batch, collecting debounce: the run is due at once when it holds this many

    @property
    def name(self) -> str:
        """The gate's stored name (unique among open runs)."""
        return gate_name(self.kind, self.scope)

    @property
    def outlives_claim(self) -> bool:
        """A singleton's gate is held until its run closes; a debounce's or batch's closes at the claim
        (a started run takes no more events)."""
        return self.kind == JoinKind.SINGLETON


def gate_name(kind: JoinKind, scope: str) -> str:
    return f"{kind.value}:{scope}"


@dataclass
class RunPlan:
    """A run an event makes, before the run queue records it: who it is, when it may start, and its flow
    control. The queue may move it to another generation of its event id (``idempotency_key_ttl``)."""

    id: str
    tenant: str
    workflow: str
    workflow_id: str
    event: str
    event_id: str
    input: dict[str, Any]
    queue: str
    created_at: datetime
    priority: int = 3
    business_key: str | None = None
    replay_of: str | None = None
    parent_run_id: str | None = None  # a child run: the run that started it, and that run's root
    root_run_id: str | None = None
    generation: int = 1
    not_before: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key_expires_at: datetime | None = None
    traceparent: str | None = None
    tags: list[str] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    gate: Gate | None = None
    cancels: list[str] = field(default_factory=list)  # scopes whose open runs it cancels (a singleton's)
    fair_key: str | None = None  # the value it takes turns by in its queue (fair share)

    def startable_at_once(self, now: datetime) -> bool:
        """Due now, joined by no later event, and held back by no limit."""
        return (
            self.gate is None
            and (self.not_before is None or self.not_before <= now)
            and not any(slot.holds_back for slot in self.slots)
        )


@dataclass(frozen=True)
class Timing:
    """When a sender lets the run start and expire, and its priority (from the event's options)."""

    not_before: datetime | None = None
    expires_at: datetime | None = None
    priority: int | None = None
    idempotency_key_ttl: float | None = None


def _value(payload: BaseModel, field_name: str) -> str:
    return str(getattr(payload, field_name, None))[:_VALUE_CHARS]


@dataclass(frozen=True)
class _Keys:
    """Names the scopes of one event's run: the subscription's queue, the tenant, and the payload field
    that replaces each limit's declared key (the sender's ``concurrency_key``)."""

    sub: Subscription
    payload: BaseModel
    tenant: str
    override: str | None

    def scope(self, key: str | None) -> str:
        queue = self.sub.queue_name
        if key is None:
            return queue
        if key == TENANT_KEY:
            return f"{queue}/tenant={self.tenant}"
        field_name = self.override or key
        return f"{queue}/{self.tenant}/{field_name}={_value(self.payload, field_name)}"

    def fair_key(self) -> str | None:
        """The value runs take turns by: the tenant, or ``<tenant>/<value>`` of a payload field (one
        tenant's values never share a turn with another's)."""
        fair = self.sub.fair_share
        if fair is None:
            return None
        if fair.key == TENANT_KEY:
            return self.tenant
        return f"{self.tenant}/{_value(self.payload, fair.key)}"

    def singleton(self) -> str:
        assert self.sub.singleton is not None
        return gate_name(JoinKind.SINGLETON, self.scope(self.sub.singleton.key))


def cancel_mark(event_name: str, tenant: str, field_name: str, payload: BaseModel) -> str:
    """The mark an event named ``event_name`` cancels runs by
    (:class:`~longhaul.workflows.pipeline.CancelOn`)."""
    return f"cancel:{event_name}/{tenant}/{field_name}={_value(payload, field_name)}"


def _slots(keys: _Keys) -> list[Slot]:
    sub = keys.sub
    slots = [Slot(keys.scope(c.key), SlotKind.CONCURRENCY, c.limit) for c in sub.concurrency]
    if sub.singleton is not None:
        slots.append(Slot(keys.singleton(), SlotKind.CONCURRENCY, 1))
    slots += [
        Slot(cancel_mark(c.event.name, keys.tenant, c.match, keys.payload), SlotKind.MARK, 0)
        for c in sub.cancel_on
    ]
    if sub.rate_limit is not None:
        rate = sub.rate_limit
        if rate.mode == "refuse":
            scope, kind = f"{INTAKE}{keys.scope(rate.key)}", SlotKind.INTAKE
        else:
            scope, kind = f"{_RATE}{keys.scope(rate.key)}", SlotKind.RATE
        slots.append(Slot(scope, kind, rate.limit, rate.per.total_seconds()))
    if sub.throttle is not None:  # evenly spread: one start per period / limit
        throttle = sub.throttle
        period = throttle.per.total_seconds() / throttle.limit
        slots.append(Slot(f"{_THROTTLE}{keys.scope(throttle.key)}", SlotKind.RATE, 1, period))
    return slots


def _gather(plan: RunPlan, keys: _Keys) -> None:
    """For a subscription that makes several events one run: the gate later events join it by, and the
    start time and input the rule gives the first."""
    sub = keys.sub
    if sub.singleton is not None:
        if sub.singleton.mode == "cancel":
            plan.cancels.append(keys.singleton())  # it cancels the open one and waits for its slot
        else:
            plan.gate = Gate(JoinKind.SINGLETON, keys.scope(sub.singleton.key))
    elif sub.debounce is not None:
        debounce = sub.debounce
        plan.gate = Gate(
            JoinKind.DEBOUNCE,
            keys.scope(debounce.key),
            delay=debounce.delay,
            max_delay=debounce.max_delay,
            take_payload=debounce.mode == "trailing" and not debounce.collect,
            collect=debounce.collect,
            max_size=debounce.max_events if debounce.collect else 0,
        )
        plan.not_before = plan.created_at + debounce.delay
        if debounce.collect:
            plan.input = {"events": [plan.input], "event_ids": [plan.event_id]}
    elif sub.batch is not None:
        batch = sub.batch
        plan.input = {"events": [plan.input], "event_ids": [plan.event_id]}
        if batch.max_size > 1:
            plan.gate = Gate(JoinKind.BATCH, keys.scope(batch.key), max_size=batch.max_size)
            plan.not_before = plan.created_at + batch.max_wait


def plan_run(
    sub: Subscription,
    *,
    run_id: str,
    workflow_id: str,
    event: str,
    event_id: str,
    payload: BaseModel,
    tenant: str,
    business_key: str | None,
    timing: Timing,
    now: datetime,
    tags: list[str],
    traceparent: str | None = None,
    concurrency_key: str | None = None,
    replay_of: str | None = None,
    named_by_event_id: bool = True,
    parent: tuple[str, str] | None = None,
) -> RunPlan:
    """The pending run ``sub`` makes of an event. ``named_by_event_id``: the run's id comes from the
    event id (not a business key or a replay's name), so an ``idempotency_key_ttl`` applies to it.
    ``parent``: the run that starts it as its child, and that run's root."""
    keys = _Keys(sub, payload, tenant, concurrency_key)
    plan = RunPlan(
        id=run_id,
        tenant=tenant,
        workflow=sub.workflow_name,
        workflow_id=workflow_id,
        event=event,
        event_id=event_id,
        input=payload.model_dump(mode="json"),
        queue=sub.queue_name,
        created_at=now,
        priority=timing.priority or (sub.priority(payload) if sub.priority else 3),
        business_key=business_key,
        replay_of=replay_of,
        parent_run_id=parent[0] if parent else None,
        root_run_id=parent[1] if parent else None,
        not_before=timing.not_before,
        expires_at=timing.expires_at,
        traceparent=traceparent,
        tags=tags,
        slots=_slots(keys),
        fair_key=keys.fair_key(),
    )
    _gather(plan, keys)
    ttl = timing.idempotency_key_ttl
    if ttl is not None and plan.gate is None and named_by_event_id:
        plan.idempotency_key_expires_at = now + timedelta(seconds=ttl)
    return plan
