"""The run queue under a fault, with real processes: a 5,000-event burst, and the API (with its dispatcher,
or beside a separate ``longhaul dispatcher``) SIGKILLed in the middle of it, then restarted.

Afterwards every event answered 202 has exactly one run and one workflow, which completes; no event
answered 429 has either; Temporal holds no workflow without a run record; and the per-key limit (at most 2
runs of a key at once) held throughout, including for the runs the killed dispatcher had claimed but not
started (restarted by the next one), so no slot leaked.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client as TemporalClient

from tests.faults.test_faults import Stack
from tests.processes import LONGHAUL, clean_env, free_port, wait_until
from tests.test_queue import _most_at_once

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 5_000
KEYS = 10
SENDERS = 16


@pytest.fixture(params=["api-dispatching", "separate-dispatcher"])
def queue_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """Temporal, a worker and the API (dispatching, or beside a separate dispatcher) on the test catalog."""
    separate = request.param == "separate-dispatcher"
    env = clean_env(
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        LONGHAUL_CATALOG="tests.pipelines:TEST_CATALOG",
        LONGHAUL_API_DISPATCHER=str(not separate).lower(),
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
        PYTHONPATH=str(ROOT),
    )
    built = Stack(tmp_path, env, int(env["TEMPORAL_ADDRESS"].rsplit(":", 1)[1]), free_port(), "", Path())
    made = subprocess.run(
        [LONGHAUL, "keys", "create", "--tenant", "default"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    built.key = made.stdout.strip()
    built.start_temporal()
    try:
        built.start_worker()
        if separate:
            built.start("dispatcher", ready="dispatcher starting")
        built.start_api()
        yield built
    finally:
        for process in built.started:
            if process.popen.poll() is None:
                process.stop()
        if built.temporal and built.temporal.poll() is None:
            built.temporal.terminate()
            built.temporal.wait(30)


def _event(n: int) -> tuple[str, str, dict[str, object]]:
    """Event ``n`` of the burst: every fifth is per-key limited work, the rest are greetings."""
    if n % 5 == 0:
        return f"burst-{n}", "limited.work", {"key": f"k{n % KEYS}", "seconds": 0.05}
    return f"burst-{n}", "hello", {"name": f"n{n}"}


def _burst(stack: Stack, killed: threading.Event) -> dict[str, set[str]]:
    """Send the burst from several threads until ``killed``; event ids by answer: 202, 429, no answer."""
    answers: dict[str, set[str]] = {"accepted": set(), "refused": set(), "unknown": set()}
    lock = threading.Lock()

    def send(share: range) -> None:
        headers = {"Authorization": f"Bearer {stack.key}"}
        with httpx.Client(base_url=stack.api, headers=headers, timeout=30) as http:
            for n in share:
                if killed.is_set():
                    return
                event_id, name, payload = _event(n)
                try:
                    status = http.post(
                        f"/api/events/{name}", json={"id": event_id, "payload": payload}
                    ).status_code
                except httpx.TransportError:
                    status = 0
                kind = {202: "accepted", 429: "refused"}.get(status, "unknown")
                assert status in (202, 429, 0), f"{event_id}: {status}"
                with lock:
                    answers[kind].add(event_id)

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, [range(i, EVENTS, SENDERS) for i in range(SENDERS)]))
    return answers


def _runs(stack: Stack) -> dict[str, tuple[str, str, str | None, str | None, str, dict[str, object]]]:
    """Run records by workflow id (an event of ``hello`` starts two): (event id, status, started, finished,
    event, input)."""
    with sqlite3.connect(stack.root / "data" / "longhaul.db", timeout=30) as db:
        rows = db.execute(
            "SELECT event_id, workflow_id, status, started_at, finished_at, event, input FROM runs"
        ).fetchall()
    return {row[1]: (row[0], row[2], row[3], row[4], row[5], json.loads(row[6])) for row in rows}


async def _workflow_count(stack: Stack) -> int:
    temporal = await TemporalClient.connect(f"127.0.0.1:{stack.temporal_port}")
    return (await temporal.count_workflows()).count


def test_killing_the_dispatching_process_mid_burst_loses_nothing_and_starts_nothing_twice(
    queue_stack: Stack,
) -> None:
    stack = queue_stack
    killed = threading.Event()
    victims = [p for p in stack.started if p.log.name.startswith(("api", "dispatcher"))]

    def kill_soon() -> None:
        time.sleep(2.0)  # mid-burst: accepts committing, claims and starts in flight
        for process in victims:
            process.popen.kill()
            process.popen.wait()
        killed.set()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    began = time.monotonic()
    answers = _burst(stack, killed)
    took = time.monotonic() - began
    killer.join()
    assert answers["accepted"], "nothing was accepted before the kill"
    if any(p.log.name.startswith("dispatcher") for p in victims):
        stack.start("dispatcher", ready="dispatcher starting")
    stack.start_api()

    def all_done() -> bool:  # every accepted event's run, and the runs of events whose answer was lost
        runs = _runs(stack).values()
        return answers["accepted"] <= {run[0] for run in runs} and all(run[1] == "completed" for run in runs)

    wait_until(all_done, 300, "every run to complete")
    runs = _runs(stack)
    assert not answers["refused"] & {run[0] for run in runs.values()}, "an event answered 429 has a run"
    assert asyncio.run(_workflow_count(stack)) == len(runs)  # no workflow without its record, none twice

    by_key: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for _, status, started, finished, event, payload in runs.values():
        if event == "limited.work" and status == "completed":
            assert started and finished
            by_key[str(payload["key"])].append(
                (datetime.fromisoformat(started), datetime.fromisoformat(finished))
            )
    assert by_key and max(_most_at_once(intervals) for intervals in by_key.values()) <= 2
    print(
        f"\nburst of {EVENTS}: {len(answers['accepted'])} accepted, {len(answers['refused'])} refused (429), "
        f"{len(answers['unknown'])} unanswered (killed) in {took:.1f} s; {len(runs)} runs, all completed"
    )
