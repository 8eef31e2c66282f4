"""The video pipeline for real: FFmpeg from the wheel, a real dev server, real SQLite, real files."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import shutil
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.video.ffmpeg import FFMPEG_NICENESS, ffmpeg_exe, image_size, make_sample, probe
from activities.video.models import ThumbnailRequest, TranscodeRequest
from activities.video.processing import VideoActivities
from activities.video.store import VideoStore
from longhaul.config import Settings
from longhaul.models import RunRecord, RunStatus
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker
from longhaul.storage import RunFilter, RunStore
from tests.dispatching import send_started
from tests.pipelines import TEST_CATALOG
from tests.processes import Process, clean_env


@dataclass(frozen=True)
class Sources:
    hd: Path  # 1280x720, 4 s, black and silent from 1.5 s to 2.5 s
    sd: Path  # 854x480, 2 s


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    folder = tmp_path_factory.mktemp("sources")
    return Sources(
        hd=make_sample(folder / "hd.mp4", width=1280, height=720, seconds=4, quiet=(1.5, 2.5)),
        sd=make_sample(folder / "sd.mp4", width=854, height=480, seconds=2, quiet=(0.5, 1.0)),
    )


@pytest.fixture(scope="session")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough at 1080p that a test can act while it is being transcoded."""
    return make_sample(
        tmp_path_factory.mktemp("long") / "long.mp4", width=1920, height=1080, seconds=30, quiet=(5, 6)
    )


def upload(settings: Settings, source: Path, name: str) -> str:
    settings.upload_root.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, settings.upload_root / name)
    return name


@pytest.fixture
async def service(dev_client: Client, store: RunStore, settings: Settings) -> AsyncIterator[RunService]:
    async with build_worker(dev_client, store, settings, TEST_CATALOG):
        yield RunService(dev_client, store, settings, TEST_CATALOG)


async def send_video(
    service: RunService, video_id: str, file_path: str, event_id: str | None = None
) -> RunRecord:
    payload = {"video_id": video_id, "user_id": f"u-{video_id}", "file_path": file_path}
    accepted = await send_started(
        service, "video.uploaded", EventEnvelope(id=event_id, payload=payload), tenant="default"
    )
    return accepted.deliveries[0].run


async def test_one_users_second_video_waits_for_the_first_and_names_the_busy_slot(
    dev_client: Client, store: RunStore, settings: Settings, sources: Sources
) -> None:
    service = RunService(dev_client, store, settings, TEST_CATALOG)  # no worker: the first stays started
    user = f"user-{uuid.uuid4().hex[:6]}"
    runs = []
    for n in range(2):
        payload = {
            "video_id": f"{user}-{n}",
            "user_id": user,
            "file_path": upload(settings, sources.sd, "a.mp4"),
        }
        accepted = await send_started(
            service, "video.uploaded", EventEnvelope(payload=payload), tenant="default"
        )
        runs.append(accepted.deliveries[0].run)
    first, second = [await service.get(run.id, tenant="default") for run in runs]
    assert first.status == RunStatus.QUEUED  # in Temporal
    assert second.status == RunStatus.PENDING
    assert second.pending_reason == f"1 of 1 slots of video-processing/default/user_id={user} busy"
    for run in (first, second):
        await service.cancel(run.id, tenant="default", by="the test")


async def wait_for(store: RunStore, run_id: str, *statuses: RunStatus, limit: float = 120) -> RunRecord:
    for _ in range(int(limit * 10)):
        run = await store.get(run_id)
        assert run is not None
        if run.status in statuses:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} is still {run}")


async def wait_transcoding(store: RunStore, run_id: str) -> RunRecord:
    """Wait until FFmpeg reports real progress on a rendition (live percent in the run record)."""
    for _ in range(600):
        run = await store.get(run_id)
        assert run is not None
        if any(s.group == "transcoding" and 0 < s.percent < 100 for s in run.steps):
            return run
        assert not run.status.terminal, run
        await asyncio.sleep(0.1)
    raise AssertionError("transcoding never reported progress")


