"""The event catalog: what each event does. Adding a pipeline = one schema, one line here, one workflow.

An event either starts workflows (:class:`Subscription`; several subscriptions to one event fan out) or is
delivered as a signal to the running workflow found by a key in its payload (:class:`SignalRoute`, e.g.
``payment.confirmed`` → the order workflow whose business key is the payload's ``order_id``). Kept beside
the workflows because it names them; the API, CLI and worker all read it from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from longhaul.events import (
    HELLO,
    ORDER_CREATED,
    PAYMENT_CONFIRMED,
    VIDEO_COMPLETED,
    VIDEO_FAILED,
    VIDEO_UPLOADED,
    EventType,
)
from workflows import registry
from workflows.hello import HelloWorkflow
from workflows.orders import OrderWorkflow, order_priority
from workflows.video import VideoProcessingWorkflow


def workflow_name(workflow_cls: type) -> str:
    """The registered Temporal name of a workflow class (declared with :func:`workflows.registry.defn`)."""
    return registry.declared(workflow_cls).name


def signal_schema(workflow_cls: type, signal: str) -> type[BaseModel] | None:
    """The pydantic model a workflow's signal handler takes, if any (``None``: no argument or not typed).

    Raises KeyError if the workflow declares no signal of that name.
    """
    return registry.declared(workflow_cls).signal_schema(signal)


def signal_names(workflow_cls: type) -> list[str]:
    return registry.declared(workflow_cls).signals


@dataclass(frozen=True)
class Subscription:
    """``workflow`` starts once per ``event`` received. ``key`` names the payload field that is the run's
    business key (a search attribute in the UI, and what signal routes find the run by). With
    ``once_per_key``, the workflow runs once per key rather than per event id: a second
    ``video.uploaded`` for the same video returns the first one's run."""

    event: EventType
    workflow: type
    key: str | None = None
    once_per_key: bool = False
    priority: Callable[[Any], int] | None = None  # Temporal priority key (1 first … 5) from the payload

    @property
    def workflow_name(self) -> str:
        return workflow_name(self.workflow)


@dataclass(frozen=True)
class SignalRoute:
    """``event`` is delivered as signal ``signal`` (default: the event's name) to the running ``workflow``
    whose business key equals the payload's ``key`` field."""

    event: EventType
    workflow: type
    key: str
    signal: str | None = None

    @property
    def signal_name(self) -> str:
        return self.signal or self.event.name

    @property
    def workflow_name(self) -> str:
        return workflow_name(self.workflow)


class Catalog:
    """The events longhaul accepts and what each does; checked for consistency when built."""

    def __init__(
        self,
        *entries: Subscription | SignalRoute,
        published: Sequence[EventType] = (),
        activities: Sequence[Callable[..., Any]] = (),
    ) -> None:
        """``published``: events that workflows emit and anyone may subscribe to, declared even while
        nothing subscribes (e.g. ``video.processing.completed``). ``activities``: those the catalog's own
        workflows call beside longhaul's (the worker registers them)."""
        self.entries = entries
        self.published = tuple(published)
        self.activities = tuple(activities)
        self.subscriptions = [e for e in entries if isinstance(e, Subscription)]
        self.routes = [e for e in entries if isinstance(e, SignalRoute)]
        self.events: dict[str, EventType] = {}
        for declared in [*(e.event for e in entries), *published]:
            known = self.events.setdefault(declared.name, declared)
            if known != declared:
                raise ValueError(f"event '{declared.name}' is declared with two different schemas")
        for route in self.routes:
            if route.signal_name not in signal_names(route.workflow):
                raise ValueError(f"{route.workflow_name} has no signal '{route.signal_name}'")
            _require_field(route.event, route.key)
        for sub in self.subscriptions:
            if sub.key is not None:
                _require_field(sub.event, sub.key)
            elif sub.once_per_key:
                raise ValueError(f"{sub.workflow_name} runs once per key but names no key")
        self.workflows: tuple[type, ...] = tuple(dict.fromkeys(e.workflow for e in entries))
        self._by_name = {workflow_name(w): w for w in self.workflows}

    def subscribers(self, event_name: str) -> list[Subscription]:
        """The subscriptions ``event_name`` starts, in declaration order."""
        return [s for s in self.subscriptions if s.event.name == event_name]

    def routes_for(self, event_name: str) -> list[SignalRoute]:
        return [r for r in self.routes if r.event.name == event_name]

    def workflow(self, name: str) -> type | None:
        """The workflow class registered under ``name``."""
        return self._by_name.get(name)

    def subscription(self, event_name: str, workflow: str) -> Subscription | None:
        return next((s for s in self.subscribers(event_name) if s.workflow_name == workflow), None)


def load_catalog(path: str) -> Catalog:
    """The catalog named ``module:attribute`` (the ``catalog`` setting), imported on demand."""
    module_name, _, attribute = path.partition(":")
    catalog = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(catalog, Catalog):
        raise ValueError(f"catalog '{path}' is not a workflows.catalog.Catalog")
    return catalog


def _require_field(event: EventType, field: str) -> None:
    if field not in event.schema.model_fields:
        raise ValueError(f"event '{event.name}' has no field '{field}' to use as key")


def business_key(subscription_or_route: Subscription | SignalRoute, payload: BaseModel) -> str | None:
    """The business key value in ``payload`` (as text), if the entry declares one."""
    if subscription_or_route.key is None:
        return None
    value: Any = getattr(payload, subscription_or_route.key)
    return None if value is None else str(value)


CATALOG = Catalog(
    Subscription(HELLO, HelloWorkflow),
    Subscription(VIDEO_UPLOADED, VideoProcessingWorkflow, key="video_id", once_per_key=True),
    Subscription(ORDER_CREATED, OrderWorkflow, key="order_id", once_per_key=True, priority=order_priority),
    SignalRoute(PAYMENT_CONFIRMED, OrderWorkflow, key="order_id"),
    published=(VIDEO_COMPLETED, VIDEO_FAILED),
)
