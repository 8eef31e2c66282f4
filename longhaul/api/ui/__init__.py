"""The runs dashboard at ``/ui``: server-rendered pages (Jinja2, escaped by default) with one small script
for live progress, no JavaScript build step.

Why server-rendered: pages of tens of thousands of runs are paged in the database (keyset cursors, like
the API) and sent as HTML; there is no framework to download, build or keep up to date, and what a page
shows is exactly what the API would answer the same key. The script only keeps visible runs live (SSE).
"""

from fastapi import APIRouter

from longhaul.api.ui.actions import router as actions
from longhaul.api.ui.live import router as live
from longhaul.api.ui.pages import router as pages
from longhaul.api.ui.render import STATIC
from longhaul.api.ui.session import router as session

router = APIRouter()
for part in (session, pages, actions, live):
    router.include_router(part)

__all__ = ["STATIC", "router"]