async def notices(store: RunStore, event: str) -> list[RunRecord]:
    page = await store.page(RunFilter(tenant="default", workflow="video-notice", event=event))
    return page.runs


def ffmpeg_processes(fragment: str) -> list[int]:
    """Live FFmpeg processes whose command line mentions ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if command.startswith(ffmpeg_exe()) and fragment in command:
                found.append(int(entry.name))
    return found


def partial_files(settings: Settings) -> list[Path]:
    return sorted(settings.media_root.rglob("*.part"))


async def test_video_is_transcoded_thumbnailed_analysed_recorded_and_announced(
    service: RunService, store: RunStore, settings: Settings, sources: Sources
) -> None:
    run = await send_video(service, "v-hd", upload(settings, sources.hd, "hd.mp4"))
    done = await wait_for(store, run.id, RunStatus.COMPLETED, RunStatus.FAILED)
    assert done.status == RunStatus.COMPLETED, done.error
    output = done.output
    video_dir = settings.media_root / "default" / "v-hd"

    assert [r["name"] for r in output["renditions"]] == ["720p", "480p"]
    assert output["skipped"] == ["1080p"]  # never upscaled
    done_states = {
        r["name"]: {"status": "done", "size_bytes": r["size_bytes"], "width": r["width"]}
        for r in output["renditions"]
    }
    assert done.metadata["renditions"] == {"1080p": {"status": "skipped"}, **done_states}
    for rendition in output["renditions"]:
        info = probe(settings.media_root / "default" / rendition["path"])  # it plays
        assert info.height == int(rendition["name"].removesuffix("p"))
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert abs(info.duration - 4) < 0.5
    assert sorted(p.name for p in video_dir.glob("*.mp4")) == ["480p.mp4", "720p.mp4"]

    thumbnails = output["thumbnails"]
    assert [t["timestamp"] for t in thumbnails] == [0.4, 1.2, 2.0, 2.8, 3.6]
    for thumbnail in thumbnails:
        assert image_size(settings.media_root / "default" / thumbnail["path"]) == (1280, 720)

    analysis = output["analysis"]
    assert analysis["scene_changes"] >= 2  # into and out of the black stretch
    [black] = analysis["black_segments"]
    assert black["start"] == pytest.approx(1.5, abs=0.1) and black["end"] == pytest.approx(2.5, abs=0.1)
    [silent] = analysis["silent_segments"]
    assert silent["start"] == pytest.approx(1.5, abs=0.1) and silent["end"] == pytest.approx(2.5, abs=0.1)
    assert -40 < analysis["loudness_lufs"] < 0

    stages = [line.message for line in done.logs]
    for expected in (
        "2% probing",
        "10% transcoding 720p, 480p (skipped 1080p: above the 720p source)",
        "70% 5 thumbnails",
        "90% recording",
        "95% announcing completion",
        "completed",
    ):
        assert expected in stages
    assert [(s.step, s.percent) for s in done.steps] == [("480p", 100), ("720p", 100)]

    stored = await VideoStore(store.db).get("default", "v-hd")
    assert stored is not None and stored.run_id == run.id
    assert [r.name for r in stored.result.renditions] == ["720p", "480p"]

    for _ in range(100):
        if [n for n in await notices(store, "video.processing.completed") if n.status == RunStatus.COMPLETED]:
            break
        await asyncio.sleep(0.1)
    [notice] = await notices(store, "video.processing.completed")
    assert notice.event_id == f"{run.id}.completed"
    assert notice.input["video_id"] == "v-hd" and len(notice.input["renditions"]) == 2
    assert partial_files(settings) == []


async def test_duplicate_upload_of_a_video_is_processed_once_with_the_right_subset(
    service: RunService, store: RunStore, settings: Settings, sources: Sources
) -> None:
    path = upload(settings, sources.sd, "sd.mp4")
    first = await send_video(service, "v-sd", path, event_id="upload-1")
    second = await send_video(service, "v-sd", path, event_id="upload-2")  # another delivery, another id
    assert second.id == first.id
    done = await wait_for(store, first.id, RunStatus.COMPLETED, RunStatus.FAILED)
    assert done.status == RunStatus.COMPLETED, done.error
    assert [r["name"] for r in done.output["renditions"]] == ["480p"]
    assert done.output["skipped"] == ["1080p", "720p"]
    third = await send_video(service, "v-sd", path, event_id="upload-3")  # after it finished
    assert third.id == first.id
    processing = await store.page(RunFilter(tenant="default", workflow="video-processing"))
    assert [r.id for r in processing.runs] == [first.id]


@pytest.mark.parametrize(
    ("contents", "reason"),
    [
        (b"this is not a video" * 100, "not a readable video"),
        (None, "no file 'missing.mp4' in the upload dir"),
    ],
)
async def test_unreadable_input_fails_at_once_and_announces_the_failure(
    service: RunService, store: RunStore, settings: Settings, contents: bytes | None, reason: str
) -> None:
    if contents is not None:
        settings.upload_root.mkdir(parents=True, exist_ok=True)
        (settings.upload_root / "missing.mp4").write_bytes(contents)
    video_id = f"v-bad-{len(reason)}"  # workflow ids are per video: one per case on the shared server
    run = await send_video(service, video_id, "missing.mp4")
    failed = await wait_for(store, run.id, RunStatus.FAILED, RunStatus.COMPLETED, limit=30)
    assert failed.status == RunStatus.FAILED
    assert failed.error is not None and reason in failed.error
    history = [e async for e in service.client.get_workflow_handle(failed.workflow_id).fetch_history_events()]
    assert sum(e.HasField("activity_task_failed_event_attributes") for e in history) == 1  # not retried
    for _ in range(100):
        if await notices(store, "video.processing.failed"):
            break
        await asyncio.sleep(0.1)
    [notice] = await notices(store, "video.processing.failed")
    assert reason in notice.input["reason"]
    assert not (settings.media_root / "default" / video_id).exists()


def niceness(pid: int) -> int:
    """A process's nice value (field 19 of /proc/PID/stat; the command name before it may hold spaces)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


