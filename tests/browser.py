"""A real browser for tests: Debian's Chromium driven by Playwright, with no network beyond this machine.

Every request to another host is aborted and recorded, so a page that still reaches for a CDN fails its
test twice: it does not render, and the request is listed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import Page, Route, async_playwright

CHROMIUM = "/usr/bin/chromium"  # `make tools` installs Debian's package; Playwright downloads nothing
# The flags a root, headless, offline machine needs (no sandbox as root; no background calls home).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class OfflinePage:
    page: Page
    refused: list[str] = field(default_factory=list)  # requests to other hosts, aborted


@asynccontextmanager
async def offline_page() -> AsyncIterator[OfflinePage]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            offline = OfflinePage(page)

            async def only_local(route: Route) -> None:
                url = route.request.url
                if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
                    await route.continue_()
                else:
                    offline.refused.append(url)
                    await route.abort("internetdisconnected")

            await page.route("**/*", only_local)
            yield offline
        finally:
            await browser.close()
