"""The API's documentation pages render in a real browser with no internet: their scripts and styles
are served by the API itself (the machines this runs on have no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longhaul.api import create_app
from longhaul.config import Settings
from tests.apps import serving
from tests.browser import offline_page


@pytest.fixture
async def api_url(temporal_address: str, settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as url:
        yield url


async def test_swagger_ui_renders_the_api_offline(api_url: str, tmp_path: Path) -> None:
    async with offline_page() as offline:
        await offline.page.goto(f"{api_url}/docs")
        title = offline.page.locator(".swagger-ui .info .title")
        await title.wait_for(timeout=30_000)
        assert "longhaul" in await title.inner_text()
        operation = offline.page.locator(".opblock-summary-path", has_text="/api/events/{name}")
        await operation.first.wait_for(timeout=10_000)
        await offline.page.screenshot(path=tmp_path / "docs.png", full_page=False)
    assert offline.refused == []


async def test_redoc_renders_the_api_offline(api_url: str) -> None:
    async with offline_page() as offline:
        await offline.page.goto(f"{api_url}/redoc")
        heading = offline.page.locator("h1", has_text="longhaul")
        await heading.first.wait_for(timeout=30_000)
        await offline.page.get_by_text("/api/events/{name}").first.wait_for(timeout=10_000)
    assert offline.refused == []
