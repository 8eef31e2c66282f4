"""What every benchmark shares: the embedded server as users run it, timing, medians, the result file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from longhaul.binaries import temporal_cli
from longhaul.temporal import PRIORITY_MATCHING, SEARCH_ATTRIBUTES, SQLITE_FAST

RESULTS = Path(__file__).parent / "results"


@asynccontextmanager
async def embedded_server(data_dir: Path) -> AsyncIterator[WorkflowEnvironment]:
    """The dev server as ``longhaul dev`` runs it: SQLite file persistence, WAL, synchronous=normal."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=str(data_dir / "temporal.db"),
        dev_server_extra_args=[*SQLITE_FAST, *PRIORITY_MATCHING],
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


@dataclass
class Comparison:
    """Variants measured side by side (interleaved) in one run; ratios of medians, never one absolute."""

    name: str
    baseline: str
    seconds: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, variant: str, value: float) -> None:
        self.seconds.setdefault(variant, []).append(value)

    def median(self, variant: str) -> float:
        return statistics.median(self.seconds[variant])

    def ratio(self, variant: str) -> float:
        """Speed of ``variant`` relative to the baseline (1.0 = as fast; below 1 = slower)."""
        return self.median(self.baseline) / self.median(variant)

    def report(self) -> dict[str, Any]:
        rows = {
            variant: {
                "median_s": round(self.median(variant), 4),
                "runs_s": [round(v, 4) for v in values],
                "ratio_to_baseline": round(self.ratio(variant), 4),
            }
            for variant, values in self.seconds.items()
        }
        return {
            "benchmark": self.name,
            "baseline": self.baseline,
            "variants": rows,
            **self.notes,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
        }

    def print_and_save(self) -> Path:
        report = self.report()
        width = max(len(v) for v in report["variants"])
        print(f"\n{self.name}: median of {len(next(iter(self.seconds.values())))} runs, interleaved")
        print(f"  {'variant':<{width}}  {'median s':>9}  {'ratio':>6}")
        for variant, row in report["variants"].items():
            print(f"  {variant:<{width}}  {row['median_s']:>9.3f}  {row['ratio_to_baseline']:>6.3f}")
        for key, value in self.notes.items():
            print(f"  {key}: {value}")
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2))
        print(f"  written to {path}")
        return path
