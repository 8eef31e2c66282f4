"""The benchmarks run (their numbers are read by people, never asserted: these machines are noisy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_transcode_benchmark_runs_both_variants_and_writes_its_result() -> None:
    before = set((ROOT / "bench" / "results").glob("transcode-*.json"))
    result = subprocess.run(
        [sys.executable, "-m", "bench", "transcode", "--repeats", "1", "--seconds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "direct ffmpeg" in result.stdout and "workflow" in result.stdout
    [written] = set((ROOT / "bench" / "results").glob("transcode-*.json")) - before
    report = json.loads(written.read_text())
    written.unlink()
    assert set(report["variants"]) == {"direct ffmpeg", "workflow"}
    assert report["ratio"] > 0
