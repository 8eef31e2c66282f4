"""A changed ``hello`` workflow: what an unpatched, non-deterministic change looks like to the replay
tests (it answers without the greeting step that recorded histories contain)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.hello import HelloRequested


@workflow.defn(name="hello")
class HelloWithoutItsStep:
    @workflow.run
    async def run(self, request: HelloRequested) -> str:
        return f"Hello, {request.name}!"
