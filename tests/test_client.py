"""The Python client (sync and async) and the CLI against a real API and worker, each its own process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from longhaul.client import AsyncClient, Client, LonghaulError, UnavailableError
from longhaul.models import RunRecord, RunStatus
from tests.processes import LONGHAUL, Process, clean_env, create_key, free_port
from tests.receivers import receiver


@dataclass
class Served:
    url: str
    env: dict[str, str]
    cwd: Path
    key: str


def _serve(cwd: Path, env: dict[str, str], *, worker: bool) -> Iterator[str]:
    port = free_port()
    processes = [Process(["api", f"--port={port}"], cwd, env, cwd / "api.log")]
    if worker:
        processes.append(Process(["worker"], cwd, env, cwd / "worker.log"))
    try:
        processes[0].wait_for_output("Application startup complete", 60)
        if worker:
            processes[1].wait_for_output("worker polling", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, dev_env: WorkflowEnvironment) -> Iterator[Served]:
    cwd = tmp_path_factory.mktemp("served")
    env = clean_env(
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        LONGHAUL_TASK_QUEUE=f"client-{uuid.uuid4().hex[:8]}",
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
        LONGHAUL_API_KEY_CACHE_SECONDS="60",  # a revocation must not wait for it (below)
        LONGHAUL_ALERT_PRIVATE_HOSTS='["127.0.0.1"]',  # the test's alert receiver (tests/test_egress.py)
    )
    key = create_key(cwd, env)
    for url in _serve(cwd, env, worker=True):
        yield Served(url, {**env, "LONGHAUL_URL": url, "LONGHAUL_API_KEY": key}, cwd, key)


def test_sync_client_sends_waits_streams_and_lists(served: Served) -> None:
    with Client(served.url, api_key=served.key) as client:
        accepted = client.send_event("hello", {"name": "Sync"}, tags=["sdk"])
        assert accepted.event_id.startswith("evt_")  # the client names every event before sending it
        [ref] = accepted.runs
        streamed = list(client.runs.stream(ref.run_id))
        assert streamed[-1].status == RunStatus.COMPLETED
        run = client.runs.wait(ref.run_id, timeout=30)
        assert run.output == {"message": "Hello, Sync!"}
        assert run.id in [r.id for r in client.runs.list(tag="sdk").runs]
        assert [r.id for r in client.runs.list(q=accepted.event_id).runs] == [ref.run_id]  # found by its id
        again = client.send_event("hello", {"name": "Sync"}, id=accepted.event_id)
        assert [r.run_id for r in again.runs] == [ref.run_id]
        with pytest.raises(LonghaulError) as missing:
            client.runs.get("run_nope")
        assert missing.value.status_code == 404
        # Send and wait for the result in one call.
        done = client.send_and_wait("hello", {"name": "Waited"}, timeout=30)
        assert done.status == RunStatus.COMPLETED and done.output == {"message": "Hello, Waited!"}
        with pytest.raises(LonghaulError, match="reached no run of video-processing"):
            client.send_and_wait("hello", {"name": "Nobody"}, workflow="video-processing")


def test_both_clients_pause_and_unpause_and_the_sync_client_cancels_and_replays(served: Served) -> None:
    with Client(served.url, api_key=served.key) as client:
        [ref] = client.send_event("hello", {"name": "Slow", "wait_seconds": 600}).runs
        paused = client.runs.pause(ref.run_id, "look first")
        assert paused.paused_at is not None and (paused.pause_reason or "").endswith(": look first")

        async def unpause() -> RunRecord:
            async with AsyncClient(served.url, api_key=served.key) as aclient:
                return await aclient.runs.unpause(ref.run_id)

        assert asyncio.run(unpause()).paused_at is None
        client.runs.cancel(ref.run_id)
        cancelled = client.runs.wait(ref.run_id, timeout=30)
        assert cancelled.status == RunStatus.CANCELLED
        replay = client.runs.replay(ref.run_id)
        assert client.runs.get(replay.run_id).replay_of == ref.run_id
        client.runs.cancel(replay.run_id)
        assert client.runs.wait(replay.run_id, timeout=30).status == RunStatus.CANCELLED


async def test_async_client_sends_streams_and_waits(served: Served) -> None:
    async with AsyncClient(served.url, api_key=served.key) as client:
        [ref] = (await client.send_event("hello", {"name": "Async"})).runs
        statuses = [run.status async for run in client.runs.stream(ref.run_id)]
        assert statuses[-1] == RunStatus.COMPLETED
        run = await client.runs.wait(ref.run_id, timeout=30)
        assert run.output == {"message": "Hello, Async!"}
        done = await client.send_and_wait("hello", {"name": "Awaited"}, workflow="hello", timeout=30)
        assert done.output == {"message": "Hello, Awaited!"}
        page = await client.runs.list(workflow="hello", limit=1)
        assert len(page.runs) == 1 and page.next_cursor is not None


def test_client_retries_a_503_then_reports_unavailable(tmp_path: Path) -> None:
    env = clean_env(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")  # no server there
    key = create_key(tmp_path, env)
    for url in _serve(tmp_path, env, worker=False):
        with Client(url, retries=1, api_key=key) as client:
            # Accepting needs only app storage, routed events too (their signal waits in the queue);
            # a signal sent to a run directly needs Temporal now.
            order = {
                "order_id": "o-1",
                "user_id": "u",
                "items": [{"product_id": "p", "quantity": 1, "price": "1"}],
            }
            [run] = client.send_event("order.created", order).runs
            assert run.status == "pending"
            paid = {"order_id": "o-1", "charge_id": "ch_1", "amount": "1", "currency": "EUR"}
            [routed] = client.send_event("payment.confirmed", paid).runs
            assert (routed.run_id, routed.via) == (run.run_id, "signal")
            with pytest.raises(UnavailableError) as error:
                client.runs.signal(run.run_id, "cancel")
    assert error.value.status_code == 503
    assert error.value.retry_after == 5


def _cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LONGHAUL, *args], cwd=served.cwd, env=served.env, capture_output=True, text=True, timeout=120
    )


def test_cli_sends_from_a_file_watches_to_completion_and_shows(served: Served, tmp_path: Path) -> None:
    data = tmp_path / "event.json"
    data.write_text(json.dumps({"name": "Cli"}))
    sent = _cli(served, "events", "send", "hello", "--data", f"@{data}", "--id", "cli-1", "--tag", "cli")
    assert sent.returncode == 0, sent.stderr
    run_id = json.loads(sent.stdout)["runs"][0]["run_id"]

    watched = _cli(served, "runs", "watch", run_id)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.splitlines()[0] == f"{run_id} completed"
    assert "Hello, Cli!" in watched.stdout
    assert "100%" in watched.stderr  # the progress bar's last frame

    shown = json.loads(_cli(served, "runs", "show", run_id).stdout)
    assert shown["status"] == "completed" and shown["tags"] == ["cli"]
    listed = _cli(served, "runs", "list", "--tag", "cli", "--json")
    assert [run["id"] for run in json.loads(listed.stdout)["runs"]] == [run_id]
    table = _cli(served, "runs", "list", "--tag", "cli")
    assert run_id in table.stdout and "completed" in table.stdout
    [header, row] = [line for line in table.stdout.splitlines() if "event" in line or run_id in line]
    assert [cell.strip() for cell in header.split("┃")][3:5] == ["event", "key"]
    assert [cell.strip() for cell in row.split("│")][3:5] == ["hello", "cli-1"]  # the name, the id sent
    searched = _cli(served, "runs", "list", "--search", run_id, "--json")
    assert [run["id"] for run in json.loads(searched.stdout)["runs"]] == [run_id]


def test_cli_cancel_replay_and_watch_exit_with_the_outcome(served: Served) -> None:
    sent = _cli(served, "events", "send", "hello", "--data", '{"name": "Zed", "wait_seconds": 600}')
    run_id = json.loads(sent.stdout)["runs"][0]["run_id"]
    paused = _cli(served, "runs", "pause", run_id, "--reason", "hold on")
    assert paused.returncode == 0 and json.loads(paused.stdout)["pause_reason"].endswith(": hold on")
    assert json.loads(_cli(served, "runs", "unpause", run_id).stdout)["paused_at"] is None
    assert _cli(served, "runs", "cancel", run_id, "--reason", "sent by mistake").returncode == 0
    watched = _cli(served, "runs", "watch", run_id)
    assert watched.returncode == 3  # cancelled
    key = served.env["LONGHAUL_API_KEY"].split("_")[1]
    assert watched.stdout.strip() == f"{run_id} cancelled: cancelled by key {key} (API): sent by mistake"
    replayed = _cli(served, "runs", "replay", run_id)
    assert replayed.returncode == 0
    assert json.loads(replayed.stdout)["via"] == "replay"
    again = _cli(served, "runs", "cancel", run_id)
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: 409: run '{run_id}' is cancelled already"


def test_cli_reports_bad_input_with_the_field(served: Served) -> None:
    result = _cli(served, "events", "send", "hello", "--data", '{"nam": "x"}')
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: 422:", "  payload.name: Field required",
                                          "  payload.nam: Extra inputs are not permitted"]  # fmt: skip
    bad_cursor = _cli(served, "runs", "list", "--cursor", "nonsense")
    assert bad_cursor.stderr.startswith("error: 422: cursor: ")  # one problem, one line
    raw = _cli(served, "runs", "list", "--cursor", "nonsense", "--json")
    assert json.loads(raw.stdout)["detail"][0]["loc"] == ["query", "cursor"]  # --json: the answer as it came
    unknown = _cli(served, "events", "send", "nope")
    assert unknown.stderr.strip().startswith(
        "error: 404: unknown event 'nope'; known events: cleanup.tenant-due, demo.concurrency, demo.debounce"
    )
    malformed = _cli(served, "events", "send", "hello", "--data", "{oops")
    assert malformed.returncode == 2
    assert malformed.stderr.startswith("--data: Expecting property name")


def test_cli_makes_a_sample_uploads_it_and_watches_the_pipeline_to_the_end(served: Served) -> None:
    sample = _cli(served, "videos", "sample", "clip.mp4", "--seconds", "3", "--height", "480")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.strip() == "clip.mp4 (852x480, 3s)"
    uploaded = _cli(served, "videos", "upload", "clip.mp4", "--video-id", "cli-clip")
    assert uploaded.returncode == 0, uploaded.stderr + uploaded.stdout
    assert "100%" in uploaded.stderr
    accepted, outcome = uploaded.stdout.split("\nrun_", 1)  # the event's answer, then the run's outcome
    run_id = json.loads(accepted)["runs"][0]["run_id"]
    status_line, output = outcome.split("\n", 1)
    assert f"run_{status_line}" == f"{run_id} completed"
    result = json.loads(output)
    assert [r["name"] for r in result["renditions"]] == ["480p"]
    assert result["source"]["container"] == "mp4"
    assert (served.cwd / ".longhaul" / "uploads" / "cli-clip.mp4").is_file()

    # FFmpeg's progress lines, per rendition, in the run's data streams: the CLI and both clients read them.
    listed = _cli(served, "runs", "stream", run_id)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("ffmpeg-480p\t")
    printed = _cli(served, "runs", "stream", run_id, "ffmpeg-480p")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines and all(line.startswith("frame=") and " speed=" in line for line in lines)
    with Client(served.url, api_key=served.key) as client:
        assert [info.name for info in client.runs.streams(run_id)] == ["ffmpeg-480p"]
        chunks = list(client.runs.read_stream(run_id, "ffmpeg-480p"))
        assert [chunk.data for chunk in chunks] == lines
        assert [chunk.data for chunk in client.runs.read_stream(run_id, "ffmpeg-480p", after=1)] == lines[1:]

    async def read_async() -> list[str]:
        async with AsyncClient(served.url, api_key=served.key) as client:
            return [chunk.data async for chunk in client.runs.read_stream(run_id, "ffmpeg-480p")]

    assert asyncio.run(read_async()) == lines


def test_requests_without_a_valid_key_are_refused_and_a_revoked_key_stops_working(served: Served) -> None:
    with Client(served.url) as anonymous, pytest.raises(LonghaulError) as missing:
        anonymous.runs.list()
    assert missing.value.status_code == 401
    assert "an API key is required" in str(missing.value.detail)
    with Client(served.url, api_key="lh_nope_nope") as forged, pytest.raises(LonghaulError) as wrong:
        forged.send_event("hello", {"name": "x"})
    assert wrong.value.status_code == 401

    key = create_key(served.cwd, served.env)
    with Client(served.url, api_key=key) as client:
        client.runs.list()
        listed = _cli(served, "keys", "list", "--tenant", "default").stdout
        key_id = key.split("_")[1]
        assert f"{key_id}  default  tenant  active  tests" in listed
        assert _cli(served, "keys", "revoke", key_id).stdout == f"revoked {key_id}\n"
        # Revoked by another process (the CLI): refused at once, though the API had the key cached.
        with pytest.raises(LonghaulError) as revoked:
            client.runs.list()
    assert revoked.value.status_code == 401
    assert "invalid or revoked" in str(revoked.value.detail)


async def test_an_order_approval_is_listed_and_completed_from_the_cli_and_both_clients(
    served: Served,
) -> None:
    assert _cli(served, "orders", "seed").returncode == 0
    order = {"order_id": f"big-{uuid.uuid4().hex[:6]}", "user_id": "ann",
             "items": [{"product_id": "sku-book", "quantity": 30, "price": "42.50"}]}  # fmt: skip
    with Client(served.url, api_key=served.key) as client:
        [ref] = client.send_event("order.created", order).runs  # 1,275 EUR: above the 1,000 threshold
        for _ in range(300):
            waiting = client.waitpoints.list(status="waiting", run_id=ref.run_id)
            if waiting:
                break
            await asyncio.sleep(0.1)
        [token] = waiting
        assert token.kind == "order.approval" and token.callback_url is not None
    listed = _cli(served, "waitpoints", "list", "--status", "waiting", "--kind", "order.approval")
    assert token.id in listed.stdout and ref.run_id in listed.stdout
    assert token.callback_url not in listed.stdout.replace("\n", "")
    with_urls = _cli(served, "waitpoints", "list", "--status", "waiting", "--urls")
    assert token.callback_url in with_urls.stdout  # on one line: no terminal, a wide table
    bad = _cli(served, "waitpoints", "complete", token.id, "--output", '{"approved": false}')
    assert bad.returncode == 1 and "a rejection needs a reason" in bad.stderr
    done = _cli(
        served, "waitpoints", "complete", token.id, "--output", '{"approved": false, "reason": "fraud check"}'
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    async with AsyncClient(served.url, api_key=served.key) as client:
        run = await client.runs.wait(ref.run_id, timeout=60)
        assert run.output["outcome"] == "cancelled" and run.output["reason"] == "rejected: fraud check"
        assert (await client.waitpoints.get(token.id)).output == {"approved": False, "reason": "fraud check"}
        with pytest.raises(LonghaulError) as again:
            await client.waitpoints.complete(token.id, {"approved": True})
        assert again.value.status_code == 409


def test_runs_are_followed_by_tag_from_the_cli_and_with_an_access_token_from_the_client(
    served: Served,
) -> None:
    minted = _cli(served, "runs", "access-token", "--tag", "follow:1", "--ttl", "600")
    assert minted.returncode == 0, minted.stderr
    printed = json.loads(minted.stdout)  # data on stdout (`| tee` keeps it), the page's address too
    token = printed["token"]
    assert printed["page_url"] == f"{served.url}/examples/realtime.html#tag=follow:1&token={token}"
    follower = subprocess.Popen(
        [LONGHAUL, "runs", "follow", "--tag", "follow:1"],
        cwd=served.cwd, env=served.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with Client(served.url, api_key=served.key) as client:
            sent = {client.send_event("hello", {"name": n}, tags=["follow:1"]).runs[0].run_id for n in "AB"}
        with Client(served.url, api_key=token) as browser:  # the token, as a browser would hold it
            completed = set()
            for run in browser.runs.stream_tagged("follow:1"):
                assert run.input is None  # the public view: no input
                if run.status == RunStatus.COMPLETED:
                    completed.add(run.id)
                if completed >= sent:
                    break
            with pytest.raises(LonghaulError) as refused:
                browser.runs.list()
            assert refused.value.status_code == 401
        lines: list[str] = []
        assert follower.stdout is not None
        while not all(
            any(line.startswith(f"{run_id} hello completed 100%") for line in lines) for run_id in sent
        ):
            lines.append(follower.stdout.readline())
            assert lines[-1], follower.stderr.read() if follower.stderr else "no output"
    finally:
        follower.terminate()
        follower.wait(timeout=30)


def test_alerts_are_added_from_the_cli_and_a_failed_run_reaches_the_webhook(served: Served) -> None:
    with receiver() as received:
        added = _cli(served, "alerts", "add", "--webhook", received.url, "--kind", "run.failed")
        assert added.returncode == 0, added.stderr
        destination = json.loads(added.stdout)
        assert destination["secret"].startswith("whsec_") and destination["kinds"] == ["run.failed"]
        assert destination["id"] in _cli(served, "alerts", "list").stdout
        order = {"order_id": f"bad-{uuid.uuid4().hex[:6]}", "user_id": "ann",
                 "items": [{"product_id": "no-such-thing", "quantity": 1, "price": "1.00"}]}  # fmt: skip
        with Client(served.url, api_key=served.key) as client:
            [ref] = client.send_event("order.created", order).runs
            assert client.runs.wait(ref.run_id, timeout=60).status == RunStatus.FAILED
            for _ in range(300):
                if received.posts:
                    break
                time.sleep(0.1)
            [(_, alert)] = received.posts
            assert alert["type"] == "run.failed" and alert["run"]["id"] == ref.run_id
            assert "unknown product no-such-thing" in alert["run"]["error"]
            assert [d.id for d in client.alerts.list()] == [destination["id"]]
        removed = _cli(served, "alerts", "remove", destination["id"])
        assert removed.returncode == 0 and removed.stdout.strip() == f"removed {destination['id']}"
        assert json.loads(_cli(served, "alerts", "list").stdout) == []


def test_queue_weights_and_pauses_are_set_listed_and_cleared_from_the_cli_and_both_clients(
    served: Served,
) -> None:
    admin = {**served.env, "LONGHAUL_API_KEY": create_key(served.cwd, served.env, "admin")}
    as_admin = Served(served.url, admin, served.cwd, admin["LONGHAUL_API_KEY"])
    set_by_cli = _cli(as_admin, "queues", "weight", "ticket-triage", "acme", "3")
    assert set_by_cli.returncode == 0, set_by_cli.stderr
    assert json.loads(set_by_cli.stdout) == {"queue": "ticket-triage", "key": "acme", "weight": 3.0}
    listed = _cli(as_admin, "queues")
    assert "fair share per tenant; weights acme=3" in listed.stdout
    refused = _cli(served, "queues", "weight", "ticket-triage", "acme", "2")  # a tenant key
    assert refused.returncode == 1 and refused.stderr.startswith("error: 403")
    with Client(served.url, api_key=as_admin.key) as client:
        assert client.set_weight("ticket-triage", "acme/eu", 0.5).weight == 0.5
        weights = next(q.weights for q in client.queues() if q.name == "ticket-triage")
        assert weights == {"acme": 3.0, "acme/eu": 0.5}

    async def clear() -> None:
        async with AsyncClient(served.url, api_key=as_admin.key) as client:
            await client.clear_weight("ticket-triage", "acme/eu")

    asyncio.run(clear())
    assert _cli(as_admin, "queues", "weight", "ticket-triage", "acme", "--clear").returncode == 0
    unknown = _cli(as_admin, "queues", "weight", "nope", "acme", "--clear")
    assert unknown.returncode == 1 and "no queue 'nope'" in unknown.stderr
    assert (
        _cli(as_admin, "queues", "weight", "ticket-triage", "acme").returncode == 2
    )  # no weight, no --clear


def test_tenant_schedules_are_made_listed_changed_and_deleted_from_the_cli_and_both_clients(
    served: Served,
) -> None:
    made = _cli(
        served, "tenant-schedules", "create", "weekly", "--event", "hello", "--data", '{"name": "W"}',
        "--cron", "0 8 * * 1", "--timezone", "Europe/Paris",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["schedule_id"] == "tenant/default/weekly"
    listed = _cli(served, "tenant-schedules")
    assert "weekly" in listed.stdout and "cron 0 8 * * 1 (Europe/Paris)" in listed.stdout
    too_often = _cli(served, "tenant-schedules", "create", "x", "--event", "hello", "--every", "5")
    assert too_often.returncode == 1 and "interval_seconds" in too_often.stderr
    with Client(served.url, api_key=served.key) as client:
        assert client.schedules.update("weekly", paused=True).paused is True
        again = client.schedules.create("weekly", "hello", {"name": "Other"}, cron="0 9 * * *")
        assert (again.payload, again.cron) == ({"name": "W"}, "0 8 * * 1")  # the first
        assert [schedule.id for schedule in client.schedules.list()] == ["weekly"]

    async def in_async() -> None:
        async with AsyncClient(served.url, api_key=served.key) as client:
            changed = await client.schedules.update("weekly", interval_seconds=3600, paused=False)
            assert (changed.cron, changed.interval_seconds, changed.paused) == (None, 3600, False)
            await client.schedules.delete("weekly")

    asyncio.run(in_async())
    gone = _cli(served, "tenant-schedules", "show", "weekly")
    assert gone.returncode == 1 and "no schedule 'weekly'" in gone.stderr
