"""Everything a pipeline's author uses, from one import (as ``temporalio.workflow`` is for Temporal's).

Declare a pipeline — its events, the workflows they start, flow control, task queues, tables, schedules,
webhooks and waitpoint kinds — and collect it in the application's :class:`Catalog`. In workflow code:
:func:`defn` and :func:`signal` (``workflow.defn``/``workflow.signal`` that longhaul can read back),
:func:`tracked` and :func:`progress` for the run's record, :func:`metadata`, :func:`wait_for_token`,
:func:`all_of`, :func:`emit`, :func:`trigger_and_wait` (a child run through the run queue). In
activities: :class:`Resources` (settings, app storage, HTTP pool, Temporal client), :func:`report_step`,
:func:`stream` (a durable data stream of the run), and the helpers for a pipeline's own tables.

>>> from longhaul.sdk import Pipeline, Subscription, defn, tracked
>>> @defn(name="hello")
... class HelloWorkflow:
...     @workflow.run
...     async def run(self, event: HelloRequested) -> str:
...         return await tracked(self._greet(event))

Import names from it (``from longhaul.sdk import ...``), not the module from its package (``from longhaul
import sdk``): the workflow sandbox may have passed the ``longhaul`` package through, and an attribute of
that package is the worker's copy of this module, whose declarations a catalog built in the sandbox does
not recognise. Workflow modules may import it as it is: what it brings that is not for workflows (settings,
storage) is passed through the workflow sandbox, not re-imported for each run. (The declarations and the
catalog are not: a catalog built in the sandbox checks declarations made there.)
"""

from __future__ import annotations

from temporalio import workflow

from longhaul.events import EventPayload, EventType
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.children import (
    ChildResult,
    ChildRunFailedError,
    batch_trigger_and_wait,
    trigger_and_wait,
)
from longhaul.workflows.emit import emit
from longhaul.workflows.metadata import metadata
from longhaul.workflows.parallel import all_of
from longhaul.workflows.pipeline import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    DevService,
    FairShare,
    Pipeline,
    RateLimit,
    SignalRoute,
    Singleton,
    Subscription,
    TaskQueue,
    Throttle,
    WaitpointKind,
    Webhook,
)
from longhaul.workflows.registry import defn, signal
from longhaul.workflows.schedules import ScheduleDecl
from longhaul.workflows.tracking import (
    cancelled_why,
    current_run_id,
    current_tenant,
    is_cancellation,
    log,
    progress,
    reason_of,
    task_queue,
    tracked,
)
from longhaul.workflows.waitpoints import TokenResult, wait_for_token

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.progress import report_step
    from longhaul.activities.resources import Resources
    from longhaul.activities.streams import RunStream, stream
    from longhaul.config import PipelineSettings, Settings
    from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, insert_new, utcnow
    from longhaul.humanize import duration
    from longhaul.models import DEFAULT_TENANT, cancellation
    from longhaul.processes import die_with_parent
    from longhaul.storage import RunStore
    from longhaul.webhooks import Inbound, UnprocessableWebhookError

__all__ = [
    "DEFAULT_TENANT",
    "Base",
    "Batch",
    "CancelOn",
    "Catalog",
    "ChildResult",
    "ChildRunFailedError",
    "Concurrency",
    "Database",
    "Debounce",
    "DevService",
    "EventPayload",
    "EventType",
    "FairShare",
    "Inbound",
    "Pipeline",
    "PipelineSettings",
    "RateLimit",
    "Resources",
    "RunStore",
    "RunStream",
    "ScheduleDecl",
    "Settings",
    "SignalRoute",
    "Singleton",
    "Subscription",
    "TaskQueue",
    "Throttle",
    "TokenResult",
    "UnprocessableWebhookError",
    "WaitpointKind",
    "Webhook",
    "all_of",
    "as_utc",
    "batch_trigger_and_wait",
    "cancellation",
    "cancelled_why",
    "current_run_id",
    "current_tenant",
    "defn",
    "die_with_parent",
    "duration",
    "emit",
    "insert_ignoring_duplicates",
    "insert_new",
    "is_cancellation",
    "log",
    "metadata",
    "progress",
    "reason_of",
    "report_step",
    "signal",
    "stream",
    "task_queue",
    "tracked",
    "trigger_and_wait",
    "utcnow",
    "wait_for_token",
]
