"""The runs dashboard in a real browser (Debian's Chromium, offline): signing in, the runs list with its
filters, search and pages, live progress without a reload, a run's page with its steps from the Temporal
history and its buttons, queues, schedules, the overview chart, another tenant's run as not found, and
hostile strings shown as text everywhere."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from longhaul.api import create_app
from longhaul.api.codec import codec_url
from longhaul.api.ui.overview import CHART_TOP, _window
from longhaul.binaries import temporal_cli
from longhaul.config import Settings
from longhaul.keys import KeyStore, Role
from longhaul.models import RunStatus
from longhaul.server.schedules import schedule_id, sync
from longhaul.server.worker import build_worker
from longhaul.signing import signing_key
from longhaul.storage import RunStore
from longhaul.temporal import SEARCH_ATTRIBUTES, connect
from longhaul.workflows.maintenance import ReconcileInput, ReconcileWorkflow
from longhaul.workflows.schedules import ScheduleDecl
from tests.apps import serving, wait_for_status
from tests.browser import OfflinePage, offline_page
from tests.pipelines import OPEN_GATES, TEST_CATALOG
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>window.pwned=1</script><img/src=x/onerror=window.pwned=2>"
FINISHED = ("completed", "failed", "cancelled")


@dataclass
class Dashboard:
    url: str
    http: httpx.AsyncClient  # the API with an admin key of the tenant "default"
    key: str
    other_key: str  # a key of another tenant


@pytest.fixture
async def dashboard(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> AsyncIterator[Dashboard]:
    app = create_app(settings, TEST_CATALOG)
    async with serving(app) as url, build_worker(dev_client, store, settings, TEST_CATALOG):
        _, key = await app.state.keys.create("default", "tests", role=Role.ADMIN)
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


async def shown_runs(offline: OfflinePage) -> list[str]:
    ids: list[str] = await offline.page.locator("tbody tr[data-run]").evaluate_all(
        "rows => rows.map(r => r.dataset.run)"
    )
    return ids


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
        assert HOSTILE in await page.locator("pre.input").inner_text()  # the input, as text
        assert HOSTILE in await page.locator("table.timeline").inner_text()  # the step's input too
        assert await page.evaluate("window.pwned") is None  # no script ran
        link = await page.locator("a.temporal").get_attribute("href")
        workflow_path = quote(done["workflow_id"], safe="")
        assert link == f"http://localhost:8233/namespaces/{dev_client.namespace}/workflows/{workflow_path}"
        # Another tenant's key sees none of it.
        await page.click("text=Sign out")
        await sign_in(offline, dashboard.url, dashboard.other_key)
        assert run_id not in await shown_runs(offline)
        response = await page.goto(f"{dashboard.url}/ui/runs/{run_id}")
        assert response is not None and response.status == 404
        assert f"No run '{run_id}'." in await page.locator(".problem").inner_text()
        live = await page.goto(f"{dashboard.url}/ui/live?run={run_id}")  # its stream: nothing
        assert live is not None and "event: run" not in await live.text()
    assert offline.refused == []


async def test_the_runs_list_filters_searches_and_pages_through_older_runs(dashboard: Dashboard) -> None:
    ids = [
        await send(dashboard, "count.requested", {"steps": 1, "pause_seconds": 0}, ["paged"])
        for _ in range(3)
    ]
    gate = await send(dashboard, "gate.requested", {"gate": "shut"}, ["paged"])
    keyed = await send(dashboard, "approval.requested", {"document_id": "Invoice-2026-0042", "title": "t"})
    for run_id in ids:
        await wait_for_status(dashboard.http, run_id, "completed")
    await wait_for_status(dashboard.http, gate, "failed")
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, "/ui/runs?tag=paged&workflow=count&limit=2")
        first = await shown_runs(offline)
        await page.click("a.more")
        second = await shown_runs(offline)
        assert first + second == ids[::-1]  # newest first, each once
        await page.click("a.first")
        assert await shown_runs(offline) == first
        await page.goto(f"{dashboard.url}/ui/runs")
        await page.select_option("select[name=status]", "failed")
        await page.fill("input[name=tag]", "paged")
        await page.click("form.filters button")
        await page.wait_for_url("**status=failed**")
        assert await shown_runs(offline) == [gate]
        await page.goto(f"{dashboard.url}/ui/runs")
        await page.fill("input[name=q]", "invoice-2026")  # part of the business key, any case
        await page.click("form.filters button")
        await page.wait_for_url("**q=invoice-2026**")
        assert await shown_runs(offline) == [keyed]
        # Bad filters: the API's refusal, as a page naming each field.
        bad = await page.goto(f"{dashboard.url}/ui/runs?status=sleeping&limit=0&tag=a%20b&colour=red")
        assert bad is not None and bad.status == 422
        problem = await page.locator(".problem").inner_text()
        for field in ("query.status", "query.limit", "query.tag", "query.colour"):
            assert field in problem
        naive = await page.goto(f"{dashboard.url}/ui/runs?created_after=2020-01-01T00:00&q=invoice-2026")
        assert naive is not None and naive.status == 200  # a time without a zone is UTC
        assert await shown_runs(offline) == [keyed]
        bad_live = await page.goto(f"{dashboard.url}/ui/live?newer=status%3Dsleeping")
        assert bad_live is not None and bad_live.status == 422
        assert "query.newer.status" in await page.locator(".problem").inner_text()
        bad_cursor = await page.goto(f"{dashboard.url}/ui/runs?cursor=nonsense")
        assert bad_cursor is not None and bad_cursor.status == 422
        assert "query.cursor" in await page.locator(".problem").inner_text()
    async with httpx.AsyncClient(base_url=dashboard.url, cookies={"longhaul_key": dashboard.key}) as browser:
        api = await dashboard.http.get("/api/runs", params={"status": "sleeping", "limit": "0"})
        assert api.status_code == 422  # the API answers the same query the same way
        assert {tuple(e["loc"]) for e in api.json()["detail"]} == {("query", "status"), ("query", "limit")}
        found = await dashboard.http.get("/api/runs", params={"q": "INVOICE-2026-0042"})
        assert [run["id"] for run in found.json()["runs"]] == [keyed]
        # The sign-in form sends nobody to another site afterwards.
        signed = await browser.post(
            "/ui/signin", content=f"key={dashboard.key}&next=https://evil.example/", follow_redirects=False,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": dashboard.url},
        )  # fmt: skip
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/runs"
        # A form posted from another site (a forged cancel) is refused, the run untouched.
        forged = await browser.post(f"/ui/runs/{keyed}/cancel", headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403
    assert (await dashboard.http.get(f"/api/runs/{keyed}")).json()["status"] == "running"


async def test_progress_advances_live_to_completed_without_a_reload_on_the_list_and_the_run_page(
    dashboard: Dashboard,
) -> None:
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key)
        slow = await send(dashboard, "count.requested", {"steps": 6, "pause_seconds": 1.0})
        await page.goto(f"{dashboard.url}/ui/runs")
        await page.evaluate("window.notReloaded = true")
        row = page.locator(f'tr[data-run="{slow}"]')
        await page.wait_for_function(
            f"""() => Number(document.querySelector('tr[data-run="{slow}"] progress').value) > 0"""
        )
        assert "step" in await row.locator(".stage").inner_text()
        # A run sent after the page was drawn is counted on it, live; the link shows it.
        assert await page.locator("p.newer").is_hidden()
        later = await send(dashboard, "hello", {"name": "Later"})
        newer = page.locator("p.newer a")
        await newer.wait_for()
        assert await newer.inner_text() == "2 newer runs — show"  # hello starts two workflows here
        assert await page.evaluate("window.notReloaded") is True
        await newer.click()
        await page.wait_for_selector(f'tr[data-run="{later}"]')
        await page.goto(f"{dashboard.url}/ui/runs/{slow}")
        await page.evaluate("window.notReloaded = true")
        seen = set()
        while (status := await page.locator("#run .status").inner_text()) != "completed":
            assert status in ("queued", "running"), status
            seen.add(await page.locator("#run progress").get_attribute("value"))
            await page.wait_for_timeout(150)
        assert len(seen) >= 2  # it moved while watched
        assert await page.evaluate("window.notReloaded") is True  # no reload: the page updated itself
        await page.wait_for_selector("pre.output")  # and fetched the finished run's output in place
        assert await page.locator("pre.output").inner_text() == "6"
        assert await page.evaluate("window.notReloaded") is True
    assert offline.refused == []


async def test_a_run_is_paused_unpaused_cancelled_and_its_waitpoint_completed_from_its_page(
    dashboard: Dashboard,
) -> None:
    waiting = await send(dashboard, "approval.requested", {"document_id": "doc-1", "title": HOSTILE})
    review = await send(dashboard, "review.asked", {"document_id": "doc-2", "timeout_seconds": 120})
    await wait_for_status(dashboard.http, waiting, "running")
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{waiting}")
        await page.click("button[name=pause]")  # started: paused in Temporal
        assert "Paused" in await page.locator(".done").inner_text()
        assert "paused by key" in await page.locator("dd.paused-why").inner_text()
        await page.click("button[name=unpause]")
        assert "Unpaused" in await page.locator(".done").inner_text()
        assert await page.locator("dd.paused-why").count() == 0
        await page.click("button[name=cancel]")
        assert "Cancellation requested" in await page.locator(".done").inner_text()
        await wait_for_status(dashboard.http, waiting, "cancelled")
        await page.goto(f"{dashboard.url}/ui/runs/{waiting}")
        assert await page.locator("button[name=cancel]").count() == 0  # nothing left to cancel

        # A waitpoint: bad output is the API's 422 naming the field; good output completes it.
        await wait_for_status(dashboard.http, review, "running")
        await page.goto(f"{dashboard.url}/ui/runs/{review}")
        await page.wait_for_selector("form.complete")
        await page.fill("textarea[name=output]", '{"approved": "perhaps"}')
        await page.click("button[name=complete]")
        assert "output.approved" in await page.locator(".problem").inner_text()
        await page.go_back()
        await page.fill("textarea[name=output]", '{"approved": true, "reason": "fine"}')
        await page.click("button[name=complete]")
        assert "completed" in await page.locator(".done").inner_text()
        done = await wait_for_status(dashboard.http, review, "completed")
        assert done["output"]["rounds"][0]["verdict"] == {"approved": True, "reason": "fine"}
        await page.goto(f"{dashboard.url}/ui/runs/{review}")
        kinds = await page.locator("tr.step").evaluate_all("rows => rows.map(r => r.dataset.kind)")
        assert {"workflow", "local_activity", "signal", "timer"} <= set(kinds)
        assert await page.evaluate("window.pwned") is None
    assert offline.refused == []


async def test_a_failed_runs_steps_show_its_failure_and_it_is_replayed_and_resumed_from_its_page(
    dashboard: Dashboard,
) -> None:
    gate = await send(dashboard, "gate.requested", {"gate": "ui-gate"})
    await wait_for_status(dashboard.http, gate, "failed")
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{gate}")
        # The failed run's steps come from its Temporal history: the activity, its failure and stack.
        step = page.locator('tr.step[data-kind="activity"]', has_text="pass_gate")
        assert await step.get_attribute("data-status") == "failed"
        assert "gate ui-gate is closed" in await step.locator(".problem").inner_text()
        stack = await step.locator("pre.stack").text_content()  # folded away: its text, not shown
        assert "pass_gate" in (stack or "")
        assert '"ui-gate"' in (await step.locator("details pre").first.text_content() or "")
        steps = (await dashboard.http.get(f"/api/runs/{gate}/timeline")).json()["steps"]  # the API's
        assert [(s["kind"], s["name"], s["status"]) for s in steps if not s["bookkeeping"]] == [
            ("workflow", "gate", "failed"), ("activity", "pass_gate", "failed"),
        ]  # fmt: skip
        OPEN_GATES.add("ui-gate")
        try:
            await page.click("button[name=replay]")
            await page.wait_for_url("**/ui/runs/*done=Replay*")
            replay_id = page.url.split("/ui/runs/")[1].split("?")[0]
            assert replay_id != gate
            assert (await wait_for_status(dashboard.http, replay_id, "completed"))["replay_of"] == gate
            await page.goto(f"{dashboard.url}/ui/runs/{gate}")
            assert replay_id in await page.locator("ul.related").inner_text()
            await page.click("button[name=resume]")  # the gate is open now: from the failed step
            assert "Resumed" in await page.locator(".done").inner_text()
            await wait_for_status(dashboard.http, gate, "completed")
        finally:
            OPEN_GATES.discard("ui-gate")

    assert offline.refused == []


async def test_queues_schedules_and_the_overview_chart(  # noqa: PLR0915 - one walk through three pages
    dashboard: Dashboard, dev_client: Client, settings: Settings
) -> None:
    counted = await send(dashboard, "count.requested", {"steps": 1, "pause_seconds": 0})
    gate = await send(dashboard, "gate.requested", {"gate": "shut"})
    busy = [await send(dashboard, "solo.work", {"key": "k", "seconds": 30}) for _ in range(2)]
    await wait_for_status(dashboard.http, gate, "failed")
    await wait_for_status(dashboard.http, counted, "completed")
    await wait_for_status(dashboard.http, busy[0], "running")
    name = f"ui-{uuid.uuid4().hex[:6]}"
    hourly = ScheduleDecl(name, ReconcileWorkflow, ReconcileInput(), every=timedelta(hours=1))
    await sync(dev_client, [hourly], settings)
    sid = schedule_id(name)
    try:
        async with offline_page() as offline:
            page = offline.page
            await sign_in(offline, dashboard.url, dashboard.key, "/ui/overview")
            hour = page.locator('[data-window="hour"]')
            assert int(await hour.locator(".total").inner_text()) >= 4
            assert await hour.locator('[data-status-count="failed"]').inner_text() == "1"
            rate = await hour.locator(".failure-rate").inner_text()
            assert rate == "50.0%"  # of the 2 finished (the counted one, the gate): 1 failed
            assert await hour.locator("svg.chart rect").count() >= 2  # bars, stacked by status
            assert await page.locator('tr[data-workflow="count"] .p50').inner_text() != ""

            await page.goto(f"{dashboard.url}/ui/queues")
            solo = page.locator('tr[data-queue="solo"]')
            assert await solo.locator(".running").inner_text() == "1"
            assert await solo.locator(".pending").inner_text() == "1"
            assert "at most 1 at once per key" in await solo.inner_text()

            await page.goto(f"{dashboard.url}/ui/schedules")  # an admin key: schedules and buttons
            row = page.locator(f'tr[data-schedule="{sid}"]')
            assert "reconcile-runs" in await row.inner_text()
            await row.locator("button[name=pause]").click()
            assert f"{sid}: pause done." in await page.locator(".done").inner_text()
            assert (await dev_client.get_schedule_handle(sid).describe()).schedule.state.paused
            await page.locator(f'tr[data-schedule="{sid}"] button[name=unpause]').click()
            assert not (await dev_client.get_schedule_handle(sid).describe()).schedule.state.paused
            await page.locator(f'tr[data-schedule="{sid}"] button[name=trigger]').click()
            assert f"{sid}: trigger done." in await page.locator(".done").inner_text()
            for _ in range(100):
                if (await dev_client.get_schedule_handle(sid).describe()).info.recent_actions:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the trigger started nothing")
            await page.click("text=Sign out")
            await sign_in(offline, dashboard.url, dashboard.other_key, "/ui/schedules")
            assert "Your schedules" in await page.locator("main").inner_text()
            assert await page.locator("#declared").count() == 0  # the deployment's: admin keys only
            assert await page.locator("tr[data-schedule]").count() == 0
        async with httpx.AsyncClient(
            base_url=dashboard.url, cookies={"longhaul_key": dashboard.other_key}
        ) as t:
            refused = await t.post(f"/ui/schedules/{sid}/pause", headers={"Origin": dashboard.url})
            assert refused.status_code == 403 and "admin key" in refused.text
        assert offline.refused == []
    finally:
        await sync(dev_client, [], settings)


async def test_queues_are_paused_resumed_limited_and_weighted_from_the_queues_page(
    dashboard: Dashboard,
) -> None:
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, "/ui/queues")  # an admin key
        fair = page.locator('tr[data-queue="fair"]')
        await fair.locator("form.pause input[name=key]").fill("acme")
        await fair.locator("form.pause input[name=reason]").fill("import")
        await fair.locator("button[name=pause]").click()
        assert "fair for acme: paused." in await page.locator(".done").inner_text()
        held = page.locator('tr[data-queue="fair"] .tag.paused')
        assert "paused for acme: import" in await held.inner_text()
        await page.locator('tr[data-queue="fair"] button[name=resume]').click()
        assert await held.count() == 0

        await page.locator('tr[data-queue="fair"] form.weight input[name=key]').fill("acme")
        await page.locator('tr[data-queue="fair"] form.weight input[name=weight]').fill("3")
        await page.locator('tr[data-queue="fair"] button[name=weight]').click()
        assert "acme weight 3" in await page.locator('tr[data-queue="fair"] .tag.weight').inner_text()
        await page.locator('tr[data-queue="fair"] button[name=clear-weight]').click()
        assert await page.locator('tr[data-queue="fair"] .tag.weight').count() == 0
        assert await page.locator('tr[data-queue="limited-work"] form.weight').count() == 0  # not fair

        limited = page.locator('tr[data-queue="limited-work"]')
        await limited.locator("form.limit input[name=limit]").fill("0")
        await limited.locator("button[name=limit]").click()
        assert "limit" in await page.locator(".problem").inner_text()  # the API's 422, naming the field
        await page.goto(f"{dashboard.url}/ui/queues")
        await page.locator('tr[data-queue="limited-work"] form.limit input[name=limit]').fill("3")
        await page.locator('tr[data-queue="limited-work"] button[name=limit]').click()
        shown = page.locator('tr[data-queue="limited-work"] .tag.limit')
        assert "limited-work limit 3" in await shown.inner_text()
        await page.locator('tr[data-queue="limited-work"] button[name=clear-limit]').click()
        assert await shown.count() == 0

        await page.click("text=Sign out")  # a tenant key: its own runs' pause, nothing else
        await sign_in(offline, dashboard.url, dashboard.other_key, "/ui/queues")
        assert await page.locator("form.limit, form.weight").count() == 0
        await page.locator('tr[data-queue="fair"] button[name=pause]').click()
        assert "fair for other-tenant: paused." in await page.locator(".done").inner_text()
        await page.locator('tr[data-queue="fair"] button[name=resume]').click()
        assert await page.locator('tr[data-queue="fair"] .tag.paused').count() == 0
    async with httpx.AsyncClient(base_url=dashboard.url, cookies={"longhaul_key": dashboard.other_key}) as t:
        forged = await t.post(
            "/ui/queues/fair/limit", data={"scope": "fair", "limit": "9"}, headers={"Origin": dashboard.url}
        )
        assert forged.status_code == 403 and "admin key" in forged.text
    assert offline.refused == []


async def test_a_tenant_makes_edits_runs_and_deletes_its_own_schedule_on_the_schedules_page(
    dashboard: Dashboard,
) -> None:
    as_tenant = {"Authorization": f"Bearer {dashboard.other_key}"}
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.other_key, "/ui/schedules")  # a tenant key
        form = page.locator("form.schedule-form")
        await form.locator("input[name=id]").fill("nightly")
        await form.locator("select[name=event]").select_option("hello")
        await form.locator("textarea[name=payload]").fill('{"name": "From the page"}')
        await form.locator("input[name=cron]").fill("0 3 * * *")
        await form.locator("input[name=timezone]").fill("Europe/Paris")
        await page.click("button[name=create]")
        assert "nightly: created." in await page.locator(".done").inner_text()
        row = page.locator('tr[data-own="nightly"]')
        assert "0 3 * * * (Europe/Paris)" in await row.inner_text()
        assert await row.locator("time").count() == 3  # its next three firings

        # Bad input is the API's 422, naming the field; nothing is made.
        await form.locator("input[name=id]").fill("broken")
        await form.locator("textarea[name=payload]").fill("{nope")
        await page.click("button[name=create]")
        assert "payload" in await page.locator(".problem").inner_text()
        await page.goto(f"{dashboard.url}/ui/schedules")
        assert await page.locator('tr[data-own="broken"]').count() == 0

        await page.click('tr[data-own="nightly"] a:has-text("Edit")')
        edit = page.locator("form.schedule-form")
        await edit.locator("input[name=cron]").fill("")
        await edit.locator("input[name=interval_seconds]").fill("3600")
        await page.click("button[name=save]")
        assert "Saved." in await page.locator(".done").inner_text()
        assert await page.locator("input[name=interval_seconds]").input_value() == "3600"
        await page.click("button[name=trigger]")
        assert "nightly: trigger done." in await page.locator(".done").inner_text()
        for _ in range(200):
            listed = await dashboard.http.get(
                "/api/runs", params={"tag": "schedule:nightly", "workflow": "hello"}, headers=as_tenant
            )
            if [run["status"] for run in listed.json()["runs"]] == ["completed"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the schedule's run did not complete: {listed.text}")
        await page.goto(f"{dashboard.url}/ui/schedules/nightly")
        assert await page.locator('#schedule a[href^="/ui/runs/"]').count() == 2  # hello and its audit
        await page.click("button[name=delete]")
        assert "nightly: deleted." in await page.locator(".done").inner_text()
        assert await page.locator("tr[data-own]").count() == 0
    assert offline.refused == []


async def test_the_temporal_ui_link_opens_the_workflow_and_the_temporal_ui_decodes_its_payloads(
    store: RunStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dev server with its Web UI, started as ``longhaul dev`` starts it: the codec endpoint is the
    API's signed URL, so the UI decodes encrypted payloads without sending any credential."""
    api_port, ui_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    encrypted = settings.model_copy(
        update={
            "payload_keys": {"k1": base64.b64encode(os.urandom(32)).decode()},
            "temporal_ui_url": f"http://localhost:{ui_port}",
            "codec_cors_origins": [f"http://localhost:{ui_port}"],
        }
    )
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), ui=True, ui_port=ui_port,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--ui-codec-endpoint", codec_url(api_url, signing_key(encrypted))],
    )  # fmt: skip
    try:
        monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
        client = await connect(encrypted)
        app = create_app(encrypted, TEST_CATALOG)
        async with serving(app, api_port), build_worker(client, store, encrypted, TEST_CATALOG):
            _, key = await KeyStore(store.db).create("default", "tests")
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=headers) as http:
                sent = await http.post("/api/events/hello", json={"payload": {"name": "Zephyrine"}})
                run_id = sent.json()["runs"][0]["run_id"]
                done = await wait_for_status(http, run_id, "completed")
                forged = await http.post("/codec/signed/forged/decode", json={"payloads": []})
                assert forged.status_code == 403
            async with offline_page() as offline:
                page = offline.page
                await sign_in(offline, api_url, key, f"/ui/runs/{run_id}")
                # The dashboard decodes the history for its tenant's user.
                assert "Zephyrine" in (await page.locator("table.timeline").text_content() or "")
                async with page.context.expect_page() as opened:
                    await page.click("a.temporal")
                temporal = await opened.value
                await temporal.wait_for_load_state()
                assert temporal.url.startswith(f"http://localhost:{ui_port}/namespaces/default/workflows/")
                # The Temporal UI's own page of the workflow, its input decoded through the codec URL.
                await temporal.get_by_text(done["workflow_id"]).first.wait_for(timeout=30_000)
                await temporal.get_by_text("Zephyrine").first.wait_for(timeout=30_000)
                # What Temporal stores is ciphertext: without the codec the name is nowhere.
                history = [
                    event.SerializeToString()
                    async for event in env.client.get_workflow_handle(
                        done["workflow_id"]
                    ).fetch_history_events()
                ]
                assert not any(b"Zephyrine" in event for event in history)
    finally:
        await env.shutdown()


