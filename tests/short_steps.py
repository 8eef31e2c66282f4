"""A pipeline whose steps are declared short: what tests/test_short_steps.py runs, in process and in a
``longhaul worker`` it kills. Kept free of test-framework imports (the sandbox re-imports it).

Each step appends a line to ``calls.log`` in the run's directory (every call, repeats included) and makes
its effect once: a file named after the workflow id and the step, created only if absent (like an
operation id under a unique constraint), and a line in ``effects.log`` when it is."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from longhaul.workflows import registry
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import Pipeline, TaskQueue


class StepsAsked(BaseModel):
    directory: str
    fail_times: int = 0  # the first step fails this many attempts before it succeeds
    slow_seconds: float = 0  # how long the slow step takes


class Mark(BaseModel):
    directory: str
    step: str
    fail_times: int = 0
    seconds: float = 0


@activity.defn(name="test.short.mark")
async def mark(request: Mark) -> str:
    """Record the call, wait ``seconds``, fail the first ``fail_times`` attempts, make the effect once."""
    info = activity.info()
    directory = Path(request.directory)
    with (directory / "calls.log").open("a") as calls:
        calls.write(f"{request.step} {info.attempt} {'local' if info.is_local else 'activity'}\n")
    await asyncio.sleep(request.seconds)
    if info.attempt <= request.fail_times:
        raise ApplicationError(f"{request.step}: attempt {info.attempt} fails")
    effect = directory / "effects" / f"{info.workflow_id}-{request.step}"
    effect.parent.mkdir(exist_ok=True)
    with contextlib.suppress(FileExistsError):  # done before: a repeat makes no second effect
        effect.open("x").close()
        with (directory / "effects.log").open("a") as effects:
            effects.write(f"{request.step}\n")
    return request.step


RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1, maximum_attempts=5)
CALL = timedelta(seconds=30)


@registry.defn(name="short-steps-probe")
class ShortStepsWorkflow:
    """``before`` and a timer end the first workflow task; ``first`` and ``slow`` run in the next one;
    ``heartbeating`` asks for a heartbeat timeout, which only an activity has."""

    @workflow.run
    async def run(self, asked: StepsAsked) -> list[str]:
        done = [await self._mark(asked, "before")]
        await workflow.sleep(timedelta(milliseconds=100))
        done.append(await self._mark(asked, "first", fail_times=asked.fail_times))
        done.append(await self._mark(asked, "slow", seconds=asked.slow_seconds))
        done.append(
            await workflow.execute_activity(
                mark, Mark(directory=asked.directory, step="heartbeating"), start_to_close_timeout=CALL,
                heartbeat_timeout=CALL,
            )
        )  # fmt: skip
        return done

    async def _mark(self, asked: StepsAsked, step: str, *, fail_times: int = 0, seconds: float = 0) -> str:
        request = Mark(directory=asked.directory, step=step, fail_times=fail_times, seconds=seconds)
        return await workflow.execute_activity(
            mark, request, start_to_close_timeout=CALL, retry_policy=RETRY, summary=step
        )


SHORT_STEPS = Pipeline(
    name="short-steps-probe",
    workflows=(ShortStepsWorkflow,),
    queues=(TaskQueue(lambda resources: [mark]),),
    short_steps=(mark,),
)
SHORT_CATALOG = Catalog(SHORT_STEPS)
