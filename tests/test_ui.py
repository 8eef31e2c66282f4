"""The runs dashboard in a real browser (Debian's Chromium, offline): signing in, the runs list with its
filters and pages, a run's page, another tenant's run as not found, and hostile strings shown as text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.storage import RunStore
from starters.api import create_app
from starters.worker import build_worker
from tests.apps import serving, wait_for_status
from tests.browser import OfflinePage, offline_page
from tests.pipelines import TEST_CATALOG

HOSTILE = "<script>window.pwned=1</script><img/src=x/onerror=window.pwned=2>"


@dataclass
class Dashboard:
    url: str
    http: httpx.AsyncClient  # the API with a key of the tenant "default"
    key: str
    other_key: str  # a key of another tenant


@pytest.fixture
async def dashboard(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> AsyncIterator[Dashboard]:
    app = create_app(settings, TEST_CATALOG)
    async with serving(app) as url, build_worker(dev_client, store, settings, TEST_CATALOG):
        _, key = await app.state.keys.create("default", "tests")
        _, other_key = await app.state.keys.create("other-tenant", "tests")
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
            yield Dashboard(url, http, key, other_key)


async def send(
    dashboard: Dashboard, event: str, payload: dict[str, Any], tags: list[str] | None = None
) -> str:
    response = await dashboard.http.post(
        f"/api/events/{event}", json={"payload": payload, "tags": tags or []}
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["run_id"]
    return run_id


async def sign_in(offline: OfflinePage, url: str, key: str, path: str = "/ui/runs") -> None:
    await offline.page.goto(f"{url}{path}")
    await offline.page.fill("input[name=key]", key)
    await offline.page.click("button[type=submit]")
    await offline.page.wait_for_url(f"{url}{path}*")


async def test_signing_in_lists_the_tenants_runs_and_opens_one_with_hostile_strings_as_text(
    dashboard: Dashboard, dev_client: Client
) -> None:
    run_id = await send(dashboard, "hello", {"name": HOSTILE}, tags=["<b>bold</b>"])
    done = await wait_for_status(dashboard.http, run_id, "completed")
    async with offline_page() as offline:
        page = offline.page
        await page.goto(f"{dashboard.url}/ui/runs")
        assert "/ui/signin" in page.url  # not signed in: the sign-in page, then back
        await page.fill("input[name=key]", "lh_wrong_key")
        await page.click("button[type=submit]")
        assert await page.locator(".problem").inner_text() == "That API key is not valid."
        await sign_in(offline, dashboard.url, dashboard.key)
        row = page.locator(f'tr[data-run="{run_id}"]')
        assert await row.locator(".status").inner_text() == "completed"
        assert await row.locator(".tag").inner_text() == "<b>bold</b>"  # shown, not rendered
        await row.locator("a").click()
        await page.wait_for_url(f"{dashboard.url}/ui/runs/{run_id}")
        assert HOSTILE in await page.locator("pre").nth(1).inner_text()  # the input, as text
        assert await page.evaluate("window.pwned") is None  # no script ran
        link = await page.locator("a.temporal").get_attribute("href")
        workflow_path = quote(done["workflow_id"], safe="")
        assert link == f"http://localhost:8233/namespaces/{dev_client.namespace}/workflows/{workflow_path}"
        # Another tenant's key sees none of it.
        await page.click("text=Sign out")
        await sign_in(offline, dashboard.url, dashboard.other_key)
        assert await page.locator(f'tr[data-run="{run_id}"]').count() == 0
        response = await page.goto(f"{dashboard.url}/ui/runs/{run_id}")
        assert response is not None and response.status == 404
        assert f"No run '{run_id}'." in await page.locator(".problem").inner_text()
    assert offline.refused == []


async def test_the_runs_list_filters_and_pages_through_older_runs(dashboard: Dashboard) -> None:
    ids = [
        await send(dashboard, "count.requested", {"steps": 1, "pause_seconds": 0}, ["paged"])
        for _ in range(3)
    ]
    gate = await send(dashboard, "gate.requested", {"gate": "shut"}, ["paged"])
    for run_id in ids:
        await wait_for_status(dashboard.http, run_id, "completed")
    await wait_for_status(dashboard.http, gate, "failed")
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, "/ui/runs?tag=paged&workflow=count&limit=2")
        first = await page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
        await page.click("a.more")
        second = await page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
        assert first + second == ids[::-1]  # newest first, each once
        await page.goto(f"{dashboard.url}/ui/runs")
        await page.select_option("select[name=status]", "failed")
        await page.fill("input[name=tag]", "paged")
        await page.click("button[type=submit]")
        await page.wait_for_url("**status=failed**")
        failed = await page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
        assert failed == [gate]
    async with httpx.AsyncClient(base_url=dashboard.url, cookies={"longhaul_key": dashboard.key}) as browser:
        bad = await browser.get("/ui/runs", params={"status": "sleeping", "limit": "0"})
        assert bad.status_code == 422  # the API's answer, naming the fields
        assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("query", "status"), ("query", "limit")}
        # The sign-in form sends nobody to another site afterwards.
        signed = await browser.post(
            "/ui/signin", content=f"key={dashboard.key}&next=https://evil.example/", follow_redirects=False,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/runs"
