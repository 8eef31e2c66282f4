"""The bulk action: cancel, replay or resume every run a filter matches, as a run of its own.

Its run record is the record of the action: the request (its input: action, filter, reason), progress
("1,200 of 5,000 runs") and counts in its metadata as it goes, and the outcome (its output: done, skipped
and failed counts, with the first reasons). It acts on the runs that existed when it began (the filter's
``created_before`` is pinned then), a page at a time, each page an activity that is safe to retry.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.bulk import BulkActivities, BulkPage, BulkRequested, PageResult

from longhaul.workflows import registry
from longhaul.workflows.metadata import metadata
from longhaul.workflows.tracking import current_run_id, current_tenant, progress, tracked

SHOWN = 20  # skipped and failed runs named in the outcome (the rest are counted)
PAGE_TIMEOUT = timedelta(minutes=10)
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


class BulkReport(BaseModel):
    action: str
    matched: int = Field(description="Runs the filter matched when the action began.")
    done: int = 0
    skipped: int = 0
    failed: int = 0
    skipped_runs: dict[str, str] = Field(default_factory=dict, description=f"The first {SHOWN}: run → why.")
    failed_runs: dict[str, str] = Field(default_factory=dict, description=f"The first {SHOWN}: run → error.")

    def add(self, page: PageResult) -> None:
        self.done += len(page.done)
        self.skipped += len(page.skipped)
        self.failed += len(page.failed)
        for shown, found in ((self.skipped_runs, page.skipped), (self.failed_runs, page.failed)):
            shown.update(dict(list(found.items())[: max(0, SHOWN - len(shown))]))


@registry.defn(name="bulk-action")
class BulkActionWorkflow:
    @workflow.run
    async def run(self, request: BulkRequested) -> BulkReport:
        return await tracked(self._act(request))

    async def _act(self, request: BulkRequested) -> BulkReport:
        now = workflow.now()
        pinned = (request.filter.created_before and min(request.filter.created_before, now)) or now
        page = BulkPage(
            tenant=current_tenant(),
            action=request.action,
            filter=request.filter.model_copy(update={"created_before": pinned}),
            key="bulk-" + hashlib.sha256(workflow.info().workflow_id.encode()).hexdigest()[:12],
            own_run=current_run_id(),
            reason=request.reason,
        )
        matched: int = await workflow.execute_activity_method(
            BulkActivities.count, page, start_to_close_timeout=PAGE_TIMEOUT, retry_policy=RETRY
        )
        report = BulkReport(action=request.action, matched=matched)
        await self._report(report)
        while True:
            result = await workflow.execute_activity_method(
                BulkActivities.act_page,
                page,
                start_to_close_timeout=PAGE_TIMEOUT,
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
                summary=f"{request.action} a page of runs",
            )
            report.add(result)
            await self._report(report)
            if result.next_cursor is None:
                return report
            page = page.model_copy(update={"cursor": result.next_cursor})

    async def _report(self, report: BulkReport) -> None:
        acted = report.done + report.skipped + report.failed
        metadata.set("bulk", {"matched": report.matched, "done": report.done, "skipped": report.skipped,
                              "failed": report.failed})  # fmt: skip
        percent = 100 if report.matched == 0 else min(100, 100 * acted // report.matched)
        await progress(percent, f"{report.action}: {acted:,} of {report.matched:,} runs")
