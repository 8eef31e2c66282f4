"""Emitting an event from a workflow (e.g. "video processed"), through the catalog like any other event.

Workflows do no I/O, so the emit is an activity of longhaul's own (:mod:`longhaul.activities.events`). Its id
is derived from the run and what the caller calls the outcome, so a retry or a replay is a duplicate the
catalog drops: its subscribers start once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from longhaul.workflows.tracking import current_run_id, current_tenant

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.events import EmitRequest, EventActivities

EMIT_TIMEOUT = timedelta(minutes=2)  # the catalog's work: validate, record, start the subscribers


async def emit(name: str, payload: dict[str, Any], *, outcome: str) -> None:
    """Send the event ``name`` with ``payload`` for the run's tenant; ``outcome`` names this emit among the
    run's (``completed``, ``failed``): one event per run and outcome, however often it is retried."""
    await workflow.execute_activity_method(
        EventActivities.emit_event,
        EmitRequest(
            name=name, event_id=f"{current_run_id()}.{outcome}", tenant=current_tenant(), payload=payload
        ),
        start_to_close_timeout=EMIT_TIMEOUT,
        summary=f"emit {name}",
    )
