"""What the sync and the async client share: the HTTP calls each method makes, errors, retries, SSE."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from longhaul.models import (
    AlertDestination,
    EventAccepted,
    StreamInfo,
    Waitpoint,
)
from longhaul.tenant_schedules import TenantSchedule

DEFAULT_URL = "http://localhost:8000"
MAX_RETRY_WAIT = 30.0

M = TypeVar("M", bound=BaseModel)


class LonghaulError(Exception):
    """The API refused a request; ``status_code`` and ``detail`` are its answer, ``problems`` the answer
    as people read it: one line per problem, ``field.path: message``."""

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code = status_code
        self.detail = detail
        self.problems = _problems(detail)
        super().__init__(f"{status_code}: {'; '.join(self.problems)}")


def _problems(detail: Any) -> list[str]:
    """A validation answer's problems (``[{"loc": [...], "msg": ...}]``) as ``payload.name: Field
    required`` lines; any other answer as it is."""
    if not isinstance(detail, list) or not all(isinstance(e, dict) and "msg" in e for e in detail):
        return [str(detail)]
    lines = []
    for problem in detail:
        loc = [str(part) for part in problem.get("loc", [])]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where in the request is plain from the command
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return lines


class UnavailableError(LonghaulError):
    """The API or Temporal behind it is unavailable; safe to retry after ``retry_after`` seconds."""

    def __init__(self, status_code: int, detail: Any, retry_after: float) -> None:
        super().__init__(status_code, detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Call:
    """One API request, built once and sent by either client."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    retry: bool = False  # only for requests that are idempotent by construction


def auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    if response.status_code in (502, 503, 504):
        retry_after = response.headers.get("retry-after", "1")
        wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 1.0
        raise UnavailableError(response.status_code, detail, min(wait, MAX_RETRY_WAIT))
    raise LonghaulError(response.status_code, detail)


def backoff(attempt: int, error: Exception) -> float:
    if isinstance(error, UnavailableError):
        return error.retry_after
    return float(min(0.5 * 2**attempt, MAX_RETRY_WAIT))


def retryable(error: Exception) -> bool:
    return isinstance(error, UnavailableError | httpx.TransportError)


def send_event(
    name: str,
    payload: dict[str, Any],
    id: str | None,
    tags: list[str] | None,
    options: Mapping[str, Any] | None,
) -> Call:
    body = {"id": id or f"evt_{uuid.uuid4().hex}", "payload": payload, "tags": tags or []}
    if options:
        body["options"] = dict(options)
    return Call("POST", f"/api/events/{name}", body=body, retry=True)


QUEUES = Call("GET", "/api/queues")


def pause_queue(queue: str, key: str | None, reason: str | None, *, resume: bool = False) -> Call:
    """Pause (or resume) a queue, or one tenant's runs of it."""
    body = {name: value for name, value in (("key", key), ("reason", reason)) if value is not None}
    return Call("POST", f"/api/queues/{quote(queue, safe='')}/{'resume' if resume else 'pause'}", body=body)


def limit(queue: str, scope: str, value: int | None) -> Call:
    """Set a scope's limit (``value``), or clear it (None)."""
    base = f"/api/queues/{quote(queue, safe='')}/limits"
    if value is None:
        return Call("DELETE", f"{base}/{quote(scope, safe='/:=')}")
    return Call("PUT", base, body={"scope": scope, "limit": value})


def weight(queue: str, key: str, value: float | None) -> Call:
    """Set a fair-share key value's weight (``value``), or clear it (None)."""
    path = f"/api/queues/{quote(queue, safe='')}/weights/{quote(key, safe='/')}"
    return Call("PUT", path, body={"weight": value}) if value is not None else Call("DELETE", path)


def bulk(action: str, filters: Mapping[str, Any], dry_run: bool, reason: str | None, every: bool) -> Call:
    # Named before the first attempt (like an event), so a retried request starts one bulk action.
    body = {"action": action, "filter": {k: v for k, v in filters.items() if v is not None},
            "dry_run": dry_run, "reason": reason, "all": every, "id": f"bulk_{uuid.uuid4().hex}"}  # fmt: skip
    return Call("POST", "/api/bulk-actions", body=json.loads(json.dumps(body, default=str)), retry=True)


