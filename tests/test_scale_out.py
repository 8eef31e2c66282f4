"""Scale-out on one machine: three ``longhaul worker`` processes on one task queue and two ``longhaul api``
processes, against one Temporal dev server and one PostgreSQL app database, as a cluster would run them.

Load spreads across the workers' identities; every event makes exactly one run even when it reaches both
APIs at once; each run's work is done once (a hello's greeting is logged once across all workers, an order
is charged once at the payment provider and takes its stock once); and transcodes, on their own task
queue with their own slots and FFmpeg niced, cannot starve orders: every order and hello finishes while
the videos are still transcoding.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.orders.store import OrderStore
from activities.video.ffmpeg import make_sample
from longhaul.db import Database
from longhaul.keys import KeyStore
from tests.apps import wait_for_status
from tests.postgres import PostgresServer
from tests.processes import LONGHAUL, Process, clean_env, free_port, wait_until

pytestmark = pytest.mark.slow

WORKERS, APIS, HELLOS, ORDERS, VIDEOS = 3, 2, 40, 12, 3
MUG_STOCK = 250  # the demo product sku-mug (longhaul orders seed)


@dataclass
class Cluster:
    apis: list[httpx.AsyncClient]
    workers: list[Process]
    task_queue: str
    upload_dir: Path
    payments: httpx.AsyncClient
    database_url: str


@pytest.fixture
async def cluster(dev_client: Client, postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    database_url = await postgres.create_database()
    task_queue = f"scale-{uuid.uuid4().hex[:8]}"
    ports, payments_port = [free_port() for _ in range(APIS)], free_port()
    env = clean_env(
        TEMPORAL_ADDRESS=dev_client.service_client.config.target_host,
        LONGHAUL_DATABASE_URL=database_url,
        LONGHAUL_MIGRATE_ON_START="false",  # the release step below migrates, as in production
        LONGHAUL_TASK_QUEUE=task_queue,
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        LONGHAUL_UPLOAD_DIR=str(tmp_path / "uploads"),
        LONGHAUL_MEDIA_DIR=str(tmp_path / "media"),
        VIDEO_MAX_CONCURRENT_TRANSCODES="1",
        LONGHAUL_LOG_FORMAT="json",
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
        ORDERS_PAYMENTS_URL=f"http://127.0.0.1:{payments_port}",
    )
    for release_step in (["db", "upgrade"], ["orders", "seed"]):
        done = await asyncio.to_thread(
            subprocess.run, [LONGHAUL, *release_step], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    db = Database(database_url)
    try:
        _, key = await KeyStore(db).create("default", "scale-out")
    finally:
        await db.close()

    webhook = f"http://127.0.0.1:{ports[1]}/api/webhooks/payments"
    processes = [
        *(
            Process(["api", "--port", str(port)], tmp_path, env, tmp_path / f"api-{i}.log")
            for i, port in enumerate(ports)
        ),
        *(Process(["worker"], tmp_path, env, tmp_path / f"worker-{i}.log") for i in range(WORKERS)),
        Process(
            ["payments", "--port", str(payments_port), "--webhook-url", webhook],
            tmp_path,
            env,
            tmp_path / "payments.log",
        ),
    ]
    workers = processes[APIS : APIS + WORKERS]
    # Correctness, not speed: two APIs, three workers, FFmpeg and the server share 2 cores here, and a
    # start can take seconds (httpx's default 5 s timeout failed a CI run on a slow day).
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        for port in ports
    ]
    payments = httpx.AsyncClient(base_url=f"http://127.0.0.1:{payments_port}")
    try:
        for worker in workers:
            await worker.ready("worker polling", 60)
        for port in [*ports, payments_port]:
            wait_until(lambda port=port: _answers(port), 60, f"the server on port {port}")  # type: ignore[misc]
        yield Cluster(clients, workers, task_queue, tmp_path / "uploads", payments, database_url)
    finally:
        for client in [*clients, payments]:
            await client.aclose()
        for process in processes:
            process.kill()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def video_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1080p: three renditions each, long enough to keep every worker's media slot busy for a while."""
    return make_sample(
        tmp_path_factory.mktemp("scale") / "clip.mp4", width=1920, height=1080, seconds=12, quiet=(3, 4)
    )


def worker_log_lines(workers: list[Process]) -> Iterator[dict[str, Any]]:
    for worker in workers:
        for line in worker.output.splitlines():
            if line.startswith("{"):
                yield json.loads(line)