async def test_cancel_mid_transcode_kills_a_niced_ffmpeg_and_leaves_no_half_file(
    service: RunService, store: RunStore, settings: Settings, long_source: Path
) -> None:
    run = await send_video(service, "v-cancel", upload(settings, long_source, "long.mp4"))
    await wait_transcoding(store, run.id)
    running = ffmpeg_processes(str(settings.media_root / "default" / "v-cancel"))
    assert running
    # FFmpeg yields the CPU to the worker, the server and the API that share the box with it.
    assert {niceness(pid) for pid in running} == {niceness(os.getpid()) + FFMPEG_NICENESS}
    await service.cancel(run.id, tenant="default", by="the test")
    cancelled = await wait_for(store, run.id, RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED)
    assert cancelled.status == RunStatus.CANCELLED
    assert ffmpeg_processes(str(settings.media_root / "default" / "v-cancel")) == []
    assert partial_files(settings) == []
    for rendition in (settings.media_root / "default" / "v-cancel").glob("*.mp4"):
        assert abs(probe(rendition).duration - 30) < 0.5  # anything under a final name is complete
    assert await notices(store, "video.processing.failed") == []  # a cancellation is not a failure


async def test_worker_killed_mid_transcode_and_the_run_completes_on_a_second_worker(
    dev_client: Client, store: RunStore, settings: Settings, long_source: Path, tmp_path: Path
) -> None:
    env = clean_env(
        TEMPORAL_ADDRESS=dev_client.service_client.config.target_host,
        LONGHAUL_DATA_DIR=str(settings.data_dir),
        LONGHAUL_TASK_QUEUE=settings.task_queue,
    )
    service = RunService(dev_client, store, settings)  # the product's catalog, as the subprocess has it
    run = await send_video(service, "v-kill", upload(settings, long_source, "long.mp4"))
    first = Process(["worker"], tmp_path, env, tmp_path / "worker-1.log")
    try:
        await first.ready("worker polling", 60)
        await wait_transcoding(store, run.id)
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait()
    finally:
        first.kill()
    video_dir = str(settings.media_root / "default" / "v-kill")
    for _ in range(50):  # FFmpeg dies with its worker (PR_SET_PDEATHSIG)
        if not ffmpeg_processes(video_dir):
            break
        await asyncio.sleep(0.1)
    assert ffmpeg_processes(video_dir) == []

    second = Process(["worker"], tmp_path, env, tmp_path / "worker-2.log")
    try:
        await second.ready("worker polling", 60)
        done = await wait_for(store, run.id, RunStatus.COMPLETED, RunStatus.FAILED, limit=300)
    finally:
        second.stop()
    assert done.status == RunStatus.COMPLETED, done.error
    assert [r["name"] for r in done.output["renditions"]] == ["1080p", "720p", "480p"]
    for rendition in done.output["renditions"]:
        assert abs(probe(settings.media_root / "default" / rendition["path"]).duration - 30) < 0.5
    assert partial_files(settings) == []


