"""The ``hello`` pipeline: the smallest real run, proving the stack end to end."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.hello import HELLO, HelloRequested, compose_greeting

from longhaul.sdk import Pipeline, Subscription, TaskQueue, defn, progress, tracked


class HelloResult(BaseModel):
    message: str


@defn(name="hello")
class HelloWorkflow:
    """Waits (durably) if asked, composes a greeting in an activity, reports progress on the way."""

    @workflow.run
    async def run(self, event: HelloRequested) -> HelloResult:
        return await tracked(self._greet(event))

    async def _greet(self, event: HelloRequested) -> HelloResult:
        if event.wait_seconds:
            await progress(10, f"waiting {event.wait_seconds:g}s")
            await workflow.sleep(timedelta(seconds=event.wait_seconds), summary="requested wait")
        await progress(50, "composing greeting")
        # A short step whose input the workflow decides: a local activity (no activity task, no extra
        # workflow task; see docs/benchmarks.md, "When to use what").
        message = await workflow.execute_local_activity(
            compose_greeting,
            event,
            start_to_close_timeout=timedelta(seconds=10),
            summary=f"greet {event.name}",
        )
        return HelloResult(message=message)


HELLO_PIPELINE = Pipeline(
    name="hello",
    entries=(Subscription(HELLO, HelloWorkflow),),
    queues=(TaskQueue(lambda resources: [compose_greeting]),),
)