def test_the_screenshot_command_writes_each_main_page(tmp_path: Path) -> None:
    """``make screenshots`` keeps working: it writes a PNG of each main page (here into a temp dir)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LONGHAUL_"))}
    result = subprocess.run(
        [sys.executable, "docs/screenshots.py", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
        timeout=240, env=clean,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("runs", "run", "overview", "queues", "schedules"):
        shot = tmp_path / f"dashboard-{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


async def test_a_runs_page_still_shows_its_record_while_temporal_is_down(
    store: RunStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")  # nothing listens there
    app = create_app(settings, TEST_CATALOG)
    async with serving(app) as url:
        _, key = await KeyStore(store.db).create("default", "tests")
        record, _ = await store.adopt(
            run_id="run_down", tenant="default", workflow="hello", workflow_id="hello/default/e-down",
            event="hello", event_id="e-down", input={"name": HOSTILE},
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=url, cookies={"longhaul_key": key}, timeout=30) as browser:
            shown = await browser.get(f"/ui/runs/{record.id}")
            assert shown.status_code == 200
            assert (
                "Temporal is unavailable" in shown.text
                and "the steps show again when it is back" in shown.text
            )
            assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in shown.text  # the input, escaped
            api = await browser.get(
                f"/api/runs/{record.id}/timeline", headers={"Authorization": f"Bearer {key}"}
            )
            assert api.status_code == 503 and api.headers["retry-after"]


def test_the_overview_chart_keeps_its_bars_below_the_peak_label_and_dates_the_day() -> None:
    start = datetime(2026, 12, 2, 14, tzinfo=UTC)
    counted = [(23, RunStatus.COMPLETED, 5), (23, RunStatus.FAILED, 5), (0, RunStatus.COMPLETED, 1)]
    day = _window("day", counted, start, timedelta(hours=1), 24, "%b %d, %H:%M")
    tallest = day.bars[23]
    assert min(segment.y for segment in tallest.segments) == CHART_TOP  # the red segment ends below it
    assert [s.status for s in tallest.segments] == ["completed", "failed"] and day.peak == 10
    assert day.bars[0].label == "Dec 02, 14:00"  # the axis says which day the first hour is of


async def test_a_failed_run_that_cannot_resume_offers_no_resume_and_says_why(dashboard: Dashboard) -> None:
    run_id = await send(dashboard, "resume.asked", {"key": f"k-{uuid.uuid4().hex[:8]}", "compensate": True})
    await wait_for_status(dashboard.http, run_id, "failed")
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{run_id}")
        assert await page.locator("button[name=resume]").count() == 0  # it would be refused (409)
        refused = await page.locator(".resume-refused").inner_text()
        assert "steps ran after the failure (tests.record_step)" in refused and "replay the run" in refused
        assert await page.locator("button[name=replay]").count() == 1
    assert offline.refused == []


async def test_a_runs_steps_are_bars_on_one_time_axis_parallel_side_by_side_and_a_bar_opens_its_step(
    dashboard: Dashboard,
) -> None:
    fanned = await send(dashboard, "fan.out", {"key": f"trace-{uuid.uuid4().hex[:6]}"})
    await wait_for_status(dashboard.http, fanned, "completed", limit=60)
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{fanned}")
        lanes = page.locator(".trace .lane.activity")
        assert await lanes.count() == 3  # the two at once, the retried one
        spans = [await _span(lanes.nth(i).locator("a.bar")) for i in range(2)]
        assert spans[1][0] < spans[0][0] + spans[0][1]  # the second began before the first ended
        retried = lanes.nth(2)
        assert "2 attempts" in await retried.inner_text()
        assert await retried.locator(".retrying").count() == 1  # its first attempt and the backoff
        assert await page.locator(".trace .lane.timer").count() == 1
        assert await page.locator(".trace .lane.bookkeeping").count() == 0
        assert "show them" in await page.locator(".trace-note").inner_text()

        await retried.locator("a.bar").click()  # opens that step's input and result in the table
        row = page.locator("tr.step:target")
        assert "flaky_once" in await row.inner_text()
        assert await row.locator("details[open]").count() >= 1
        await page.click("text=show them")
        assert await page.locator(".trace .lane.bookkeeping").count() >= 1

        await page.goto(f"{dashboard.url}/ui/runs?workflow=fan-out")  # relative times and durations
        listed = page.locator(f'tr[data-run="{fanned}"]')
        assert (await listed.locator("time.ago").inner_text()).endswith(" ago")
        assert await listed.locator("td.took").inner_text() != ""
    assert offline.refused == []


async def _span(bar: Any) -> tuple[float, float]:
    """A trace bar's left and width, in percent of the axis."""
    style = str(await bar.get_attribute("style")).replace("%", "")
    values = {
        key.strip(): float(value) for key, value in (p.split(":") for p in style.split(";") if ":" in p)
    }
    return values["left"], values["width"]


