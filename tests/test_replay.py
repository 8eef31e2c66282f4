"""Safe upgrades: every recorded history (tests/histories: completed, failed, cancelled, continued-as-new
and mid-flight runs of each workflow longhaul ships) replays on the current workflow code, so a
non-deterministic change fails CI instead of the runs in flight. Recording: tests/recording.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from longhaul.config import Settings
from longhaul.server.versions import replayer
from longhaul.workflows.pipeline import Pipeline, workflow_name
from tests.changed import HelloWithoutItsStep
from tests.recording import PRODUCT_WORKFLOWS
from workflows.catalog import CATALOG

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
KINDS = ("completed", "mid-flight")  # what every workflow needs; failed, cancelled… where the tests make them


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def _replayer(workflows: Sequence[type], settings: Settings) -> Replayer:
    return replayer(workflows, CATALOG.short_steps, settings)


@pytest.mark.parametrize("pipeline", CATALOG.pipelines, ids=lambda pipeline: pipeline.name)
def test_every_pipeline_in_the_catalog_has_a_completed_and_a_mid_flight_history_of_each_workflow(
    pipeline: Pipeline,
) -> None:
    recorded = {path.stem for path in HISTORIES}
    expected = {f"{workflow_name(workflow)}-{kind}" for workflow in pipeline.all_workflows for kind in KINDS}
    assert expected - recorded == set(), "record them: make histories (docs/upgrades.md)"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_recorded_history_replays_on_the_current_code(path: Path) -> None:
    for settings in (Settings(workflow_sandbox="strict"), Settings(workflow_sandbox="shared")):
        result = await _replayer(PRODUCT_WORKFLOWS, settings).replay_workflow(_history(path))
        assert result.replay_failure is None


async def test_a_change_without_a_patch_fails_the_replay_of_recorded_histories() -> None:
    replayer = _replayer([HelloWithoutItsStep], Settings(workflow_sandbox="strict"))
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(_history(Path(__file__).parent / "histories" / "hello-completed.json"))


def test_mid_flight_histories_stop_before_the_run_ends() -> None:
    for path in HISTORIES:
        if path.stem.endswith("-mid-flight"):
            events = json.loads(path.read_text())["events"]
            assert not any("workflowExecutionCompletedEventAttributes" in e for e in events), path.stem