def run_of(accepted: EventAccepted, workflow: str | None) -> str:
    """The run of ``workflow`` (default: the first) among those the event reached."""
    for ref in accepted.runs:
        if workflow is None or ref.workflow == workflow:
            return ref.run_id
    reached = ", ".join(ref.workflow for ref in accepted.runs) or "none"
    raise LonghaulError(404, f"event {accepted.event_id} reached no run of {workflow or 'any workflow'} "
                             f"(it reached: {reached})")  # fmt: skip


def cancel(run_id: str, reason: str | None) -> Call:
    return Call("POST", f"/api/runs/{run_id}/cancel", body={"reason": reason} if reason else None)


def pause_run(run_id: str, reason: str | None) -> Call:
    return Call("POST", f"/api/runs/{run_id}/pause", body={"reason": reason} if reason else None)


def access_token(run_id: str | None, tag: str | None, ttl_seconds: int) -> Call:
    body = {"run_id": run_id, "tag": tag, "ttl_seconds": ttl_seconds}
    return Call("POST", "/api/access-tokens", body={k: v for k, v in body.items() if v is not None})


def list_runs(**filters: Any) -> Call:
    return Call("GET", "/api/runs", params={k: v for k, v in filters.items() if v is not None})


def signal(run_id: str, name: str, payload: dict[str, Any] | None, id: str | None) -> Call:
    body = {"id": id or f"sig_{uuid.uuid4().hex}", "payload": payload or {}}
    return Call("POST", f"/api/runs/{run_id}/signals/{name}", body=body, retry=True)


@dataclass
class SseParser:
    """Turns server-sent event lines into (event, data) pairs."""

    event: str = "message"
    data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        if line == "":
            if not self.data:
                return None
            parsed = (self.event, "\n".join(self.data))
            self.event, self.data = "message", []
            return parsed
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


def from_sse(lines: Iterable[str], parser: SseParser, kind: str, model: type[M]) -> Iterator[M | None]:
    """The ``kind`` events of a stream as ``model`` (a run's record, a data stream's chunk); ``None``
    marks its end (``end``, or ``expired`` for an access token's)."""
    for line in lines:
        parsed = parser.feed(line)
        if parsed is None:
            continue
        event, data = parsed
        if event == kind:
            yield model.model_validate_json(data)
        elif event in ("end", "expired"):
            yield None


def dead_letters(status: str | None) -> Call:
    return Call("GET", "/api/webhooks/dead-letters", params={"status": status} if status else None)


def redeliver(letter_id: str) -> Call:
    return Call("POST", f"/api/webhooks/dead-letters/{letter_id}/redeliver")


WAITPOINT_LIST = TypeAdapter(list[Waitpoint])
STREAM_LIST = TypeAdapter(list[StreamInfo])


def waitpoints(**filters: Any) -> Call:
    return Call("GET", "/api/waitpoints", params={k: v for k, v in filters.items() if v is not None})


def complete(waitpoint_id: str, output: Any) -> Call:
    # Not retried: a completion is taken once, and a retry of one that was taken is answered 409.
    return Call("POST", f"/api/waitpoints/{waitpoint_id}/complete", body={"output": output})


DESTINATION_LIST = TypeAdapter(list[AlertDestination])


def add_destination(url: str | None, workflow: str | None, kinds: list[str] | None) -> Call:
    body: dict[str, Any] = {"type": "webhook" if url else "log", "url": url, "workflow": workflow}
    if kinds:
        body["kinds"] = kinds
    return Call("POST", "/api/alert-destinations", body=body)


SCHEDULE_LIST = TypeAdapter(list[TenantSchedule])


def schedule_path(schedule: str, action: str | None = None) -> str:
    return f"/api/schedules/{quote(schedule, safe='')}" + (f"/{action}" if action else "")


def create_schedule(id: str, event: str, payload: dict[str, Any] | None, spec: dict[str, Any]) -> Call:
    """Idempotent by its id (a repeat returns the first): safe to retry. The API checks it (422s)."""
    body = {"id": id, "event": event, "payload": payload or {}, **spec}
    return Call("POST", "/api/schedules", body=body, retry=True)