async def test_a_parents_page_lists_its_child_runs_and_a_childs_page_links_back(dashboard: Dashboard) -> None:
    parent = await send(
        dashboard, "parent.asked", {"key": "family", "mode": "batch", "children": 2, "seconds": 0}
    )
    await wait_for_status(dashboard.http, parent, "completed", limit=60)
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{parent}")
        children = page.locator("ul.related li")
        assert await children.count() == 2
        assert "child, waited for" in await children.nth(0).inner_text()
        assert "child-work" in await children.nth(0).inner_text()
        await children.nth(0).locator("a").click()
        await page.wait_for_selector("dd.parent")
        await page.locator("dd.parent a").click()
        await page.wait_for_selector("ul.related")
        assert page.url.endswith(f"/ui/runs/{parent}")
    assert offline.refused == []


async def test_a_runs_data_stream_shows_live_on_its_page_as_it_is_written(dashboard: Dashboard) -> None:
    run_id = await send(dashboard, "stream.asked", {"key": "page", "lines": 8, "pause": 0.5})
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{run_id}")
        stream = page.locator('pre.stream[data-stream="lines"]')  # found while the run writes it
        await stream.wait_for(timeout=15_000)
        await page.wait_for_function(
            "() => document.querySelector('pre.stream').textContent.includes('line 3')", timeout=15_000
        )
        still = (await dashboard.http.get(f"/api/runs/{run_id}")).json()["status"]
        assert still == "running"  # shown as written, before the run ended
        await page.wait_for_function(
            "() => document.querySelector('pre.stream').textContent.includes('line 8')", timeout=15_000
        )
        lines = (await page.locator("pre.stream").first.inner_text()).split()
        assert [f"{a} {b}" for a, b in zip(lines[::2], lines[1::2], strict=True)] == [
            f"line {n}" for n in range(1, 9)
        ]
    assert offline.refused == []


