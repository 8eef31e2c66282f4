"""longhaul.testing, the kit pipeline authors test with: the application's catalog on the time-skipping
test server with temporary SQLite storage, events sent as the API would, results, waitpoints, skipped
time, fakes for activities, and flow control as the run queue applies it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.hello import HelloRequested
from longhaul.models import RunStatus, WaitpointStatus
from longhaul.testing import LonghaulTestEnv
from tests.pipelines import TEST_CATALOG

DAY = 24 * 3600


async def test_the_applications_catalog_runs_in_the_kit_and_a_day_long_timer_passes_at_once(
    longhaul_env: LonghaulTestEnv,
) -> None:
    """The plugin's fixture serves the application's own catalog (pyproject.toml names it)."""
    [run] = await longhaul_env.send("hello", {"name": "Ada", "wait_seconds": DAY}, id="kit-hello")
    assert run.status == RunStatus.PENDING  # accepted into the run queue, as over the API
    before = await longhaul_env.temporal.get_current_time()
    finished = await longhaul_env.result(run.id, limit=20)
    assert finished.status == RunStatus.COMPLETED, finished.error
    assert finished.output == {"message": "Hello, Ada!"}
    assert finished.progress == 100
    assert await longhaul_env.temporal.get_current_time() - before >= timedelta(days=1)


async def test_an_activity_is_replaced_by_name_with_a_fake(longhaul_temporal: WorkflowEnvironment) -> None:
    asked: list[HelloRequested] = []

    async def fake(event: HelloRequested) -> str:
        asked.append(event)
        return f"fake greeting for {event.name}"

    async with LonghaulTestEnv.start(temporal=longhaul_temporal, fakes={"compose_greeting": fake}) as env:
        [run] = await env.send("hello", HelloRequested(name="Grace"))
        finished = await env.result(run.id)
    assert finished.output == {"message": "fake greeting for Grace"}
    assert asked == [HelloRequested(name="Grace")]  # the fake got the activity's typed argument


async def test_a_fake_for_an_activity_the_catalog_lacks_is_refused(
    longhaul_temporal: WorkflowEnvironment,
) -> None:
    async def fake() -> None: ...

    with pytest.raises(ValueError, match="no activity named compose_greting"):
        async with LonghaulTestEnv.start(temporal=longhaul_temporal, fakes={"compose_greting": fake}):
            pass


async def test_a_waitpoint_is_completed_and_an_unanswered_one_times_out_after_skipped_time(
    longhaul_temporal: WorkflowEnvironment,
) -> None:
    async with LonghaulTestEnv.start(TEST_CATALOG, temporal=longhaul_temporal) as env:
        [answered] = await env.send("review.asked", {"document_id": "d-1", "timeout_seconds": DAY})
        token = await env.complete(answered.id, {"approved": True})
        assert token.status == WaitpointStatus.COMPLETED
        done = await env.result(answered.id)
        assert done.output["rounds"][0]["verdict"] == {"approved": True, "reason": None}

        [ignored] = await env.send("review.asked", {"document_id": "d-2", "timeout_seconds": DAY})
        waiting = await env.waitpoint(ignored.id)
        await env.skip(timedelta(hours=25))
        timed_out = await env.result(ignored.id)
    assert timed_out.status == RunStatus.COMPLETED
    assert timed_out.output["rounds"] == [
        {"token": waiting.id, "status": "timed_out", "by": None, "verdict": None}
    ]


async def test_a_flow_control_rule_holds_in_the_kit(longhaul_temporal: WorkflowEnvironment) -> None:
    """One run at a time per key: the second waits, saying why, until the first is done."""
    async with LonghaulTestEnv.start(TEST_CATALOG, temporal=longhaul_temporal) as env:
        [first] = await env.send("solo.work", {"key": "k", "seconds": 60})
        [second] = await env.send("solo.work", {"key": "k", "seconds": 1})
        await env.started(first.id)
        held = await env.run(second.id)
        assert held.status == RunStatus.PENDING
        assert held.pending_reason is not None and "1 of 1" in held.pending_reason, held.pending_reason
        assert (await env.result(first.id)).status == RunStatus.COMPLETED
        assert (await env.result(second.id)).status == RunStatus.COMPLETED
        [one, again] = [(await env.send("single.work", {"key": "s", "seconds": 60}))[0] for _ in range(2)]
        assert again.id == one.id  # a singleton: the second event reached the open run
