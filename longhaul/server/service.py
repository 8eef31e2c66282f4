"""What callers can do to runs: send events, signal, cancel, replay. Shared by the API and the CLI.

Order matters for durability: the ``queued`` record is written before the workflow starts, so a run never
exists in Temporal without a product record. If Temporal cannot be reached, a record this request created
is removed again, so nothing claims a run that never started; a retry then starts it. Dedupe is enforced
twice: the derived run id is the record's primary key, and the stable workflow id is started with
USE_EXISTING / REJECT_DUPLICATE, so a duplicate never runs twice even if records were lost.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from longhaul.activities.children import CancelChildren, InvalidTriggerError, TriggerRequest
from longhaul.config import Settings
from longhaul.db import utcnow
from longhaul.filters import matches
from longhaul.flow import RunPlan, Timing, cancel_mark, plan_run
from longhaul.models import (
    REPLAYABLE_STATUSES,
    WAITING_STATUSES,
    RunRecord,
    RunStatus,
    RunUpdate,
    Via,
    cancellation,
    run_id_for,
)
from longhaul.queue import RunQueue, SignalPlan
from longhaul.server.envelopes import (
    BatchItem,
    ConflictError,
    EventEnvelope,
    InvalidInputError,
    NotFoundError,
    TemporalUnavailableError,
    UnknownEventError,
    check_reuse,
    repeated_ids,
)
from longhaul.server.workflow_pause import cancelled_while_paused
from longhaul.storage import RunStore
from longhaul.telemetry import continued, current_traceparent
from longhaul.temporal import (
    BUSINESS_KEY,
    EVENT,
    RPC_TIMEOUT,
    RUN_ID,
    TAGS,
    TASK_QUEUES_MEMO,
    TENANT,
    is_unavailable,
    signal_once,
)
from longhaul.workflows.catalog import Catalog, business_key, load_catalog
from longhaul.workflows.pipeline import (
    SignalRoute,
    Subscription,
    signal_names,
    signal_schema,
)


# How long one start or signal may wait for Temporal before the caller is answered "unavailable".
@dataclass(frozen=True)
class Delivery:
    """A run the event reached, and how (:data:`longhaul.models.Via`)."""

    run: RunRecord
    via: Via


@dataclass(frozen=True)
class Accepted:
    event_id: str
    deliveries: list[Delivery]
    filtered_out: list[str] = field(default_factory=list)  # workflows whose trigger filter it did not match


def workflow_id_for(workflow: str, tenant: str, instance: str) -> str:
    """Stable, readable workflow id: the same event id (or key) always maps to the same workflow."""
    return f"{workflow}/{tenant}/{instance}"


def _instance(sub: Subscription, event_id: str, key: str | None) -> str:
    """What names a run within its workflow and tenant: the business key (``key``) for a once-per-key
    subscription, else the event id."""
    return key if sub.once_per_key and key is not None else event_id


class RunService:
    """Turns events into runs and acts on runs. One per process, sharing its Temporal client and store.

    Sending an event only records its runs (:meth:`send`: one transaction in the run queue); a dispatcher
    (:mod:`longhaul.server.dispatcher`) starts them with :meth:`start` when their flow control lets them."""

    def __init__(
        self,
        client: Client,
        store: RunStore,
        settings: Settings,
        catalog: Catalog | None = None,
        *,
        eager: bool = False,
    ) -> None:
        """``eager``: a worker of the main task queue polls with ``client`` in this process, so a start
        asks the server to hand the run's first workflow task straight back to it (no poll, no match)."""
        self.client = client
        self.eager = eager
        self.store = store
        self.queue = RunQueue(store.db)
        self.settings = settings
        self.catalog = catalog or load_catalog(settings.catalog)  # default: the application's

    # -- events -------------------------------------------------------------------------------------------

    def validate(
        self, event_name: str, payload: dict[str, Any], *loc: str | int, sender: str | None = None
    ) -> BaseModel:
        """Validate ``payload`` against the event's schema (and, from ``sender``, its tenant field);
        raises UnknownEventError or InvalidInputError (error locations prefixed with ``loc``)."""
        event_type = self.catalog.events.get(event_name)
        if event_type is None:
            raise UnknownEventError(event_name, list(self.catalog.events))
        try:
            valid = event_type.schema.model_validate(payload)
        except ValidationError as error:
            raise InvalidInputError.from_validation(error, *loc) from error
        field = event_type.schema.tenant_field
        if sender is not None and field is not None and (named := getattr(valid, field)) != sender:
            problem = f"names tenant '{named}', but this key sends for tenant '{sender}'"
            raise InvalidInputError([{"type": "tenant_mismatch", "loc": [*loc, field], "msg": problem}])
        return valid

    async def send(self, event_name: str, envelope: EventEnvelope, *, tenant: str) -> Accepted:
        """Validate and record the event's runs (pending) and the signals it routes to open runs (sent by
        a dispatcher), in one transaction. Raises UnknownEventError, InvalidInputError, NotFoundError (a
        routed event whose run is not open: nothing is recorded)."""
        payload = self.validate(event_name, envelope.payload, "payload", sender=tenant)
        [accepted] = await self._accept([(event_name, envelope, payload)], tenant, ("options",))
        return accepted

    async def send_batch(self, items: list[BatchItem], *, tenant: str) -> list[Accepted]:
        """Validate every event first, then record all their runs in one transaction (nothing is
        recorded if any is invalid), with the signals routed events make."""
        events: list[tuple[str, EventEnvelope, BaseModel]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                payload = self.validate(item.name, item.payload, "events", index, "payload", sender=tenant)
                events.append((item.name, item, payload))
            except UnknownEventError as error:
                errors.append({"type": "unknown_event", "loc": ["events", index, "name"], "msg": str(error)})
            except InvalidInputError as error:
                errors.extend(error.errors)
        errors += repeated_ids(items)
        if errors:
            raise InvalidInputError(errors)
        return await self._accept(events, tenant, ("events", "{index}", "options"))

    async def _accept(
        self,
        events: list[tuple[str, EventEnvelope, BaseModel]],
        tenant: str,
        options_loc: tuple[str, ...],
        *,
        parent: RunRecord | None = None,
        only: str | None = None,
    ) -> list[Accepted]:
        """Record the events' runs (``parent``: as its children, which it waits for; ``only``: of that
        workflow's subscriptions alone)."""
        now = utcnow()
        planned: list[tuple[str, list[RunPlan]]] = []
        filtered_out: list[list[str]] = []  # per event: the workflows whose filter it did not match
        errors: list[dict[str, Any]] = []
        for index, (name, envelope, payload) in enumerate(events):
            event_id = envelope.id or f"evt_{uuid.uuid4().hex}"
            loc = [part.format(index=index) for part in options_loc]
            subscribers = [s for s in self.catalog.subscribers(name) if only in (None, s.workflow_name)]
            passing = [s for s in subscribers if s.filter is None or matches(s.filter, payload, tenant)]
            try:
                runs = [
                    self._new_run(sub, name, event_id, payload, tenant, envelope, now, parent=parent)
                    for sub in passing
                ]
            except InvalidInputError as error:
                errors.extend({**e, "loc": [*loc, *e["loc"]]} for e in error.errors)
                continue
            planned.append((event_id, runs))
            filtered_out.append([sub.workflow_name for sub in subscribers if sub not in passing])
        if errors:
            raise InvalidInputError(errors)
        # Per event: the runs its routes signal, found before anything is written (none open: a 404).
        routed = [
            [await self._route(route, name, event_id, payload, tenant)
             for route in self.catalog.routes_for(name)]
            for (name, _, payload), (event_id, _) in zip(events, planned, strict=True)
        ]  # fmt: skip
        # Per event: the scopes whose open runs it cancels (cancel_on marks, a cancelling singleton's key),
        # each with what the cancelled runs' records will say.
        cancels = [
            {cancel_mark(name, tenant, cancel.match, payload): cancellation(f"event {name} ({event_id})",
                                                                             getattr(payload, "reason", None))
             for _, cancel in self.catalog.cancellers(name)}
            | {scope: cancellation(f"event {name} ({event_id})", "a newer run of the same key (singleton)")
               for run in runs for scope in run.cancels}
            for (name, _, payload), (event_id, runs) in zip(events, planned, strict=True)
        ]  # fmt: skip
        recorded, cancelled = await self.queue.accept(
            [run for _, runs in planned for run in runs],
            {scope: why for scopes in cancels for scope, why in scopes.items()},
            check=self._check_reuse if self.settings.event_id_reuse == "reject" else None,
            signals=[plan for plans in routed for _, plan in plans],
            waiter=parent.id if parent is not None else None,
        )
        by_mark = {scope: index for index, scopes in enumerate(cancels) for scope in scopes}
        reached = iter(recorded)
        results = []
        for index, (event_id, runs) in enumerate(planned):
            deliveries = [Delivery(r.record, r.via) for r in (next(reached) for _ in runs)]
            deliveries += [Delivery(run, "cancel") for run, mark in cancelled if by_mark.get(mark) == index]
            deliveries += [Delivery(run, "signal") for run, _ in routed[index]]
            results.append(Accepted(event_id, deliveries, filtered_out[index]))
        return results

    # -- child runs (trigger_and_wait) ------------------------------------------------------------------

    async def trigger(self, request: TriggerRequest) -> list[RunRecord]:
        """Record a parent's children: one run per payload, in order, through the run queue (so their
        flow control applies), each naming its parent and root, the parent waiting for each. Raises
        InvalidTriggerError for what no retry mends; nothing is recorded then."""
        parent = await self.store.get(request.parent_run_id, logs=False)
        if parent is None:
            raise InvalidTriggerError(
                f"run {request.parent_run_id} has no record: only a run longhaul started can trigger and wait"
            )
        sub = self._child_subscription(request)
        name = sub.event.name
        events: list[tuple[str, EventEnvelope, BaseModel]] = []
        for index, (event_id, payload) in enumerate(zip(request.event_ids, request.payloads, strict=True)):
            try:
                valid = self.validate(name, payload, "payloads", index)
            except InvalidInputError as error:
                raise InvalidTriggerError(f"{name}: {error}") from error
            if sub.filter is not None and not matches(sub.filter, valid, request.tenant):
                raise InvalidTriggerError(
                    f"{name} ({event_id}) starts no {sub.workflow_name} run: its trigger filter "
                    f"({sub.filter}) does not match payloads[{index}]"
                )
            events.append((name, EventEnvelope(id=event_id, payload=payload, tags=request.tags), valid))
        accepted = await self._accept(
            events, request.tenant, ("options",), parent=parent, only=sub.workflow_name
        )
        return [next(d.run for d in one.deliveries if d.via not in ("cancel", "signal")) for one in accepted]

    def _child_subscription(self, request: TriggerRequest) -> Subscription:
        """The one subscription a trigger names by its event, its workflow or both."""
        if request.event is not None and request.event not in self.catalog.events:
            raise InvalidTriggerError(str(UnknownEventError(request.event, list(self.catalog.events))))
        found = [
            sub for sub in self.catalog.subscriptions
            if request.event in (None, sub.event.name) and request.workflow in (None, sub.workflow_name)
        ]  # fmt: skip
        named = " of ".join(f"'{n}'" for n in (request.workflow, request.event) if n is not None)
        if not found:
            raise InvalidTriggerError(f"no subscription {named} in the catalog: nothing to start")
        if len(found) > 1:
            which = ", ".join(f"{sub.workflow_name} of {sub.event.name}" for sub in found)
            raise InvalidTriggerError(
                f"{named} names {len(found)} subscriptions ({which}): name the workflow and its event"
            )
        return found[0]

    async def cancel_children(self, request: CancelChildren) -> list[str]:
        """Cancel the parent's open children made by ``request``'s event ids (its own cancel reaches
        them); the ids of those cancelled. A child closed meanwhile is skipped."""
        cancelled = []
        for run in await self.store.children(request.parent_run_id, request.event_ids):
            if run.status.terminal:
                continue
            try:
                await self.cancel(
                    run.id, tenant=run.tenant, by=f"run {request.parent_run_id}", reason=request.reason
                )
            except ConflictError:
                continue
            cancelled.append(run.id)
        return cancelled

    @staticmethod
    def _check_reuse(existing: RunRecord, run: RunPlan) -> None:
        """Refuse an event whose id was sent before with another payload (nothing of the call is
        recorded). A run that events join (debounce, batch) has the input they made, not the first's."""
        if run.gate is None:
            check_reuse(existing, run.event, run.event_id, run.input)

    def _new_run(
        self,
        sub: Subscription,
        event_name: str,
        event_id: str,
        payload: BaseModel,
        tenant: str,
        envelope: EventEnvelope,
        now: datetime,
        *,
        instance: str | None = None,
        replay_of: str | None = None,
        parent: RunRecord | None = None,
    ) -> RunPlan:
        """The pending run ``sub`` makes of an event (:func:`longhaul.flow.plan_run`), its options checked.
        ``instance`` names it within the workflow and tenant: the event id, or the business key for a
        once-per-key subscription (a replay passes its own)."""
        options = envelope.options
        override = options.concurrency_key
        if override is not None and override not in type(payload).model_fields:
            raise InvalidInputError(
                [{"type": "missing_field", "loc": ["concurrency_key"],
                  "msg": f"the payload of '{event_name}' has no field '{override}'"}]
            )  # fmt: skip
        due = options.due(now)
        expires = now + timedelta(seconds=options.ttl) if options.ttl is not None else None
        if expires is not None and due is not None and expires <= due:
            raise InvalidInputError(
                [{"type": "value_error", "loc": ["ttl"],
                  "msg": f"the run would expire ({expires.isoformat()}) before it may start "
                         f"({due.isoformat()})"}]
            )  # fmt: skip
        key = business_key(sub, payload)
        named = _instance(sub, event_id, key)
        workflow_id = workflow_id_for(sub.workflow_name, tenant, instance or named)
        return plan_run(
            sub,
            run_id=run_id_for(workflow_id),
            workflow_id=workflow_id,
            event=event_name,
            event_id=event_id,
            payload=payload,
            tenant=tenant,
            business_key=key,
            timing=Timing(due, expires, options.priority, options.idempotency_key_ttl),
            now=now,
            tags=list(envelope.tags),
            traceparent=current_traceparent(),
            concurrency_key=override,
            replay_of=replay_of,
            named_by_event_id=instance is None and named == event_id,
            parent=(parent.id, parent.root_run_id or parent.id) if parent is not None else None,
        )

    async def start(self, run: RunRecord) -> None:
        """Start the workflow of a claimed run (the dispatcher's step). Idempotent: a workflow that
        exists already, running or closed, is left as it is. Raises TemporalUnavailableError."""
        attributes: list[SearchAttributePair[Any]] = [
            SearchAttributePair(TENANT, run.tenant),
            SearchAttributePair(EVENT, run.event),
            SearchAttributePair(RUN_ID, run.id),
        ]
        if run.business_key is not None:
            attributes.append(SearchAttributePair(BUSINESS_KEY, run.business_key))
        if run.tags:
            attributes.append(SearchAttributePair(TAGS, run.tags))
        summary = f"{run.event} {run.event_id} → {run.workflow} ({run.id})"
        sub = self.catalog.subscription(run.event, run.workflow)
        if run.business_key and sub is not None and sub.key:
            summary += f", {sub.key}={run.business_key}"
        # The task queues of the workflow's pipeline, by role: it runs its activities there (memo, so the
        # names are in its history and its UI page).
        roles = self.catalog.task_queue_roles(run.workflow)
        queues = {role: self.settings.task_queue_for(role) for role in roles}
        try:
            # Already started, or started and closed: a dispatcher started it before (and died before
            # noting it), or the same event was delivered before. Nothing new to start.
            with contextlib.suppress(WorkflowAlreadyStartedError), continued(run.traceparent):
                await self.client.start_workflow(
                    run.workflow,
                    run.input,
                    id=run.workflow_id,
                    task_queue=self.settings.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(attributes),
                    static_summary=summary,
                    memo={TASK_QUEUES_MEMO: queues} if queues else None,
                    priority=Priority(priority_key=run.priority) if run.priority != 3 else Priority.default,
                    request_eager_start=self.eager,
                    rpc_timeout=RPC_TIMEOUT,
                )
        except (RPCError, RuntimeError) as error:
            if is_unavailable(error):
                raise TemporalUnavailableError.of(error) from error
            raise

    async def _route(
        self, route: SignalRoute, event_name: str, event_id: str, payload: BaseModel, tenant: str
    ) -> tuple[RunRecord, SignalPlan]:
        """The open run ``route`` reaches with the event, and the signal to keep for it (sent by a
        dispatcher: :mod:`longhaul.queue.signals`). NotFoundError if no run of its key is open."""
        key = business_key(route, payload)
        assert key is not None  # a route always has a key field, checked by the catalog
        run = await self.store.find_active(tenant=tenant, workflow=route.workflow_name, business_key=key)
        if run is None:
            raise NotFoundError(
                f"no running {route.workflow_name} run with {route.key}={key} for '{event_name}'"
            )
        plan = SignalPlan(
            run.id, f"{tenant}/{event_name}/{event_id}", route.signal_name,
            payload.model_dump(mode="json"), event_name, event_id,
        )  # fmt: skip
        return run, plan

    # -- runs ---------------------------------------------------------------------------------------------

    async def get(self, run_id: str, *, tenant: str) -> RunRecord:
        run = await self.store.get(run_id, tenant=tenant)
        if run is None:
            raise NotFoundError(f"no run '{run_id}'")
        [shown] = await self.explain([run])
        return shown

    async def explain(self, runs: list[RunRecord]) -> list[RunRecord]:
        """``runs`` with the reason each waiting one has not started yet."""
        reasons = await self.queue.reasons(runs)
        return [run.model_copy(update={"pending_reason": reasons.get(run.id)}) for run in runs]

    async def signal(self, run_id: str, signal: str, envelope: EventEnvelope, *, tenant: str) -> RunRecord:
        """Send signal ``signal`` to a run, its payload validated against the handler's model."""
        run = await self.get(run_id, tenant=tenant)
        workflow_cls = self.catalog.workflow(run.workflow)
        known = signal_names(workflow_cls) if workflow_cls else []
        if signal not in known:
            raise NotFoundError(
                f"{run.workflow} has no signal '{signal}'; its signals: {', '.join(known) or 'none'}"
            )
        assert workflow_cls is not None
        schema = signal_schema(workflow_cls, signal)
        try:
            arg: Any = schema.model_validate(envelope.payload) if schema else None
        except ValidationError as error:
            raise InvalidInputError.from_validation(error, "payload") from error
        if run.status.terminal:
            raise ConflictError(f"run '{run_id}' is {run.status}; it takes no more signals")
        request_id = f"{tenant}/signal/{signal}/{envelope.id}" if envelope.id else str(uuid.uuid4())
        await self._signal(run, signal, arg, request_id=request_id)
        return run

    async def _signal(self, run: RunRecord, signal: str, arg: Any, *, request_id: str) -> None:
        try:
            await signal_once(self.client, run.workflow_id, signal, arg, request_id=request_id)
        except (RPCError, RuntimeError) as error:
            if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
                raise ConflictError(f"run '{run.id}' has finished; it takes no more signals") from error
            if is_unavailable(error):
                raise TemporalUnavailableError.of(error) from error
            raise

    async def cancel(self, run_id: str, *, tenant: str, by: str, reason: str | None = None) -> RunRecord:
        """Request cancellation on behalf of ``by`` (a key, a bulk action …), for ``reason``; the workflow
        runs its cleanup and records ``cancelled`` with who and why (:func:`longhaul.models.cancellation`)."""
        run = await self.get(run_id, tenant=tenant)
        if run.status.terminal:
            raise ConflictError(f"run '{run_id}' is {run.status} already")
        why = cancellation(by, reason)
        if run.status in WAITING_STATUSES and await self.queue.cancel_waiting(run_id, why):
            return await self.get(run_id, tenant=tenant)  # never started: nothing else to stop
        for _ in range(2):  # a second time if a dispatcher started it meanwhile
            try:
                handle = self.client.get_workflow_handle(run.workflow_id)
                await handle.cancel(reason=why, rpc_timeout=RPC_TIMEOUT)
                await cancelled_while_paused(self.client, self.queue, run, why)
                asked = RunUpdate(run_id=run_id, log=f"{why} (asked; the run stops after its cleanup)")
                await self.store.apply(asked, op_id=f"cancel/{uuid.uuid4().hex}")
                return await self.get(run_id, tenant=tenant)
            except (RPCError, RuntimeError) as error:
                if is_unavailable(error):
                    raise TemporalUnavailableError.of(error) from error
                if not (isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND):
                    raise
                if await self.queue.cancel_when_started(run_id, why):
                    return await self.get(run_id, tenant=tenant)  # a dispatcher starts it: it cancels it
        # The workflow never started (or is gone): nothing runs, so the record can say so now.
        change = RunUpdate(run_id=run_id, status=RunStatus.CANCELLED, stage="cancelled", error=why)
        await self.store.apply(change, op_id="api/cancel")
        return await self.get(run_id, tenant=tenant)

    async def replay(self, run_id: str, *, tenant: str, key: str | None = None) -> RunRecord:
        """Start a failed, cancelled or timed-out run again with the same input, as a new run linked to it.
        ``key`` names the replay (a bulk action's): replayed again with it, the run finds that replay."""
        run = await self.get(run_id, tenant=tenant)
        if run.status not in REPLAYABLE_STATUSES:
            raise ConflictError(
                f"run '{run_id}' is {run.status}; only failed, cancelled or timed-out runs replay"
            )
        sub = self.catalog.subscription(run.event, run.workflow)
        if sub is None:
            raise ConflictError(f"'{run.event}' no longer starts {run.workflow}; nothing to replay with")
        payload = self.validate(run.event, run.input, "input")
        suffix = f".{key}" if key else f".replay-{await self.store.count_replays(run_id) + 1}"
        instance = run.workflow_id.split("/", 2)[2] + suffix
        envelope = EventEnvelope.model_construct(payload=run.input, tags=run.tags)  # stored: validated then
        new = self._new_run(
            sub, run.event, run.event_id + suffix, payload, tenant, envelope, utcnow(),
            instance=instance, replay_of=run.id,
        )  # fmt: skip
        [recorded], _ = await self.queue.accept([new])
        return recorded.record
