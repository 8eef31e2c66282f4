"""Workflows that show which sandbox runs them (tests/test_worker.py): a module imported once per worker or
once per run, and a call the strict sandbox refuses."""

from __future__ import annotations

import datetime

from temporalio import workflow

MODULE_TOKEN = object()  # a new object each time this module is imported


@workflow.defn
class ModuleImport:
    @workflow.run
    async def run(self) -> int:
        return id(MODULE_TOKEN)


@workflow.defn
class WallClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()  # not deterministic: the strict sandbox refuses it
