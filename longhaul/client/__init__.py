"""Python client for the longhaul HTTP API, on httpx, sync (:class:`Client`) and async (:class:`AsyncClient`).

>>> with Client("http://localhost:8000", api_key="lh_…") as longhaul:
...     accepted = longhaul.send_event("hello", {"name": "Ada"})
...     run = longhaul.runs.wait(accepted.runs[0].run_id)

``send_event`` gives every event an id before the first attempt, so its retries (on a dropped connection
or a 503 from the API while Temporal is unavailable, honouring Retry-After) can never start a run twice.
"""

from __future__ import annotations

from longhaul.client.aio import AsyncClient
from longhaul.client.calls import DEFAULT_URL, LonghaulError, UnavailableError
from longhaul.client.sync import Client

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "LonghaulError", "UnavailableError"]
