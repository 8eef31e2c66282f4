"""What the API's pages tell browsers: no other site may frame them (Chromium, offline: a framing page on
another origin gets nothing rendered, unless the deployment names it for the realtime example), no
content sniffing, referrers kept home; and another site cannot sign a browser in or out of the
dashboard (login CSRF)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from tests.apps import serving
from tests.browser import offline_page
from tests.pipelines import TEST_CATALOG

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@contextmanager
def framing_site(frames: list[str]) -> Iterator[str]:
    """Another origin (``localhost``, where the API is ``127.0.0.1``) whose page frames ``frames`` (as
    the list is when the page is asked for)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            html = "".join(f'<iframe name="f{i}" src="{u}"></iframe>' for i, u in enumerate(frames)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Served:
    url: str
    key: str


@pytest.fixture
async def served(temporal_address: str, dev_client: Client, settings: Settings) -> AsyncIterator[Served]:
    # The realtime example may be framed by one named origin (a product's pages); nothing else by any.
    allowed = settings.model_copy(update={"frame_origins": ["http://localhost:1"]})
    app = create_app(allowed, TEST_CATALOG)
    async with serving(app) as url:
        _, key = await app.state.keys.create("default", "tests")
        yield Served(url, key)


PAGES = ["/ui/signin", "/ui/runs", "/examples/realtime.html", "/docs", "/api/runs"]


async def test_every_page_forbids_framing_sniffing_and_foreign_referrers(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        for path in PAGES:
            headers = (await http.get(path)).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "same-origin", path
            policy = headers["content-security-policy"]
            if path == "/examples/realtime.html":  # the named origin, and X-Frame-Options left out
                assert policy.endswith("frame-ancestors http://localhost:1")
                assert "x-frame-options" not in headers
            else:
                assert policy.endswith("frame-ancestors 'none'") and headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in (await http.get("/docs")).headers["content-security-policy"]
        refused = await http.post("/api/events/x", content=b"x" * 2_000_000)
        assert refused.status_code == 413 and refused.headers["x-frame-options"] == "DENY"


async def test_a_page_on_another_origin_frames_nothing_of_the_api(served: Served) -> None:
    frames = [f"{served.url}{path}" for path in ("/ui/signin", "/examples/realtime.html", "/docs")]
    with framing_site(frames) as site:
        async with offline_page() as offline:
            page = offline.page
            await page.goto(site)
            await page.wait_for_timeout(1500)
            for index, url in enumerate(frames):
                frame = page.frame(name=f"f{index}")
                assert frame is not None
                rendered = await frame.evaluate("document.body ? document.body.innerText : ''")
                assert "API key" not in rendered and "longhaul" not in rendered.lower(), url
                assert not frame.url.startswith(served.url), (url, frame.url)
            # The same pages open on their own (the check above can see a page that renders).
            await page.goto(frames[0])
            assert "API key" in await page.locator("body").inner_text()
            assert offline.refused == []


async def test_the_realtime_example_renders_in_a_frame_of_the_origin_the_deployment_names(
    temporal_address: str, dev_client: Client, settings: Settings
) -> None:
    frames: list[str] = []
    with framing_site(frames) as site:
        named = settings.model_copy(update={"frame_origins": [site.rstrip("/")]})
        async with serving(create_app(named, TEST_CATALOG)) as url, offline_page() as offline:
            frames += [f"{url}/examples/realtime.html", f"{url}/ui/signin"]
            await offline.page.goto(site)
            await offline.page.wait_for_timeout(1500)
            example, signin = offline.page.frame(name="f0"), offline.page.frame(name="f1")
            assert example is not None and signin is not None
            assert "Processing, live" in await example.evaluate("document.body.innerText")
            assert "API key" not in await signin.evaluate("document.body ? document.body.innerText : ''")
            assert offline.refused == []


async def test_signing_in_or_out_from_another_site_is_refused_and_sets_no_cookie(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as browser:
        forged = await browser.post(
            "/ui/signin", content=f"key={served.key}&next=/ui/runs",
            headers={**FORM, "Origin": "https://evil.example"},
        )  # fmt: skip
        assert forged.status_code == 403 and "set-cookie" not in forged.headers
        assert "dashboard&#39;s own pages" in forged.text
        no_origin = await browser.post("/ui/signin", content=f"key={served.key}", headers=FORM)
        assert no_origin.status_code == 403 and "set-cookie" not in no_origin.headers
        out = await browser.post("/ui/signout", headers={"Origin": "https://evil.example"})
        assert out.status_code == 403 and "set-cookie" not in out.headers
        # From the dashboard's own page: signed in, and out.
        own = {**FORM, "Origin": served.url}
        signed = await browser.post("/ui/signin", content=f"key={served.key}", headers=own)
        assert signed.status_code == 303 and "longhaul_key=" in signed.headers["set-cookie"]
        left = await browser.post("/ui/signout", headers={"Referer": f"{served.url}/ui/runs"})
        assert left.status_code == 303 and 'longhaul_key=""' in left.headers["set-cookie"]
