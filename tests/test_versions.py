"""Runs pinned to their version (Temporal Worker Deployments) on the dev server: two versions of the
workers side by side, v2 with a ``hello`` changed too much to patch. A v1 run waiting on its timer when v2
becomes current finishes on v1; a new run goes to v2; each record says its version; v1 cannot be retired
while a run is pinned to it. And the replay gate a release passes before making its version current."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.models import RunRecord
from longhaul.server.dispatcher import dispatching
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import RunService
from longhaul.server.versions import NotDrainedError, describe, drained, retire, set_current
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from tests.changed import HELLO_V1, HELLO_V2
from tests.processes import LONGHAUL, clean_env

HISTORIES = Path(__file__).parent / "histories"


async def _record(store: RunStore, run_id: str, *statuses: str) -> RunRecord:
    for _ in range(400):
        run = await store.get(run_id, logs=False)
        if run is not None and run.status in statuses:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {statuses}")


async def test_a_v1_run_on_a_timer_finishes_on_v1_while_new_runs_go_to_v2(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    deployment = f"tests-{uuid.uuid4().hex[:8]}"
    v1, v2 = (
        settings.model_copy(update={"worker_deployment": deployment, "worker_build_id": build})
        for build in ("v1", "v2")
    )
    service = RunService(dev_client, store, v1, HELLO_V1)

    async def hello(name: str, wait: float) -> RunRecord:
        envelope = EventEnvelope(payload={"name": name, "wait_seconds": wait})
        return (await service.send("hello", envelope, tenant="default")).deliveries[0].run

    async with build_worker(dev_client, store, v1, HELLO_V1), dispatching(service):
        await set_current(dev_client, deployment, "v1")
        old = await hello("Old", 10)  # still on its timer when v2 is current, however slow the machine
        await _record(store, old.id, "running")
        async with build_worker(dev_client, store, v2, HELLO_V2):
            await set_current(dev_client, deployment, "v2")
            new = await _record(store, (await hello("New", 0)).id, "completed", "failed")
            assert new.output == {"message": "Hello, New! (v2)"}, new.error
            assert new.version == f"{deployment}:v2"
            with pytest.raises(NotDrainedError, match="1 open run"):
                await retire(dev_client, deployment, "v1")
            done = await _record(store, old.id, "completed", "failed")
            assert done.output == {"message": "Hello, Old!"}, done.error  # v1's code, its timer and its step
            assert done.version == f"{deployment}:v1"
            versions = {v.build_id: v for v in await describe(dev_client, deployment)}
            assert versions["v2"].current and not versions["v1"].current
            assert await drained(dev_client, deployment, "v1", wait=10) == 0  # visibility follows soon
            with pytest.raises(NotDrainedError, match="workers polling"):  # drained, its workers still up
                await retire(dev_client, deployment, "v1")


def test_the_replay_gate_passes_the_recorded_histories_and_names_one_that_does_not_replay(
    tmp_path: Path,
) -> None:
    for name in ("hello-completed.json", "order-processing-completed.json"):
        shutil.copy(HISTORIES / name, tmp_path / name)
    env = clean_env()
    passed = subprocess.run(
        [LONGHAUL, "versions", "gate", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.strip() == "2 histories replay on this code"
    # A history whose charge step had another name: the code that replays it schedules another activity.
    renamed = (HISTORIES / "order-processing-completed.json").read_text().replace("payments.charge", "pay")
    (tmp_path / "order-renamed-step.json").write_text(renamed)
    failed = subprocess.run(
        [LONGHAUL, "versions", "gate", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert "order-renamed-step.json: NondeterminismError" in failed.stderr, failed.stderr
    assert "1 of 3 histories do not replay" in failed.stderr
