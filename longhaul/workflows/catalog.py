"""The catalog: the pipelines an application serves, and what each event does across them.

An event either starts workflows (:class:`~longhaul.workflows.pipeline.Subscription`; several subscriptions to
one event fan out, also across pipelines) or is delivered as a signal to the running workflow found by a key
in its payload (:class:`~longhaul.workflows.pipeline.SignalRoute`, e.g. ``payment.confirmed`` → the order
workflow whose business key is the payload's ``order_id``). The API, the worker, migrations and schedule sync
all read it. An application builds one ``Catalog`` of its pipelines (this repository's:
``workflows/catalog.py``) and names it in the ``catalog`` setting (docs/events.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from temporalio import workflow

from longhaul.project import import_object
from longhaul.workflows.maintenance import LONGHAUL
from longhaul.workflows.pipeline import (
    CancelOn,
    DevService,
    Pipeline,
    SignalRoute,
    Subscription,
    TaskQueue,
    WaitpointKind,
    Webhook,
    signal_names,
    workflow_name,
)
from longhaul.workflows.steps import short_step_names

if TYPE_CHECKING:
    from sqlalchemy import Table

    from longhaul.config import Settings
    from longhaul.events import EventType
    from longhaul.workflows.schedules import ScheduleDecl


class Catalog:
    """The pipelines longhaul serves (longhaul's own, :data:`~longhaul.workflows.maintenance.LONGHAUL`, always
    first), checked for consistency when built: one schema per event name, routes to declared signals,
    one declaration per task-queue role, webhook source, waitpoint kind and table."""

    def __init__(self, *pipelines: Pipeline) -> None:
        self.pipelines = tuple(dict.fromkeys([LONGHAUL, *pipelines]))
        entries = [e for p in self.pipelines for e in p.entries]
        self.subscriptions = [e for e in entries if isinstance(e, Subscription)]
        self.routes = [e for e in entries if isinstance(e, SignalRoute)]
        self.events = _events_of(self.pipelines)
        _check_keys(self.subscriptions, self.routes)
        self.workflows: tuple[type, ...] = tuple(
            dict.fromkeys(w for p in self.pipelines for w in p.all_workflows)
        )
        self._by_name = {workflow_name(w): w for w in self.workflows}
        self._pipeline_of = {workflow_name(w): p for p in self.pipelines for w in p.all_workflows}
        self.webhooks: dict[str, Webhook] = _unique(
            "webhook source", [(h.source, h) for p in self.pipelines for h in p.webhooks]
        )
        self.waitpoint_kinds: dict[str, WaitpointKind[Any]] = _unique(
            "waitpoint kind", [(k.name, k) for p in self.pipelines for k in p.waitpoints]
        )
        self.queues: dict[str | None, list[TaskQueue]] = {}
        for pipeline in self.pipelines:
            for queue in pipeline.queues:
                self.queues.setdefault(queue.role, []).append(queue)
        _unique("task queue role", [(q.role, q) for p in self.pipelines for q in p.queues if q.role])
        _unique("table", [(t.name, t) for p in self.pipelines for t in p.table_objects()])
        # Activity names whose calls run as local activities (the worker's workflow interceptor reads them).
        self.short_steps = short_step_names(s for p in self.pipelines for s in p.short_steps)

    def subscribers(self, event_name: str) -> list[Subscription]:
        """The subscriptions ``event_name`` starts, in declaration order."""
        return [s for s in self.subscriptions if s.event.name == event_name]

    def routes_for(self, event_name: str) -> list[SignalRoute]:
        return [r for r in self.routes if r.event.name == event_name]

    def workflow(self, name: str) -> type | None:
        """The workflow class registered under ``name``."""
        return self._by_name.get(name)

    @property
    def workflow_names(self) -> list[str]:
        return sorted(self._by_name)

    def cancellers(self, event_name: str) -> list[tuple[Subscription, CancelOn]]:
        """The subscriptions whose runs ``event_name`` cancels, with how it matches them."""
        return [(s, c) for s in self.subscriptions for c in s.cancel_on if c.event.name == event_name]

    def subscription(self, event_name: str, workflow: str) -> Subscription | None:
        return next((s for s in self.subscribers(event_name) if s.workflow_name == workflow), None)

    def task_queue_roles(self, workflow: str) -> list[str]:
        """The roles of the task queues ``workflow``'s pipeline declares (passed to its runs)."""
        pipeline = self._pipeline_of.get(workflow)
        return pipeline.task_queue_roles if pipeline else []

    def tables(self) -> list[Table]:
        """Every table of app storage, longhaul's and the pipelines' (what migrations compare with)."""
        return [table for pipeline in self.pipelines for table in pipeline.table_objects()]

    @property
    def dev_services(self) -> list[DevService]:
        """What ``longhaul dev`` runs beside the stack for the pipelines (their stand-in systems)."""
        return [service for pipeline in self.pipelines for service in pipeline.dev_services]

    def check_settings(self, settings: Settings) -> None:
        """Read every pipeline's own settings (:class:`~longhaul.config.PipelineSettings`) now, so a bad
        value stops a worker at start, naming the pipeline and the variable, not at its first run."""
        for pipeline in self.pipelines:
            if pipeline.settings is None:
                continue
            try:
                pipeline.settings.of(settings)
            except ValidationError as error:
                prefix = pipeline.settings.model_config.get("env_prefix", "")
                problems = "; ".join(
                    f"{prefix}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
                )
                raise ValueError(
                    f"the settings of pipeline '{pipeline.name}' are invalid: {problems}"
                ) from error

    def schedules(self, settings: Settings) -> list[ScheduleDecl]:
        """Every pipeline's schedules, built from ``settings``."""
        declared = [s for pipeline in self.pipelines for s in pipeline.schedules(settings)]
        _unique("schedule", [(s.id, s) for s in declared])
        return declared