async def test_transcode_reuses_a_complete_rendition_and_redoes_a_broken_one(
    store: RunStore, settings: Settings, sources: Sources
) -> None:
    activities = VideoActivities(settings, store, VideoStore(store.db))
    source = settings.upload_root / upload(settings, sources.hd, "hd.mp4")
    request = TranscodeRequest(
        tenant="default", video_id="v-reuse", source=str(source), rendition="480p", height=480,
        source_duration=4.0, has_audio=True,
    )  # fmt: skip
    environment = ActivityEnvironment()
    first = await environment.run(activities.transcode, request)
    target = settings.media_root / "default" / "v-reuse" / "480p.mp4"
    made = target.stat().st_mtime_ns
    again = await environment.run(activities.transcode, request)
    assert again == first
    assert target.stat().st_mtime_ns == made  # not produced again

    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])  # a truncated file is not done
    redone = await environment.run(activities.transcode, request)
    assert redone.duration == pytest.approx(4.0, abs=0.5)
    assert probe(target).height == 480


async def test_a_retry_removes_the_partial_files_of_attempts_that_died(
    store: RunStore, settings: Settings, sources: Sources
) -> None:
    activities = VideoActivities(settings, store, VideoStore(store.db))
    source = settings.upload_root / upload(settings, sources.hd, "hd.mp4")
    out_dir = settings.media_root / "default" / "v-retry"
    out_dir.mkdir(parents=True)
    # What a worker killed mid-write leaves behind: attempt 1's partial thumbnail and rendition.
    (out_dir / ".thumb-0.jpg.1.part").write_bytes(b"half a jpeg")
    (out_dir / ".480p.mp4.1.part").write_bytes(b"half an mp4")
    second = ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2)
    thumbnail = ThumbnailRequest(
        tenant="default", video_id="v-retry", source=str(source), index=0, timestamp=1
    )
    await second.run(activities.thumbnail, thumbnail)
    transcode = TranscodeRequest(
        tenant="default", video_id="v-retry", source=str(source), rendition="480p", height=480,
        source_duration=4.0, has_audio=True,
    )  # fmt: skip
    await second.run(activities.transcode, transcode)
    assert sorted(p.name for p in out_dir.iterdir()) == ["480p.mp4", "thumb-0.jpg"]


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """A real local HTTP server for files in ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_video_given_by_url_is_downloaded_then_processed(
    service: RunService,
    store: RunStore,
    settings: Settings,
    sources: Sources,
    http_server: str,
    tmp_path: Path,
) -> None:
    shutil.copy(sources.sd, tmp_path / "www" / "remote.mp4")
    run = await send_video(service, "v-url", f"{http_server}/remote.mp4")
    done = await wait_for(store, run.id, RunStatus.COMPLETED, RunStatus.FAILED)
    assert done.status == RunStatus.COMPLETED, done.error
    assert [r["name"] for r in done.output["renditions"]] == ["480p"]
    assert (
        settings.media_root / "default" / "v-url" / "source.mp4"
    ).stat().st_size == sources.sd.stat().st_size

    missing = await send_video(service, "v-url-404", f"{http_server}/nope.mp4")
    failed = await wait_for(store, missing.id, RunStatus.FAILED, RunStatus.COMPLETED, limit=30)
    assert failed.error is not None and "HTTP 404" in failed.error
