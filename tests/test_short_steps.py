"""Short steps: activities a pipeline declares short run as local activities, with the call's retry
policy and timeouts; a killed worker repeats only the short steps of its unfinished workflow task, and an
idempotent step's effect still happens once (tests/short_steps.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import TaskQueue
from tests.processes import Process, clean_env, wait_until
from tests.short_steps import SHORT_CATALOG, SHORT_STEPS, ShortStepsWorkflow, StepsAsked, mark


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_a_short_step_runs_as_a_local_activity_and_is_retried_by_its_policy(
    dev_client: Client, store: RunStore, settings: Settings, tmp_path: Path
) -> None:
    async with build_worker(dev_client, store, settings, SHORT_CATALOG):
        handle = await dev_client.start_workflow(
            ShortStepsWorkflow.run,
            StepsAsked(directory=str(tmp_path), fail_times=2),
            id=f"short-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
        assert await handle.result() == ["before", "first", "slow", "heartbeating"]
    assert _lines(tmp_path / "calls.log") == [
        "before 1 local",
        "first 1 local",  # retried by the call's policy: 100 ms apart, up to 5 attempts
        "first 2 local",
        "first 3 local",
        "slow 1 local",
        "heartbeating 1 activity",  # a heartbeat timeout is what only an activity has
    ]
    assert _lines(tmp_path / "effects.log") == ["before", "first", "slow", "heartbeating"]
    events = (await handle.fetch_history()).events
    scheduled = [e for e in events if e.HasField("activity_task_scheduled_event_attributes")]
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert len(scheduled) == 1
    assert markers.count("core_local_activity") == 3
    assert "core_patch" in markers  # runs begun before the declaration keep their activities


async def test_a_short_step_off_the_main_task_queue_is_refused_when_the_worker_is_built(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    elsewhere = dataclasses.replace(SHORT_STEPS, queues=(TaskQueue(lambda resources: [mark], role="far"),))
    with pytest.raises(ValueError, match=r"short step\(s\) test.short.mark must be activities of the main"):
        build_worker(dev_client, store, settings, Catalog(elsewhere))


async def test_a_worker_killed_mid_workflow_task_repeats_only_its_short_steps_and_effects_happen_once(
    dev_client: Client, tmp_path: Path
) -> None:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = clean_env(
        TEMPORAL_ADDRESS=dev_client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=dev_client.namespace,
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        LONGHAUL_CATALOG="tests.short_steps:SHORT_CATALOG",
        LONGHAUL_TASK_QUEUE=queue,
    )
    first = Process(["worker"], tmp_path, env, tmp_path / "worker-1.log")
    await first.ready("worker polling", 60)
    handle = await dev_client.start_workflow(
        ShortStepsWorkflow.run,
        StepsAsked(directory=str(tmp_path), slow_seconds=3),
        id=f"short-killed-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
    )
    calls = tmp_path / "calls.log"
    await asyncio.to_thread(wait_until, lambda: "slow 1 local" in _lines(calls), 60, "the slow step")
    first.kill()  # SIGKILL while the second workflow task runs its short steps
    second = Process(["worker"], tmp_path, env, tmp_path / "worker-2.log")
    try:
        await second.ready("worker polling", 60)
        assert await asyncio.wait_for(handle.result(), 120) == ["before", "first", "slow", "heartbeating"]
    finally:
        second.stop()
    # `before` finished in the first workflow task (a timer ended it): its result is in the history.
    # `first` and `slow` ran in the task the kill cut short: the next worker ran them again.
    assert Counter(line.split()[0] for line in _lines(calls)) == {
        "before": 1,
        "first": 2,
        "slow": 2,
        "heartbeating": 1,
    }
    assert sorted(_lines(tmp_path / "effects.log")) == ["before", "first", "heartbeating", "slow"]
