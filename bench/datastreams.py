"""Durable data streams (#30): how many chunks one activity can append a second, and how long a chunk takes
from its append to a browser's ``EventSource``.

A real ``longhaul api`` (with its dispatcher) and ``longhaul worker`` on the embedded server, SQLite app
storage as ``longhaul dev`` has it. Rate: one activity writes ``chunks`` chunks of 100 characters as fast
as it can, by ``append`` (one write each, the baseline) and by ``pipe`` (what arrives while a write is in
flight goes in the next), interleaved ``repeats`` times; the activity times itself. Latency: an activity
appends ``paced`` chunks ``interval`` seconds apart, each carrying ``time.time()`` at its append, while
Debian's Chromium (offline, headless) reads the stream with an ``EventSource`` and an access token scoped
to the run and notes ``Date.now()`` at each chunk: p50 and p99 of the difference (one clock, one box).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from bench.harness import Comparison, api_client, percentile, stack

APPEND = "append (one write per chunk)"
PIPE = "pipe (batched while a write is in flight)"
GOAL_P99_S = 0.25  # a chunk on screen within a quarter second (the poller's 50 ms tick, a write, SSE)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PAGE = """<!doctype html><meta charset="utf-8"><title>stream</title><script>
window.latencies = []; window.ended = false;
const source = new EventSource(%s);
source.addEventListener("chunk", (event) => {
  const now = Date.now() / 1000;
  const chunk = JSON.parse(event.data);
  window.latencies.push(now - parseFloat(chunk.data.split(" ")[0]));
});
source.addEventListener("end", () => { window.ended = true; source.close(); });
</script>"""


async def run(chunks: int, paced: int, interval: float, repeats: int) -> Comparison:
    comparison = Comparison("datastreams", baseline=APPEND, work=chunks)
    comparison.notes.update(chunks=chunks, chunk_chars=100, paced=paced, interval_s=interval)
    async with stack("datastreams") as bench:
        _, url, key = await bench.api()
        await bench.worker()
        async with api_client(url, key, 4) as http:
            await _write(http, 200, "append")  # warm up: processes, tables, caches
            for repeat in range(repeats):
                for variant in (APPEND, PIPE) if repeat % 2 == 0 else (PIPE, APPEND):
                    mode = "append" if variant == APPEND else "pipe"
                    seconds = await _write(http, chunks, mode)
                    comparison.add(variant, seconds)
            latencies = await _latencies(http, url, paced, interval)
    for variant in (APPEND, PIPE):
        comparison.notes[f"chunks_per_s {variant}"] = round(comparison.rate(variant))
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    comparison.notes.update(
        latency_append_to_eventsource_s={"p50": round(p50, 4), "p99": round(p99, 4), "n": len(latencies)},
        latency_p99_goal_s=GOAL_P99_S,
        latency_meets_goal=p99 <= GOAL_P99_S,
    )
    return comparison


async def _write(http: httpx.AsyncClient, count: int, mode: str, interval: float = 0) -> float:
    """One run writing ``count`` chunks by ``mode``; the seconds its activity took."""
    run_id = await _start(http, {"count": count, "mode": mode, "interval": interval})
    return float((await _finished(http, run_id))["output"])


async def _start(http: httpx.AsyncClient, payload: dict[str, Any], delay: float | None = None) -> str:
    body = {"payload": payload, "options": {"delay": delay} if delay else {}}
    answer = (await http.post("/api/events/bench.stream", json=body)).raise_for_status()
    return str(answer.json()["runs"][0]["run_id"])


async def _finished(http: httpx.AsyncClient, run_id: str, patience: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await http.get(f"/api/runs/{run_id}")).raise_for_status().json()
        if run["status"] == "completed":
            return run
        if run["status"] in ("failed", "cancelled", "timed_out", "expired"):
            raise RuntimeError(f"run {run_id} {run['status']}: {run['error']}")
        await asyncio.sleep(0.2)
    raise RuntimeError(f"run {run_id} did not finish within {patience} s")


async def _latencies(http: httpx.AsyncClient, url: str, count: int, interval: float) -> list[float]:
    """Append → a browser's EventSource, for each of ``count`` paced chunks (the run starts 5 s on: the page
    is reading the stream by then)."""
    from playwright.async_api import async_playwright

    run_id = await _start(http, {"count": count, "mode": "append", "interval": interval}, delay=5)
    token = (await http.post("/api/access-tokens", json={"run_id": run_id})).raise_for_status().json()
    source = f"{url}/api/runs/{run_id}/streams/chunks?access_token={token['token']}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/health")  # same origin as the stream: no CORS in the way
            await page.set_content(PAGE % json.dumps(source))
            await page.wait_for_function("() => window.ended", timeout=(count * interval + 120) * 1000)
            latencies: list[float] = await page.evaluate("() => window.latencies")
        finally:
            await browser.close()
    await _finished(http, run_id)
    if len(latencies) != count:
        raise RuntimeError(f"the page saw {len(latencies)} of {count} chunks")
    return latencies