async def test_a_yes_or_no_waitpoint_is_approved_with_one_click(dashboard: Dashboard) -> None:
    review = await send(dashboard, "review.asked", {"document_id": "doc-yes", "timeout_seconds": 120})
    await wait_for_status(dashboard.http, review, "running")
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, f"/ui/runs/{review}")
        await page.wait_for_selector("button[name=approve]")
        await page.click("button[name=approve]")
        assert "completed" in await page.locator(".done").inner_text()
    done = await wait_for_status(dashboard.http, review, "completed")
    assert done["output"]["rounds"][0]["verdict"] == {"approved": True, "reason": None}
    assert offline.refused == []


async def test_an_events_test_page_sends_it_from_a_form_of_its_schema_and_opens_the_run(
    dashboard: Dashboard,
) -> None:
    async with offline_page() as offline:
        page = offline.page
        await sign_in(offline, dashboard.url, dashboard.key, "/ui/events")
        await page.click('tr[data-event="hello"] a:has-text("Test")')
        form = page.locator("form.test-form")
        assert await form.locator("input[name=greeting]").input_value() == "Hello"  # the schema's default
        await form.locator("input[name=name]").fill("Tester")
        await form.locator("input[name=wait_seconds]").fill("soon")
        await page.click("button[name=send]")
        assert "payload.wait_seconds" in await page.locator(".problem").inner_text()
        await page.go_back()
        await page.locator("form.test-form input[name=wait_seconds]").fill("0")
        await page.click("button[name=send]")
        assert "Sent hello" in await page.locator(".done").inner_text()
        run_id = str(await page.locator("#run").get_attribute("data-run"))
        done = await wait_for_status(dashboard.http, run_id, "completed")
        assert done["output"] == {"message": "Hello, Tester!"} and "test" in done["tags"]
        await page.goto(f"{dashboard.url}/ui/events/hello")  # prefilled with what was sent last
        assert await page.locator("form.test-form input[name=name]").input_value() == "Tester"
    assert offline.refused == []
