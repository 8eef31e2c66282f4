"""Changed ``hello`` workflows: what an unpatched, non-deterministic change looks like to the replay tests
(it answers without the greeting step that recorded histories contain), and a version 2 that runs
beside version 1 under worker versioning (tests/test_versions.py)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.hello import HELLO, HelloRequested

from longhaul.workflows import registry
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import Pipeline, Subscription
from longhaul.workflows.tracking import progress, tracked
from workflows.hello import HELLO_PIPELINE, HelloResult


@workflow.defn(name="hello")
class HelloWithoutItsStep:
    @workflow.run
    async def run(self, request: HelloRequested) -> str:
        return f"Hello, {request.name}!"


@registry.defn(name="hello")
class HelloV2:
    """``hello`` as its version 2 changes it, too much to patch: no greeting step and no timer, another
    answer. A v1 run replayed on it would fail; pinned, none is."""

    @workflow.run
    async def run(self, request: HelloRequested) -> HelloResult:
        return await tracked(self._greet(request))

    async def _greet(self, request: HelloRequested) -> HelloResult:
        await progress(50, "greeting, v2")
        return HelloResult(message=f"{request.greeting}, {request.name}! (v2)")


HELLO_V1 = Catalog(HELLO_PIPELINE)
HELLO_V2 = Catalog(Pipeline(name="hello", entries=(Subscription(HELLO, HelloV2),)))
