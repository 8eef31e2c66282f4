"""Progress from inside an activity: one part of a parallel group (a rendition of a video, a page of an
import) reports its percent, and the run's record shows the group's progress and each part's
(``transcoding: 1080p 40%, 720p 75%``) between the workflow's own progress calls."""

from __future__ import annotations

from temporalio import activity

from longhaul.models import StepProgress, run_id_for
from longhaul.storage import RunStore


async def report_step(
    store: RunStore, group: str, step: str, percent: int, detail: str = "", *, span: tuple[int, int]
) -> None:
    """Record that ``step`` of ``group`` is ``percent`` done; the group's mean maps onto ``span`` of the
    run's progress (e.g. transcodes cover 10 to 70 %). Progress only moves forward, so a retried attempt
    that reports less changes nothing."""
    workflow_id = activity.info().workflow_id
    if workflow_id is None:
        raise RuntimeError("report_step is for activities that a workflow runs")
    progress = StepProgress(group=group, step=step, percent=percent, detail=detail)
    await store.report_step(run_id_for(workflow_id), progress, span=span)
