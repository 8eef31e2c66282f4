"""The event catalog: which workflows each event starts. Adding a pipeline = one line here.

Kept beside the workflows because it names them; the API, CLI and worker all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from longhaul.events import HELLO, EventType
from workflows.hello import HelloWorkflow


@dataclass(frozen=True)
class Subscription:
    """``workflow`` starts once per ``event`` received."""

    event: EventType
    workflow: type


SUBSCRIPTIONS: tuple[Subscription, ...] = (Subscription(HELLO, HelloWorkflow),)

EVENTS: dict[str, EventType] = {s.event.name: s.event for s in SUBSCRIPTIONS}
WORKFLOWS: tuple[type, ...] = tuple(dict.fromkeys(s.workflow for s in SUBSCRIPTIONS))


def subscribers(event_name: str) -> list[type]:
    """The workflows ``event_name`` starts, in declaration order."""
    return [s.workflow for s in SUBSCRIPTIONS if s.event.name == event_name]


def workflow_name(workflow_cls: type) -> str:
    """The registered Temporal name of a workflow class."""
    from temporalio.workflow import _Definition

    return _Definition.must_from_class(workflow_cls).name or workflow_cls.__name__
