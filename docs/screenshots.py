"""Regenerate the dashboard's screenshots in docs/ (``make screenshots``, or ``python docs/screenshots.py
[OUT_DIR]``): a dev server, the worker and the API of the shipped catalog, a few real runs (finished and
waiting), a processed video (the run page shown: its three transcodes side by side in the trace, FFmpeg's
progress streams, the runs it started) and the shipped schedules, then Chromium (offline, as the browser
tests drive it) signs in and shoots each page."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.video.ffmpeg import make_sample  # noqa: E402
from longhaul.api import create_app  # noqa: E402
from longhaul.binaries import temporal_cli  # noqa: E402 - after the repository is importable
from longhaul.config import Settings  # noqa: E402
from longhaul.db import Database  # noqa: E402
from longhaul.keys import KeyStore, Role  # noqa: E402
from longhaul.migrations import upgrade  # noqa: E402
from longhaul.server.schedules import sync as sync_schedules  # noqa: E402
from longhaul.server.worker import build_worker  # noqa: E402
from longhaul.storage import RunStore  # noqa: E402
from longhaul.temporal import SEARCH_ATTRIBUTES, connect  # noqa: E402
from tests.apps import serving  # noqa: E402
from tests.browser import offline_page  # noqa: E402
from workflows.catalog import CATALOG  # noqa: E402

PAGES = {"runs": "/ui/runs", "overview": "/ui/overview", "queues": "/ui/queues", "schedules": "/ui/schedules"}
NAMES = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"]


async def shoot(out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="longhaul-screenshots-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", task_queue="screenshots")
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(), search_attributes=SEARCH_ATTRIBUTES
        )
        db = Database(settings.app_database_url)
        await upgrade(db)
        try:
            os.environ["TEMPORAL_ADDRESS"] = env.client.service_client.config.target_host
            client = await connect(settings)
            await sync_schedules(client, CATALOG.schedules(settings), settings)  # as `longhaul dev` does
            app = create_app(settings)
            async with serving(app) as url, build_worker(client, RunStore(db), settings):
                _, key = await KeyStore(db).create("default", "screenshots", Role.ADMIN)
                headers = {"Authorization": f"Bearer {key}"}
                async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
                    await _runs(http)
                    shown = await _video(http, settings)
                    await http.post(  # a tenant's own schedule beside the deployment's
                        "/api/schedules",
                        json={"id": "weekly-report", "event": "hello", "payload": {"name": "Weekly"},
                              "cron": "0 8 * * 1", "timezone": "Europe/Paris"},
                    )  # fmt: skip
                return await _pages(url, key, shown, out)
        finally:
            await db.close()
            await env.shutdown()


async def _runs(http: httpx.AsyncClient) -> None:
    """A few greetings, some still waiting (the others finished when it returns)."""
    for index, name in enumerate(NAMES):
        payload = {"name": name, "wait_seconds": 120 if index % 3 == 0 else 0}
        await http.post(
            "/api/events/hello",
            json={"payload": payload, "tags": [f"team:{index % 2}", f"user:{name.lower()}"]},
        )
    for _ in range(200):
        runs = (await http.get("/api/runs", params={"status": "completed"})).json()["runs"]
        if len(runs) >= 4:
            return
        await asyncio.sleep(0.1)


async def _video(http: httpx.AsyncClient, settings: Settings) -> str:
    """A 1080p sample processed to the end; its run id."""
    sample = settings.upload_root / "demo.mp4"
    sample.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(make_sample, sample, width=1920, height=1080, seconds=6, quiet=(2.0, 3.0))
    payload = {"video_id": "demo", "user_id": "ada", "file_path": "demo.mp4"}
    sent = await http.post("/api/events/video.uploaded", json={"payload": payload, "tags": ["user:ada"]})
    run_id = str(sent.json()["runs"][0]["run_id"])
    for _ in range(1200):
        if (await http.get(f"/api/runs/{run_id}")).json()["status"] == "completed":
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(2)  # its notice and digest runs recorded
    return run_id


async def _pages(url: str, key: str, run_id: str, out: Path) -> list[Path]:
    written = []
    async with offline_page() as offline:
        page = offline.page
        await page.set_viewport_size({"width": 1280, "height": 800})
        await page.goto(f"{url}/ui/signin")
        await page.fill("input[name=key]", key)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/ui/runs")
        for name, path in {**PAGES, "run": f"/ui/runs/{run_id}"}.items():
            await page.goto(f"{url}{path}")
            target = out / f"dashboard-{name}.png"
            await page.screenshot(path=str(target), full_page=True)
            written.append(target)
    return written


if __name__ == "__main__":
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
    directory.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(directory)):
        print(path)
