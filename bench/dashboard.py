"""The dashboard's pages with 20,000 runs in storage against the same pages with 200.

Two app storages (SQLite, as ``longhaul dev`` has it) filled with one tenant's finished and running runs
over the last day; each page is requested through the API application (its lifespan, cookie sign-in,
rendering) from each storage in turn, interleaved. The ratio (small / large) says whether a page slows as
runs pile up: keyset pages should stay near 1; a page that reads every run of the tenant (the search on
part of a business key, the overview's day of runs) falls toward 0.01 as far as its index cannot help.
"""

from __future__ import annotations

import functools
import random
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from bench.harness import Comparison, timed

PAGES = {
    "runs, first page": "/ui/runs",
    "runs, 50th page": None,  # followed by cursor, see _deep_page
    "runs, by status": "/ui/runs?status=failed",
    "runs, by tag": "/ui/runs?tag=bench:7",
    "runs, search": "/ui/runs?q=customer-0042",
    "overview": "/ui/overview",
    "queues": "/ui/queues",
}
STATUSES = ["completed"] * 16 + ["failed", "cancelled", "running", "timed_out"]


async def _fill(settings: Any, count: int) -> None:
    """``count`` runs of the tenant ``default``, created over the last day, with tags and keys."""
    from longhaul.db import Database, utcnow
    from longhaul.migrations import upgrade
    from longhaul.records import RunRow, RunTagRow

    db = Database(settings.app_database_url)
    await upgrade(db)
    now, rng = utcnow(), random.Random(count)
    workflows = ["video-processing", "order-processing", "ticket-triage", "hello"]
    runs, tags = [], []
    for index in range(count):
        created = now - timedelta(seconds=rng.uniform(0, 86_400))
        status = rng.choice(STATUSES)
        started = created + timedelta(seconds=rng.uniform(0.01, 2))
        run_id = f"run_{uuid.UUID(int=rng.getrandbits(128)).hex}"
        workflow = workflows[index % len(workflows)]
        finished = None if status == "running" else started + timedelta(seconds=rng.expovariate(1 / 30))
        runs.append({
            "id": run_id, "tenant": "default", "workflow": workflow, "event": "bench.event",
            "workflow_id": f"{workflow}/default/{run_id}", "event_id": f"evt_{run_id}",
            "business_key": f"customer-{index % 5000:04d}", "generation": 1, "status": status,
            "priority": 3, "progress": 100 if status == "completed" else 40, "input": {"n": index},
            "stage": "done" if status == "completed" else "transcoding 720p", "output": None,
            "error": "boom" if status == "failed" else None, "attempts": 1, "created_at": created,
            "started_at": started, "finished_at": finished, "updated_at": created, "run_metadata": {},
        })  # fmt: skip
        tags.append({"run_id": run_id, "tag": f"bench:{index % 100}"})
    async with db.engine.begin() as conn:
        for start in range(0, count, 1000):
            await conn.execute(insert(RunRow), runs[start : start + 1000])
            await conn.execute(insert(RunTagRow), tags[start : start + 1000])
    await db.close()


async def run(small: int, large: int, repeats: int) -> Comparison:
    from longhaul.api import create_app
    from longhaul.config import Settings

    comparison = Comparison("dashboard", baseline=f"runs, first page @{small}")
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        sizes = {}
        for count in (small, large):
            settings = Settings(data_dir=Path(tmp) / str(count), task_queue="bench", api_dispatcher=False)
            await _fill(settings, count)
            sizes[count] = settings
        clients = {}
        stack = []
        for count, settings in sizes.items():
            app = create_app(settings)
            context = app.router.lifespan_context(app)
            await context.__aenter__()
            stack.append(context)
            _, key = await app.state.keys.create("default", "bench")
            transport = httpx.ASGITransport(app=app)
            clients[count] = httpx.AsyncClient(
                transport=transport, base_url="http://api", cookies={"longhaul_key": key}, timeout=60
            )
        try:
            for _ in range(repeats):
                for page, path in PAGES.items():
                    for count, http in clients.items():
                        target = path or await _deep_page(http, 50)
                        took = await timed(functools.partial(_get, http, target))
                        comparison.add(f"{page} @{count}", took)
        finally:
            for http in clients.values():
                await http.aclose()
            for context in stack:
                await context.__aexit__(None, None, None)
    comparison.notes["ratios (small / large time: 1.0 = no slower with 100x the runs)"] = {
        page: round(comparison.median(f"{page} @{small}") / comparison.median(f"{page} @{large}"), 3)
        for page in PAGES
    }
    comparison.notes["runs"] = {"small": small, "large": large}
    return comparison


async def _get(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert "<html" in response.text


async def _deep_page(http: httpx.AsyncClient, pages: int) -> str:
    """The address of the ``pages``-th page of runs (as far as the runs go), by following "Older runs"."""
    path = "/ui/runs"
    for _ in range(pages - 1):
        text = (await http.get(path)).text
        marker = 'class="more" href="'
        if marker not in text:
            break
        path = text.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
    return path
