"""Scale-out on one machine: three ``longhaul worker`` processes on one task queue and two ``longhaul api``
processes, against one Temporal dev server and one PostgreSQL app database, as a cluster would run them.

Load spreads across the workers' identities, every event makes exactly one run even when it reaches both
APIs at once, each run's step runs once (its log line appears once across all workers), and transcodes,
on their own task queue with their own slots, cannot starve short runs: every hello finishes while the
videos are still transcoding.
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
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.ffmpeg import make_sample
from longhaul.db import Database
from longhaul.keys import KeyStore
from tests.postgres import PostgresServer
from tests.processes import LONGHAUL, Process, clean_env, free_port, wait_until

pytestmark = pytest.mark.slow

WORKERS, APIS, HELLOS, VIDEOS = 3, 2, 60, 3


@dataclass
class Cluster:
    apis: list[httpx.AsyncClient]
    workers: list[Process]
    task_queue: str
    upload_dir: Path


@pytest.fixture
async def cluster(dev_client: Client, postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    database_url = await postgres.create_database()
    task_queue = f"scale-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        TEMPORAL_ADDRESS=dev_client.service_client.config.target_host,
        LONGHAUL_DATABASE_URL=database_url,
        LONGHAUL_MIGRATE_ON_START="false",  # the release step below migrates, as in production
        LONGHAUL_TASK_QUEUE=task_queue,
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        LONGHAUL_UPLOAD_DIR=str(tmp_path / "uploads"),
        LONGHAUL_MEDIA_DIR=str(tmp_path / "media"),
        LONGHAUL_MAX_CONCURRENT_TRANSCODES="1",
        LONGHAUL_LOG_FORMAT="json",
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
    )
    upgrade = await asyncio.to_thread(
        subprocess.run, [LONGHAUL, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgrade.returncode == 0, upgrade.stderr
    db = Database(database_url)
    try:
        _, key = await KeyStore(db).create("default", "scale-out")
    finally:
        await db.close()

    ports = [free_port() for _ in range(APIS)]
    processes = [
        Process(["api", "--port", str(port)], tmp_path, env, tmp_path / f"api-{i}.log")
        for i, port in enumerate(ports)
    ] + [Process(["worker"], tmp_path, env, tmp_path / f"worker-{i}.log") for i in range(WORKERS)]
    workers = processes[APIS:]
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"})
        for port in ports
    ]
    try:
        for worker in workers:
            worker.wait_for_output("worker polling", 60)
        for port in ports:
            wait_until(lambda port=port: _healthy(port), 60, f"the API on port {port}")  # type: ignore[misc]
        yield Cluster(clients, workers, task_queue, tmp_path / "uploads")
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            process.kill()


def _healthy(port: int) -> bool:
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


async def wait_for(api: httpx.AsyncClient, run_id: str, *statuses: str, limit: float = 180) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(int(limit * 10)):
        body = (await api.get(f"/api/runs/{run_id}")).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {statuses}: {body}")


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
        payload = {"video_id": f"clip-{i}", "user_id": "u1", "file_path": f"clip-{i}.mp4"}
        accepted = await cluster.apis[i % APIS].post("/api/events/video.uploaded", json={"payload": payload})
        videos.extend(run["run_id"] for run in accepted.json()["runs"])

    async def send_to_both(i: int) -> set[str]:
        """The same event to both APIs at once, as a client retrying against a load balancer would."""
        event = {"id": f"hello-{i}", "payload": {"name": f"n{i}"}}
        answers = await asyncio.gather(*(api.post("/api/events/hello", json=event) for api in cluster.apis))
        assert {answer.status_code for answer in answers} == {202}
        return {run["run_id"] for answer in answers for run in answer.json()["runs"]}

    runs = await asyncio.gather(*(send_to_both(i) for i in range(HELLOS)))
    assert all(len(same_event) == 1 for same_event in runs)  # both APIs answered with the one run
    hellos = [run_id for (run_id,) in runs]
    for i, run_id in enumerate(hellos):
        assert (await wait_for(cluster.apis[i % APIS], run_id, "completed"))["progress"] == 100

    # Transcodes have their own queue and slots: the short runs all finished while videos still transcode.
    statuses = [(await wait_for(cluster.apis[0], v, "running", "queued"))["status"] for v in videos]
    assert "running" in statuses, statuses

    count = await dev_client.count_workflows(f"TaskQueue = '{cluster.task_queue}' AND WorkflowType = 'hello'")
    assert count.count == HELLOS  # one workflow per event, though each event reached both APIs

    identities: Counter[str] = Counter()
    for i in range(HELLOS):
        history = await dev_client.get_workflow_handle(f"hello/default/hello-{i}").fetch_history()
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

    for video in videos:  # no need to wait for the transcodes: cancelling stops FFmpeg and records it
        await cluster.apis[0].post(f"/api/runs/{video}/cancel")
    for video in videos:
        assert (await wait_for(cluster.apis[0], video, "cancelled", "completed"))["status"] in (
            "cancelled",
            "completed",
        )
