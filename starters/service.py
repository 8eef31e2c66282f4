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
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError
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

from longhaul.config import Settings
from longhaul.models import REPLAYABLE_STATUSES, RunRecord, RunStatus, RunUpdate, run_id_for
from longhaul.storage import RunStore
from longhaul.temporal import (
    BUSINESS_KEY,
    EVENT,
    RUN_ID,
    TASK_QUEUES_MEMO,
    TENANT,
    is_unavailable,
    signal_once,
)
from longhaul.text import StoredText, check_json
from workflows.catalog import CATALOG, Catalog, business_key
from workflows.pipeline import SignalRoute, Subscription, signal_names, signal_schema

# How long one start or signal may wait for Temporal before the caller is answered "unavailable".
RPC_TIMEOUT = timedelta(seconds=10)
MAX_BATCH = 100

ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"


class NotFoundError(LookupError):
    """The thing asked for does not exist (for this tenant)."""


class UnknownEventError(NotFoundError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown event '{name}'; known events: {', '.join(sorted(known))}")


class ConflictError(RuntimeError):
    """The run is not in a state that allows this (e.g. cancelling a completed run)."""


class IdempotencyConflictError(ConflictError):
    """An event id sent again with another payload: like a payment API's reused idempotency key, it is
    refused rather than answered with the first run, which did something else."""

    def __init__(self, event_id: str, run: RunRecord, payload: dict[str, Any]) -> None:
        first = run.input if isinstance(run.input, dict) else {}
        fields = sorted(k for k in first.keys() | payload.keys() if first.get(k) != payload.get(k))
        super().__init__(
            f"event id '{event_id}' was sent before with another payload (differs in: "
            f"{', '.join(fields)}; first run {run.id}): send the same payload to get that run, "
            "or a new id for a new event"
        )


def check_reuse(run: RunRecord, event_name: str, event_id: str, payload: dict[str, Any]) -> None:
    """Raise IdempotencyConflictError if ``run`` was started by this very event id with another payload.
    (A once-per-key run reached by a *different* event id is the subscription's dedupe, not a reuse.)"""
    if run.event == event_name and run.event_id == event_id and run.input != payload:
        raise IdempotencyConflictError(event_id, run, payload)


class InvalidInputError(ValueError):
    """Input that fails validation; ``errors`` locate each problem (``loc``) and say what it is (``msg``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors

    @classmethod
    def from_validation(cls, error: ValidationError, *prefix: str | int) -> InvalidInputError:
        return cls(
            [{"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]} for e in error.errors()]
        )


class TemporalUnavailableError(RuntimeError):
    """Temporal could not be reached; nothing was started and no record claims a run. Retry later."""


class EventEnvelope(BaseModel):
    """What a sender posts: the payload, an optional id that makes the send idempotent, and tags."""

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=ID_PATTERN,
        description="Event id or idempotency key; sending the same id again returns the same runs.",
    )
    payload: Annotated[dict[str, Any], AfterValidator(check_json)] = Field(
        default_factory=dict, description="The event's data (its schema)."
    )
    tags: list[Annotated[StoredText, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=10,
        description="Labels copied to every run of the event, to filter runs by (1 to 100 characters each).",
    )


class BatchItem(EventEnvelope):
    name: StoredText = Field(min_length=1, max_length=100, description="The event's name.")


@dataclass(frozen=True)
class Delivery:
    """A run the event reached: ``start`` (it started the run) or ``signal`` (it signalled the run)."""

    run: RunRecord
    via: Literal["start", "signal"]


@dataclass(frozen=True)
class Accepted:
    event_id: str
    deliveries: list[Delivery]


def workflow_id_for(workflow: str, tenant: str, instance: str) -> str:
    """Stable, readable workflow id: the same event id (or key) always maps to the same workflow."""
    return f"{workflow}/{tenant}/{instance}"


def _instance(sub: Subscription, event_id: str, key: str | None) -> str:
    """What names a run within its workflow and tenant: the business key (``key``) for a once-per-key
    subscription, else the event id."""
    return key if sub.once_per_key and key is not None else event_id


def _unavailable(error: BaseException) -> TemporalUnavailableError:
    return TemporalUnavailableError(f"Temporal is unavailable: {error}")


class RunService:
    """Turns events into runs and acts on runs. One per process, sharing its Temporal client and store."""

    def __init__(
        self, client: Client, store: RunStore, settings: Settings, catalog: Catalog = CATALOG
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.catalog = catalog

    # -- events -------------------------------------------------------------------------------------------

    def validate(self, event_name: str, payload: dict[str, Any], *loc: str | int) -> BaseModel:
        """Validate ``payload`` against the event's schema; raises UnknownEventError or InvalidInputError
        (error locations prefixed with ``loc``)."""
        event_type = self.catalog.events.get(event_name)
        if event_type is None:
            raise UnknownEventError(event_name, list(self.catalog.events))
        try:
            return event_type.schema.model_validate(payload)
        except ValidationError as error:
            raise InvalidInputError.from_validation(error, *loc) from error

    async def send(self, event_name: str, envelope: EventEnvelope, *, tenant: str) -> Accepted:
        """Validate, record and start (or signal). Raises UnknownEventError, InvalidInputError,
        NotFoundError (a routed event whose run is not running), TemporalUnavailableError."""
        payload = self.validate(event_name, envelope.payload, "payload")
        return await self._dispatch(event_name, envelope, payload, tenant)

    async def send_batch(self, items: list[BatchItem], *, tenant: str) -> list[Accepted]:
        """Validate every event first (nothing is recorded if any is invalid), then send each in order."""
        payloads: list[BaseModel] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                payloads.append(self.validate(item.name, item.payload, "events", index, "payload"))
            except UnknownEventError as error:
                errors.append({"type": "unknown_event", "loc": ["events", index, "name"], "msg": str(error)})
            except InvalidInputError as error:
                errors.extend(error.errors)
        if errors:
            raise InvalidInputError(errors)
        await self._check_batch_reuse(items, payloads, tenant)
        return [
            await self._dispatch(item.name, item, payload, tenant)
            for item, payload in zip(items, payloads, strict=True)
        ]

    async def _check_batch_reuse(
        self, items: list[BatchItem], payloads: list[BaseModel], tenant: str
    ) -> None:
        """Refuse a batch in which an event id is reused with another payload before any of it starts."""
        if self.settings.event_id_reuse != "reject":
            return
        expected: dict[str, tuple[BatchItem, dict[str, Any]]] = {}
        for item, payload in zip(items, payloads, strict=True):
            if item.id is None:
                continue
            for sub in self.catalog.subscribers(item.name):
                workflow_id = workflow_id_for(
                    sub.workflow_name, tenant, _instance(sub, item.id, business_key(sub, payload))
                )
                expected[run_id_for(workflow_id)] = (item, payload.model_dump(mode="json"))
        for run in await self.store.get_many(list(expected)):
            item, dumped = expected[run.id]
            assert item.id is not None
            check_reuse(run, item.name, item.id, dumped)

    async def _dispatch(
        self, event_name: str, envelope: EventEnvelope, payload: BaseModel, tenant: str
    ) -> Accepted:
        event_id = envelope.id or f"evt_{uuid.uuid4().hex}"
        deliveries = [
            Delivery(await self._start(sub, event_name, event_id, payload, tenant, envelope.tags), "start")
            for sub in self.catalog.subscribers(event_name)
        ]
        deliveries += [
            Delivery(await self._route(route, event_name, event_id, payload, tenant), "signal")
            for route in self.catalog.routes_for(event_name)
        ]
        return Accepted(event_id=event_id, deliveries=deliveries)

    async def _start(
        self,
        sub: Subscription,
        event_name: str,
        event_id: str,
        payload: BaseModel,
        tenant: str,
        tags: list[str],
        *,
        instance: str | None = None,
        replay_of: str | None = None,
    ) -> RunRecord:
        """Record and start one run. ``instance`` names it within the workflow and tenant: the event id,
        or the business key for a once-per-key subscription (a replay passes its own)."""
        name = sub.workflow_name
        key = business_key(sub, payload)
        workflow_id = workflow_id_for(name, tenant, instance or _instance(sub, event_id, key))
        run_id = run_id_for(workflow_id)
        dumped = payload.model_dump(mode="json")
        record, created = await self.store.create_queued(
            run_id=run_id,
            tenant=tenant,
            workflow=name,
            workflow_id=workflow_id,
            event=event_name,
            event_id=event_id,
            input=dumped,
            business_key=key,
            tags=tags,
            replay_of=replay_of,
        )
        if not created and self.settings.event_id_reuse == "reject":
            check_reuse(record, event_name, event_id, dumped)
        attributes = [
            SearchAttributePair(TENANT, tenant),
            SearchAttributePair(EVENT, event_name),
            SearchAttributePair(RUN_ID, run_id),
        ]
        if key is not None:
            attributes.append(SearchAttributePair(BUSINESS_KEY, key))
        summary = f"{event_name} {event_id} → {name} ({run_id})" + (f", {sub.key}={key}" if key else "")
        # The task queues of the workflow's pipeline, by role: it runs its activities there (memo, so the
        # names are in its history and its UI page).
        queues = {role: self.settings.task_queue_for(role) for role in self.catalog.task_queue_roles(name)}
        try:
            # Already started and closed: the same event was delivered before; nothing new to start.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await self.client.start_workflow(
                    name,
                    payload,
                    id=workflow_id,
                    task_queue=self.settings.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(attributes),
                    static_summary=summary,
                    memo={TASK_QUEUES_MEMO: queues} if queues else None,
                    priority=Priority(priority_key=sub.priority(payload))
                    if sub.priority
                    else Priority.default,
                    rpc_timeout=RPC_TIMEOUT,
                )
        except (RPCError, RuntimeError) as error:
            if not is_unavailable(error):
                raise
            if created:
                await self.store.delete_if_queued(run_id)
            raise _unavailable(error) from error
        return record

    async def _route(
        self, route: SignalRoute, event_name: str, event_id: str, payload: BaseModel, tenant: str
    ) -> RunRecord:
        key = business_key(route, payload)
        assert key is not None  # a route always has a key field, checked by the catalog
        run = await self.store.find_active(tenant=tenant, workflow=route.workflow_name, business_key=key)
        if run is None:
            raise NotFoundError(
                f"no running {route.workflow_name} run with {route.key}={key} for '{event_name}'"
            )
        await self._signal(run, route.signal_name, payload, request_id=f"{tenant}/{event_name}/{event_id}")
        return run

    # -- runs ---------------------------------------------------------------------------------------------

    async def get(self, run_id: str, *, tenant: str) -> RunRecord:
        run = await self.store.get(run_id, tenant=tenant)
        if run is None:
            raise NotFoundError(f"no run '{run_id}'")
        return run

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
                raise _unavailable(error) from error
            raise

    async def cancel(self, run_id: str, *, tenant: str) -> RunRecord:
        """Request cancellation; the workflow runs its cleanup and records ``cancelled``."""
        run = await self.get(run_id, tenant=tenant)
        if run.status.terminal:
            raise ConflictError(f"run '{run_id}' is {run.status} already")
        try:
            await self.client.get_workflow_handle(run.workflow_id).cancel(rpc_timeout=RPC_TIMEOUT)
        except (RPCError, RuntimeError) as error:
            if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
                # The workflow never started (or is gone): nothing runs, so the record can say so now.
                change = RunUpdate(
                    run_id=run_id, status=RunStatus.CANCELLED, stage="cancelled", error="cancelled"
                )
                await self.store.apply(change, op_id="api/cancel")
            elif is_unavailable(error):
                raise _unavailable(error) from error
            else:
                raise
        return await self.get(run_id, tenant=tenant)

    async def replay(self, run_id: str, *, tenant: str) -> RunRecord:
        """Start a failed, cancelled or timed-out run again with the same input, as a new run linked to it."""
        run = await self.get(run_id, tenant=tenant)
        if run.status not in REPLAYABLE_STATUSES:
            raise ConflictError(
                f"run '{run_id}' is {run.status}; only failed, cancelled or timed-out runs replay"
            )
        sub = self.catalog.subscription(run.event, run.workflow)
        if sub is None:
            raise ConflictError(f"'{run.event}' no longer starts {run.workflow}; nothing to replay with")
        payload = self.validate(run.event, run.input, "input")
        suffix = f".replay-{await self.store.count_replays(run_id) + 1}"
        instance = run.workflow_id.split("/", 2)[2] + suffix
        return await self._start(
            sub,
            run.event,
            run.event_id + suffix,
            payload,
            tenant,
            run.tags,
            instance=instance,
            replay_of=run.id,
        )