async def test_three_workers_and_two_apis_share_the_load_and_run_each_event_once(
    cluster: Cluster, dev_client: Client, video_source: Path
) -> None:
    cluster.upload_dir.mkdir(parents=True)
    videos: list[str] = []
    for i in range(VIDEOS):
        shutil.copy(video_source, cluster.upload_dir / f"clip-{i}.mp4")
        payload = {"video_id": f"clip-{i}", "user_id": f"u{i}", "file_path": f"clip-{i}.mp4"}
        accepted = await cluster.apis[i % APIS].post("/api/events/video.uploaded", json={"payload": payload})
        videos.extend(run["run_id"] for run in accepted.json()["runs"])

    async def send_to_both(name: str, event_id: str, payload: dict[str, Any]) -> str:
        """The same event to both APIs at once, as a client retrying against a load balancer would."""
        event = {"id": event_id, "payload": payload}
        answers = await asyncio.gather(*(api.post(f"/api/events/{name}", json=event) for api in cluster.apis))
        assert {answer.status_code for answer in answers} == {202}, [a.text for a in answers]
        [run_id] = {str(run["run_id"]) for answer in answers for run in answer.json()["runs"]}  # one run
        return run_id

    mug = {"product_id": "sku-mug", "quantity": 1, "price": "9.90"}
    orders = await asyncio.gather(
        *(
            send_to_both(
                "order.created", f"order-{i}", {"order_id": f"o-{i}", "user_id": "u", "items": [mug]}
            )
            for i in range(ORDERS)
        )
    )
    hellos = await asyncio.gather(
        *(send_to_both("hello", f"hello-{i}", {"name": f"n{i}"}) for i in range(HELLOS))
    )
    finished_runs = [
        await wait_for_status(cluster.apis[i % APIS], run_id, "completed", limit=180)
        for i, run_id in enumerate([*orders, *hellos])
    ]
    assert {run["progress"] for run in finished_runs} == {100}
    workflow_ids = [run["workflow_id"] for run in finished_runs]

    # Transcodes have their own queue and slots, and FFmpeg runs niced: the short runs all finished while
    # the videos still transcoded. Told by the records' times, not by a look afterwards (which can be late).
    last_short = max(datetime.fromisoformat(run["finished_at"]) for run in finished_runs)
    transcodes = [(await cluster.apis[0].get(f"/api/runs/{video}")).json() for video in videos]
    assert any(
        video["finished_at"] is None or datetime.fromisoformat(video["finished_at"]) > last_short
        for video in transcodes
    ), (last_short, transcodes)

    for workflow, sent in (("hello", HELLOS), ("order-processing", ORDERS)):
        query = f"TaskQueue = '{cluster.task_queue}' AND WorkflowType = '{workflow}'"
        assert (await dev_client.count_workflows(query)).count == sent  # one workflow per event

    identities: Counter[str] = Counter()
    for workflow_id in workflow_ids:
        history = await dev_client.get_workflow_handle(workflow_id).fetch_history()
        identities.update(
            e.workflow_task_started_event_attributes.identity
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        )
    pids = {identity.split("@")[0] for identity in identities}
    assert pids == {str(worker.popen.pid) for worker in cluster.workers}, identities  # every worker took part

    greetings = Counter(
        line["run_id"]
        for line in worker_log_lines(cluster.workers)
        if line["message"].startswith("composed greeting")
    )
    assert greetings == Counter({run_id: 1 for run_id in hellos})  # each run's step ran once, on one worker
    ledger = (await cluster.payments.get("/v1/ledger")).json()
    charges = Counter(entry["order_id"] for entry in ledger if entry["op"] == "charge")
    assert charges == Counter({f"o-{i}": 1 for i in range(ORDERS)})  # each order charged once
    db = Database(cluster.database_url)
    try:
        [mug_now] = (await OrderStore(db).products("default", ["sku-mug"])).values()
    finally:
        await db.close()
    assert mug_now.stock == MUG_STOCK - ORDERS  # and took its stock once

    for video in videos:  # no need to wait for the transcodes: cancelling stops FFmpeg and records it
        await cluster.apis[0].post(f"/api/runs/{video}/cancel")
    for video in videos:
        await wait_for_status(cluster.apis[0], video, "cancelled", "completed", limit=180)
