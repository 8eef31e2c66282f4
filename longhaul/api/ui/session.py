"""Signing in to the dashboard: an API key, kept by the browser in an HttpOnly, SameSite=Strict cookie and
checked on every request as the API checks its header (a revoked key stops working at once).

Why a cookie and not the key in the page: scripts never see it (HttpOnly), other sites' pages cannot send
it (SameSite=Strict), and the Temporal UI — same site, another port — can send it to ``/codec`` when told
to include credentials. Forms that change something are also refused unless they come from this origin.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from longhaul.api.ui.render import page
from longhaul.keys import Caller

COOKIE = "longhaul_key"
COOKIE_SECONDS = 12 * 3600

router = APIRouter(prefix="/ui", include_in_schema=False)


async def caller_of_cookie(request: Request) -> Caller | None:
    """The caller of the session cookie's key, if it is a valid one."""
    key = request.cookies.get(COOKIE)
    caller: Caller | None = await request.app.state.keys.caller_of(key) if key else None
    return caller


async def signed_in(request: Request) -> Caller:
    """The signed-in caller; none (or a revoked key): off to the sign-in page, and back afterwards."""
    caller = await caller_of_cookie(request)
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=303, headers={"Location": f"/ui/signin?{urlencode({'next': target})}"}
        )
    return caller


def from_own_pages(request: Request) -> None:
    """Refuse (403) a form not sent from a page of this site's origin: a second line behind the SameSite
    cookie for forms that act, and the only line for signing in and out, which another site could
    otherwise do for the victim's browser (signed in with the attacker's key, the victim would enter
    their data into the attacker's tenant)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    # The host only: behind a proxy that ends TLS the page is https and the request it forwards http.
    if not origin or urlsplit(origin).netloc != urlsplit(str(request.base_url)).netloc:
        raise HTTPException(status_code=403, detail="this form must be sent from the dashboard's own pages")


async def acting(request: Request, caller: Annotated[Caller, Depends(signed_in)]) -> Caller:
    """The signed-in caller of a form that changes something, sent from the dashboard's own pages."""
    from_own_pages(request)
    return caller


SignedIn = Annotated[Caller, Depends(signed_in)]
Acting = Annotated[Caller, Depends(acting)]


async def form_of(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the first value of each), read without python-multipart."""
    body = (await request.body()).decode(errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


def safe_next(target: str | None) -> str:
    """Only a path of the dashboard itself (never another site: an open redirect)."""
    return target if target and target.startswith("/ui/") and not target.startswith("//") else "/ui/runs"


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "signin.html", next=safe_next(next), error=None)


@router.post("/signin", dependencies=[Depends(from_own_pages)])
async def signin(request: Request) -> Response:
    form = await form_of(request)
    key, target = form.get("key", "").strip(), safe_next(form.get("next"))
    caller = await request.app.state.keys.caller_of(key) if key else None
    if caller is None:
        return page(request, "signin.html", status=401, next=target, error="That API key is not valid.")
    response = RedirectResponse(target, status_code=303)
    # Path "/": the API's /codec reads it too (for the Temporal UI); the API's other endpoints ignore it.
    response.set_cookie(
        COOKIE, key, max_age=COOKIE_SECONDS, path="/", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/signout", dependencies=[Depends(from_own_pages)])
async def signout() -> RedirectResponse:
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