def load_catalog(path: str) -> Catalog:
    """The catalog named ``module:attribute`` (the ``catalog`` setting), imported from the application."""
    catalog = import_object(path)
    if not isinstance(catalog, Catalog):
        raise ValueError(f"catalog '{path}' is not a longhaul.workflows.catalog.Catalog")
    return catalog


def _events_of(pipelines: Sequence[Pipeline]) -> dict[str, EventType]:
    """Every event the pipelines name, by name; one schema per name."""
    events: dict[str, EventType] = {}
    for pipeline in pipelines:
        cancelling = [c.event for e in pipeline.entries if isinstance(e, Subscription) for c in e.cancel_on]
        for declared in [*(e.event for e in pipeline.entries), *pipeline.published, *cancelling]:
            if events.setdefault(declared.name, declared) != declared:
                raise ValueError(f"event '{declared.name}' is declared with two different schemas")
    return events


def _check_keys(subscriptions: Sequence[Subscription], routes: Sequence[SignalRoute]) -> None:
    """Keys name payload fields; routes name signals their workflow declares; filters compile and name
    payload fields."""
    # Here, and passed through: a workflow module that declares its catalog builds it inside the sandbox,
    # which must not re-import the CEL extension for every run.
    with workflow.unsafe.imports_passed_through():
        from longhaul.filters import FilterError, compile_filter

    for route in routes:
        if route.signal_name not in signal_names(route.workflow):
            raise ValueError(f"{route.workflow_name} has no signal '{route.signal_name}'")
        _require_field(route.event, route.key)
    for sub in subscriptions:
        for field in sub.flow_keys:
            _require_field(sub.event, field)
        _check_flow(sub)
        if sub.filter is not None:
            try:
                compile_filter(sub.filter, sub.event.schema)
            except FilterError as error:
                raise ValueError(f"{sub.workflow_name} on {sub.event.name}: {error}") from error
        if sub.key is not None:
            _require_field(sub.event, sub.key)
        elif sub.once_per_key:
            raise ValueError(f"{sub.workflow_name} runs once per key but names no key")


def _check_flow(sub: Subscription) -> None:
    """Flow control that makes sense together: one way of making several events one run, and not on a
    once-per-key subscription (which is one run per key already)."""
    joins = [name for name in ("singleton", "debounce", "batch") if getattr(sub, name) is not None]
    if len(joins) > 1:
        raise ValueError(f"{sub.workflow_name}: {' and '.join(joins)} do not go together; choose one")
    if joins and sub.once_per_key:
        raise ValueError(f"{sub.workflow_name} runs once per key already; it takes no {joins[0]}")
    if sub.batch is not None and sub.batch.max_size < 1:
        raise ValueError(f"{sub.workflow_name}: a batch holds at least one event")
    for cancel in sub.cancel_on:
        _require_field(sub.event, cancel.match)
        _require_field(cancel.event, cancel.match)


def _unique(what: str, named: list[tuple[str, Any]]) -> dict[str, Any]:
    """``named`` by name; a name declared twice (by two pipelines, or twice by one) is refused."""
    found: dict[str, Any] = {}
    for name, value in named:
        if name in found:
            raise ValueError(f"{what} '{name}' is declared twice")
        found[name] = value
    return found


def _require_field(event: EventType, field: str) -> None:
    if field not in event.schema.model_fields:
        raise ValueError(f"event '{event.name}' has no field '{field}' to use as key")


def business_key(subscription_or_route: Subscription | SignalRoute, payload: BaseModel) -> str | None:
    """The business key value in ``payload`` (as text), if the entry declares one."""
    if subscription_or_route.key is None:
        return None
    value: Any = getattr(payload, subscription_or_route.key)
    return None if value is None else str(value)
