"""The runs dashboard: server-rendered pages (Jinja2, escaped by default) with a small script, no build step.

Signed in with an API key: the sign-in form puts the key in an HttpOnly, SameSite=Strict cookie scoped to
``/ui``, and every page checks it as the API checks its header (a revoked key stops working at once), so
a page shows its tenant's runs only. Why server-rendered: pages of tens of thousands of runs are paged in
the database (keyset cursors, like the API) and sent as HTML, with no JavaScript framework to download,
build or keep up to date; the script only makes progress live.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from longhaul.keys import Caller
from longhaul.models import TAG_PATTERN, RunStatus
from longhaul.storage import RunFilter
from starters.api.deps import Service
from starters.service import NotFoundError

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC = Path(__file__).parent / "static"
COOKIE = "longhaul_key"
COOKIE_SECONDS = 12 * 3600


async def signed_in(request: Request) -> Caller:
    """The caller of the key in the session cookie; none (or revoked): off to the sign-in page."""
    key = request.cookies.get(COOKIE)
    caller: Caller | None = await request.app.state.keys.caller_of(key) if key else None
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=303, headers={"Location": f"/ui/signin?{urlencode({'next': target})}"}
        )
    return caller


SignedIn = Annotated[Caller, Depends(signed_in)]


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def _safe_next(target: str | None) -> str:
    """Only a path of the dashboard itself (never another site: an open redirect)."""
    return target if target and target.startswith("/ui/") and not target.startswith("//") else "/ui/runs"


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=303)


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _page(request, "signin.html", next=_safe_next(next), error=None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    key, target = form.get("key", "").strip(), _safe_next(form.get("next"))
    caller = await request.app.state.keys.caller_of(key) if key else None
    if caller is None:
        return _page(request, "signin.html", status=401, next=target, error="That API key is not valid.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, key, max_age=COOKIE_SECONDS, path="/ui", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/signout")
async def signout() -> RedirectResponse:
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/runs")
async def runs_page(
    request: Request,
    service: Service,
    caller: SignedIn,
    status: RunStatus | None = None,
    workflow: Annotated[str | None, Query(max_length=100)] = None,
    event: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=100, pattern=TAG_PATTERN)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> HTMLResponse:
    """Runs, newest first, filtered, a page at a time."""
    where = RunFilter(
        tenant=caller.tenant, status=status, workflow=workflow or None, event=event or None,
        tag=tag or None, created_after=created_after, created_before=created_before,
    )  # fmt: skip
    page = await service.store.list(where, limit=limit, cursor=cursor)
    runs = await service.explain(page.runs)
    filters = {k: v for k, v in vars(where).items() if k != "tenant"}
    kept = {k: v for k, v in {**filters, "limit": limit}.items() if v not in (None, "", 50)}
    more = f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
    return _page(
        request, "runs.html", caller=caller, runs=runs, filters=filters, more=more,
        statuses=list(RunStatus), workflows=service.catalog.workflow_names,
    )  # fmt: skip


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str, service: Service, caller: SignedIn) -> HTMLResponse:
    try:
        run = await service.get(run_id, tenant=caller.tenant)
    except NotFoundError:
        return _page(request, "error.html", status=404, caller=caller, message=f"No run '{run_id}'.")
    link = service.settings.temporal_ui_link(run.workflow_id)
    return _page(request, "run.html", caller=caller, run=run, temporal_link=link)
