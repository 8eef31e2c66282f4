"""How dashboard pages are rendered: Jinja2 templates, HTML-escaped by default (names, tags and payloads
are shown as text, never markup), with a few filters for runs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from longhaul.db import utcnow
from longhaul.humanize import duration
from longhaul.models import RunRecord

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


def _pretty(value: Any) -> str:
    """JSON for reading (escaped by the template like any text, so ``<`` stays ``<`` on screen)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else duration(seconds)


def _ago(value: datetime | None) -> str:
    """How long ago, as people say it ("3 min 20 s ago"); the page's script keeps it current."""
    return f"{duration(max(0.0, (utcnow() - value).total_seconds()))} ago" if value else ""


def _took(run: RunRecord) -> str:
    """How long a run has taken: start to finish, or so far."""
    if run.started_at is None:
        return ""
    return duration(max(0.0, ((run.finished_at or utcnow()) - run.started_at).total_seconds()))


templates.env.filters.update(pretty=_pretty, when=_when, duration=_duration, ago=_ago, took=_took)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


TITLES = {400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Conflict",
          410: "Gone", 422: "Invalid input", 503: "Temporal is unavailable"}  # fmt: skip


def error_page(request: Request, status: int, detail: Any) -> HTMLResponse:
    """A refusal as a page: the API's status and message; for invalid input, one line per field."""
    if isinstance(detail, list):
        lines = [f"{'.'.join(str(part) for part in e.get('loc', []))}: {e.get('msg', '')}" for e in detail]
    else:
        lines = [str(detail)]
    return page(request, "error.html", status=status, caller=None, title=TITLES.get(status, "Error"),
                message="\n".join(lines))  # fmt: skip
