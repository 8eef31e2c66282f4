"""Recording workflow histories for the replay tests (tests/test_replay.py).

``LONGHAUL_RECORD_HISTORIES=tests/histories pytest`` makes the session's dev server, before it stops,
write one completed and one mid-flight history of every workflow longhaul ships (the newest of each that
the tests left behind). Re-record after a deliberate, patched change of a workflow, and keep the old files:
in-flight runs of the old code must still replay.
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory

from longhaul.workflows.pipeline import workflow_name
from workflows.catalog import CATALOG

PRODUCT_WORKFLOWS = CATALOG.workflows

# A history still open when the session ends (or ended from outside) replays the code paths of runs
# that were in flight when new code was deployed.
_KINDS = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.RUNNING: "mid-flight",
    WorkflowExecutionStatus.TERMINATED: "mid-flight",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued-as-new",
}

# Events a workflow task's commands write right after it completes: a history cut after them is the
# history of a run in flight (waiting for an activity, a timer, a signal).
_COMMAND_EVENTS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
}


# Read at import: tests run with LONGHAUL_* variables removed (tests/conftest.py).
_RECORD_INTO = os.environ.get("LONGHAUL_RECORD_HISTORIES")


def directory() -> Path | None:
    """Where to record, if this session records."""
    return Path(_RECORD_INTO) if _RECORD_INTO else None


async def record_histories(client: Client, into: Path) -> list[Path]:
    """Write ``<workflow>-<kind>.json`` for each product workflow and kind of ending found on the
    server (newest first), and for each completed one, a mid-flight prefix of it."""
    names = {workflow_name(workflow) for workflow in PRODUCT_WORKFLOWS}
    written: list[Path] = []
    async for execution in client.list_workflows():
        if execution.workflow_type in names and execution.status in _KINDS:
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            written += await record_history(handle, into, skip_existing=written)
    return sorted(written)


async def record_history(
    handle: WorkflowHandle[object, object], into: Path, skip_existing: list[Path] | None = None
) -> list[Path]:
    """Write the history of one run (and, if it completed, its mid-flight prefix); a kind already
    written in this session (``skip_existing``) is kept."""
    description = await handle.describe()
    assert description.status is not None
    kind = _KINDS[description.status]
    history = await handle.fetch_history()
    files = {f"{description.workflow_type}-{kind}.json": history}
    if description.status == WorkflowExecutionStatus.COMPLETED:
        files[f"{description.workflow_type}-mid-flight.json"] = _mid_flight(history)
    return _write(into, files, skip_existing or [])


def _write(into: Path, files: dict[str, WorkflowHistory], skip: list[Path]) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    written = []
    for name, history in files.items():
        path = into / name
        if path not in skip:
            path.write_text(history.to_json())
            written.append(path)
    return written


def _mid_flight(history: WorkflowHistory) -> WorkflowHistory:
    """The history up to the middle workflow task and the events of its commands."""
    events = list(history.events)
    completed = [
        i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    end = completed[len(completed) // 2] + 1
    while end < len(events) and events[end].event_type in _COMMAND_EVENTS:
        end += 1
    return WorkflowHistory(history.workflow_id, events[:end])
