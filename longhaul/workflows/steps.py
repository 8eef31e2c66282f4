"""Short steps: activities a pipeline declares short run as local activities, whatever the call site says.

A workflow calls every step alike (``workflow.execute_activity_method(OrderActivities.notify, ...)``); the
pipeline says once which are short (``Pipeline(short_steps=(OrderActivities.notify,))``), and the worker's
workflow interceptor turns such a call into a local activity with the same retry policy, timeouts,
cancellation type and summary. A local activity costs the server no activity task and the workflow no
extra workflow task: its result rides on the completion of the workflow task that ran it (at least once,
like an activity). What it cannot do, it is not asked to: a call that sets a heartbeat timeout or names
another task queue stays an activity.

Runs begun before a step was declared short (their histories hold an activity there) go on running it as
an activity: the change is behind :data:`SHORT_STEPS_PATCH` (``workflow.patched``), asked only where a
call would become local, so a run with no short step carries no marker. docs/benchmarks.md, "When to use
what", says which steps to declare short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import StartActivityInput, StartLocalActivityInput

SHORT_STEPS_PATCH = "longhaul.short-steps"


def activity_name(function: Callable[..., Any]) -> str:
    """The name an activity function (or method) is registered under (``@activity.defn(name=...)``)."""
    definition = activity._Definition.from_callable(function)  # the SDK's own reading of the decorator
    if definition is None or definition.name is None:
        raise ValueError(f"{function!r} is not an activity (@activity.defn) with a name")
    return definition.name


def short_step_names(functions: Iterable[Callable[..., Any]]) -> frozenset[str]:
    return frozenset(activity_name(function) for function in functions)


def runs_local(input: StartActivityInput, short_steps: frozenset[str]) -> bool:
    """Whether this activity call runs as a local activity: a declared short step, asking nothing only an
    activity does, in a run that began with short steps (or begins now)."""
    if input.activity not in short_steps or input.heartbeat_timeout is not None:
        return False
    if input.task_queue not in (None, workflow.info().task_queue):
        return False
    return workflow.patched(SHORT_STEPS_PATCH)


def as_local(input: StartActivityInput) -> StartLocalActivityInput:
    """The same call as a local activity: retry policy, timeouts, cancellation, headers and summary kept
    (every field the two inputs share), the local retry threshold the SDK's default."""
    shared = {
        f.name: getattr(input, f.name) for f in fields(StartLocalActivityInput) if hasattr(input, f.name)
    }
    return StartLocalActivityInput(**shared, local_retry_threshold=None)
