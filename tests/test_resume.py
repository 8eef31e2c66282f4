"""Resume from the failed step: a step fails for a bug, the bug is fixed, the run resumes from that step on
a real dev server; the steps before it happened once. Runs whose failure was compensated are refused."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.apps import wait_for_status
from tests.pipelines import EFFECTS, FIXED, RAN
from tests.postgres import both_databases

pytestmark = both_databases


def mine(steps: list[str], key: str) -> list[str]:
    return [step for step in steps if step.endswith(key)]


async def failed_run(api: httpx.AsyncClient, **asked: Any) -> tuple[str, str]:
    key = f"k-{uuid.uuid4().hex[:8]}"
    response = await api.post("/api/events/resume.asked", json={"payload": {"key": key, **asked}})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["run_id"]
    failed = await wait_for_status(api, run_id, "failed")
    assert f"bug in the fragile step of {key}" in failed["error"]
    return key, run_id


@pytest.mark.parametrize("local", [False, True], ids=["activity", "local-activity"])
async def test_a_fixed_run_resumes_from_its_failed_step_and_the_steps_before_happen_once(
    api: httpx.AsyncClient, dev_client: Client, local: bool
) -> None:
    key, run_id = await failed_run(api, local=local)
    assert mine(EFFECTS, key) == [f"one:{key}", f"two:{key}"]
    workflow_id = (await api.get(f"/api/runs/{run_id}")).json()["workflow_id"]
    failed_execution = (await dev_client.get_workflow_handle(workflow_id).describe()).run_id

    FIXED.add(key)  # the bug is fixed (the worker runs the fixed code)
    response = await api.post(f"/api/runs/{run_id}/resume")
    assert response.status_code == 202, response.text
    resumed = response.json()
    step = "local activity tests.fragile_step" if local else "activity tests.fragile_step"
    assert resumed["status"] == "running" and resumed["error"] is None
    assert resumed["stage"] == f"resuming from {step}"

    done = await wait_for_status(api, run_id, "completed")
    assert done["output"] == [f"one:{key}", f"two:{key}", f"fragile:{key}", f"four:{key}"]
    # Every step's effect happened once. The activity before the failed step was not run again; the local
    # activity was (it ran inside the workflow task that started the failed step: a reset redoes that
    # task), found its effect, and the run's log says so.
    assert mine(EFFECTS, key) == [f"one:{key}", f"two:{key}", f"fragile:{key}", f"four:{key}"]
    assert mine(RAN, key) == [f"one:{key}", f"two:{key}", f"two:{key}", f"fragile:{key}", f"four:{key}"]
    messages = [line["message"] for line in done["logs"]]
    [resuming] = [m for m in messages if m.startswith(f"resuming from {step} (Temporal reset to event ")]
    assert resuming.endswith(f"{failed_execution}; run again, idempotent: tests.record_step)")
    assert "75% fragile done" in messages
    # In Temporal: a new execution of the same workflow, reset from the failed one.
    described = await dev_client.get_workflow_handle(workflow_id).describe()
    assert described.run_id != failed_execution
    assert (await api.post(f"/api/runs/{run_id}/resume")).status_code == 409  # completed: nothing to resume


async def test_a_run_whose_failure_was_compensated_is_not_resumed_and_says_to_replay(
    api: httpx.AsyncClient,
) -> None:
    key, run_id = await failed_run(api, compensate=True)
    FIXED.add(key)
    response = await api.post(f"/api/runs/{run_id}/resume")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "cannot resume from activity tests.fragile_step: steps ran after the failure (tests.record_step), "
        "and a resumed run would go on as if they had not; replay the run instead (a new run from the start)"
    )
    run = (await api.get(f"/api/runs/{run_id}")).json()
    assert run["status"] == "failed"  # untouched
    assert mine(EFFECTS, key) == [f"one:{key}", f"two:{key}", f"undo-one:{key}"]


async def test_only_failed_runs_of_the_callers_tenant_resume(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/events/hello", json={"payload": {"name": "Res"}})
    run_id = response.json()["runs"][0]["run_id"]
    await wait_for_status(api, run_id, "completed")
    refused = await api.post(f"/api/runs/{run_id}/resume")
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"run '{run_id}' is completed; only failed runs resume (or replay it)"
    assert (await api.post("/api/runs/run_missing/resume")).status_code == 404
