"""Python client for the longhaul HTTP API, on httpx, sync (:class:`Client`) and async (:class:`AsyncClient`).

>>> with Client("http://localhost:8000", api_key="lh_…") as longhaul:
...     accepted = longhaul.send_event("hello", {"name": "Ada"})
...     run = longhaul.runs.wait(accepted.runs[0].run_id)

``send_event`` gives every event an id before the first attempt, so its retries (on a dropped connection
or a 503 from the API while Temporal is unavailable, honouring Retry-After) can never start a run twice.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from longhaul.models import (
    AccessToken,
    AlertDestination,
    BulkAnswer,
    DeadLetterPage,
    EventAccepted,
    QueueInfo,
    RunPage,
    RunRecord,
    RunRef,
    Waitpoint,
    WebhookOutcome,
)

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
class _Call:
    """One API request, built once and sent by either client."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    retry: bool = False  # only for requests that are idempotent by construction


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _raise_for(response: httpx.Response) -> None:
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


def _backoff(attempt: int, error: Exception) -> float:
    if isinstance(error, UnavailableError):
        return error.retry_after
    return float(min(0.5 * 2**attempt, MAX_RETRY_WAIT))


def _retryable(error: Exception) -> bool:
    return isinstance(error, UnavailableError | httpx.TransportError)


def _send_event(
    name: str,
    payload: dict[str, Any],
    id: str | None,
    tags: list[str] | None,
    options: Mapping[str, Any] | None,
) -> _Call:
    body = {"id": id or f"evt_{uuid.uuid4().hex}", "payload": payload, "tags": tags or []}
    if options:
        body["options"] = dict(options)
    return _Call("POST", f"/api/events/{name}", body=body, retry=True)


_QUEUES = _Call("GET", "/api/queues")


def _bulk(action: str, filters: Mapping[str, Any], dry_run: bool, reason: str | None, every: bool) -> _Call:
    # Named before the first attempt (like an event), so a retried request starts one bulk action.
    body = {"action": action, "filter": {k: v for k, v in filters.items() if v is not None},
            "dry_run": dry_run, "reason": reason, "all": every, "id": f"bulk_{uuid.uuid4().hex}"}  # fmt: skip
    return _Call("POST", "/api/bulk-actions", body=json.loads(json.dumps(body, default=str)), retry=True)


def _run_of(accepted: EventAccepted, workflow: str | None) -> str:
    """The run of ``workflow`` (default: the first) among those the event reached."""
    for ref in accepted.runs:
        if workflow is None or ref.workflow == workflow:
            return ref.run_id
    reached = ", ".join(ref.workflow for ref in accepted.runs) or "none"
    raise LonghaulError(404, f"event {accepted.event_id} reached no run of {workflow or 'any workflow'} "
                             f"(it reached: {reached})")  # fmt: skip


def _cancel(run_id: str, reason: str | None) -> _Call:
    return _Call("POST", f"/api/runs/{run_id}/cancel", body={"reason": reason} if reason else None)


def _access_token(run_id: str | None, tag: str | None, ttl_seconds: int) -> _Call:
    body = {"run_id": run_id, "tag": tag, "ttl_seconds": ttl_seconds}
    return _Call("POST", "/api/access-tokens", body={k: v for k, v in body.items() if v is not None})


def _list(**filters: Any) -> _Call:
    return _Call("GET", "/api/runs", params={k: v for k, v in filters.items() if v is not None})


def _signal(run_id: str, name: str, payload: dict[str, Any] | None, id: str | None) -> _Call:
    body = {"id": id or f"sig_{uuid.uuid4().hex}", "payload": payload or {}}
    return _Call("POST", f"/api/runs/{run_id}/signals/{name}", body=body, retry=True)


@dataclass
class _SseParser:
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


def _runs_from_sse(lines: Iterable[str], parser: _SseParser) -> Iterator[RunRecord | None]:
    """Records from a stream; ``None`` marks its end."""
    for line in lines:
        parsed = parser.feed(line)
        if parsed is None:
            continue
        kind, data = parsed
        if kind == "run":
            yield RunRecord.model_validate(json.loads(data))
        elif kind == "end":
            yield None


class Client:
    """Synchronous client. ``retries`` applies to requests that are safe to repeat."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        api_key: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout, headers=_auth(api_key))
        self.retries = retries
        self.runs = Runs(self)
        self.waitpoints = Waitpoints(self)
        self.alerts = Alerts(self)
        self.dead_letters = DeadLetters(self)

    def __enter__(self) -> Client:
        return self

    @property
    def base_url(self) -> str:
        """The API's address (no trailing slash)."""
        return str(self._http.base_url).rstrip("/")

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send_event(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        id: str | None = None,
        tags: list[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> EventAccepted:
        """Send an event; returns its id and the runs it reached. ``options``: per-event flow control
        (``delay``, ``not_before``, ``ttl``, ``priority``, ``concurrency_key``: docs/events.md)."""
        return self._call(_send_event(name, payload, id, tags, options), EventAccepted)

    def send_and_wait(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        workflow: str | None = None,
        id: str | None = None,
        tags: list[str] | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> RunRecord:
        """Send an event and wait for its run to finish; returns the run's final record (its ``status``,
        ``output`` or ``error``). An event that starts several workflows: ``workflow`` names the one to
        wait for (default: the first). TimeoutError after ``timeout`` seconds; the run goes on."""
        accepted = self.send_event(name, payload, id=id, tags=tags, options=options)
        return self.runs.wait(_run_of(accepted, workflow), timeout=timeout)

    def create_access_token(
        self, *, run_id: str | None = None, tag: str | None = None, ttl_seconds: int = 3600
    ) -> AccessToken:
        """A public access token for a browser: it streams one run, or the runs with ``tag``, read-only,
        until it expires (docs/realtime.md)."""
        return self._call(_access_token(run_id, tag, ttl_seconds), AccessToken)

    def queues(self) -> list[QueueInfo]:
        """The run queue's queues with this tenant's pending, delayed and running runs."""
        response = self._request(_QUEUES)
        return [QueueInfo.model_validate(item) for item in response.json()]

    def _call(self, call: _Call, model: type[M]) -> M:
        return model.model_validate(self._request(call).json())

    def _request(self, call: _Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, params=call.params, json=call.body)
                _raise_for(response)
                return response
            except (UnavailableError, httpx.TransportError) as error:
                if not (call.retry and attempt < self.retries and _retryable(error)):
                    raise
                time.sleep(_backoff(attempt, error))
                attempt += 1


class Runs:
    """``client.runs``: read and act on runs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, run_id: str) -> RunRecord:
        return self._client._call(_Call("GET", f"/api/runs/{run_id}"), RunRecord)

    def list(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        event: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        system: bool = False,
    ) -> RunPage:
        """Runs newest first; ``q``: part of the business key (any case), or a run or event id;
        ``system``: longhaul's own runs (its schedules) instead of the tenant's (admin keys)."""
        call = _list(status=status, workflow=workflow, event=event, tag=tag, q=q, limit=limit, cursor=cursor,
                     system=system or None)  # fmt: skip
        return self._client._call(call, RunPage)

    def cancel(self, run_id: str, reason: str | None = None) -> RunRecord:
        """Ask the run to stop; its record says this key asked, and ``reason``."""
        return self._client._call(_cancel(run_id, reason), RunRecord)

    def replay(self, run_id: str) -> RunRef:
        return self._client._call(_Call("POST", f"/api/runs/{run_id}/replay"), RunRef)

    def resume(self, run_id: str) -> RunRecord:
        """Resume a failed run from its failed step on the code running now (docs/events.md)."""
        return self._client._call(_Call("POST", f"/api/runs/{run_id}/resume"), RunRecord)

    def bulk(
        self,
        action: str,
        *,
        dry_run: bool = False,
        reason: str | None = None,
        all: bool = False,
        **filters: Any,
    ) -> BulkAnswer:
        """Cancel, replay or resume every run the filters match (``workflow``, ``status``, ``tag``, ``event``,
        ``created_after``, ``created_before``); ``dry_run`` counts only. No filter acts on every run of
        the tenant only with ``all=True``. The answer's ``run`` is the bulk-action run carrying it out:
        follow it like any run."""
        return self._client._call(_bulk(action, filters, dry_run, reason, all), BulkAnswer)

    def signal(
        self, run_id: str, name: str, payload: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunRef:
        return self._client._call(_signal(run_id, name, payload, id), RunRef)

    def stream(self, run_id: str) -> Iterator[RunRecord]:
        """Yield the run's record at every change of status, progress or stage, until it finishes."""
        return self._stream(f"/api/runs/{run_id}/stream")

    def stream_tagged(self, tag: str) -> Iterator[RunRecord]:
        """Yield the record of every run with ``tag`` (first those changed last) as it starts and changes,
        for as long as you iterate."""
        return self._stream("/api/runs/stream", {"tag": tag})

    def _stream(self, path: str, params: dict[str, str] | None = None) -> Iterator[RunRecord]:
        with self._client._http.stream("GET", path, params=params, timeout=None) as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            for record in _runs_from_sse(response.iter_lines(), _SseParser()):
                if record is None:
                    return
                yield record

    def wait(self, run_id: str, *, timeout: float | None = None, poll: float = 0.5) -> RunRecord:
        """Block until the run has finished and return its final record (TimeoutError after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run.status.terminal:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run.status} after {timeout}s")
            time.sleep(poll)


def _dead_letters(status: str | None) -> _Call:
    return _Call("GET", "/api/webhooks/dead-letters", params={"status": status} if status else None)


def _redeliver(letter_id: str) -> _Call:
    return _Call("POST", f"/api/webhooks/dead-letters/{letter_id}/redeliver")


_WAITPOINT_LIST = TypeAdapter(list[Waitpoint])


def _waitpoints(**filters: Any) -> _Call:
    return _Call("GET", "/api/waitpoints", params={k: v for k, v in filters.items() if v is not None})


def _complete(waitpoint_id: str, output: Any) -> _Call:
    # Not retried: a completion is taken once, and a retry of one that was taken is answered 409.
    return _Call("POST", f"/api/waitpoints/{waitpoint_id}/complete", body={"output": output})


class Waitpoints:
    """``client.waitpoints``: the tokens runs wait on; complete one to let its run go on."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        limit: int = 50,
    ) -> list[Waitpoint]:
        call = _waitpoints(status=status, kind=kind, run_id=run_id, tag=tag, limit=limit)
        return _WAITPOINT_LIST.validate_python(self._client._request(call).json())

    def get(self, waitpoint_id: str) -> Waitpoint:
        return self._client._call(_Call("GET", f"/api/waitpoints/{waitpoint_id}"), Waitpoint)

    def complete(self, waitpoint_id: str, output: Any = None) -> Waitpoint:
        """Complete the token with ``output``; a token completed before raises LonghaulError 409."""
        return self._client._call(_complete(waitpoint_id, output), Waitpoint)


_DESTINATION_LIST = TypeAdapter(list[AlertDestination])


def _add_destination(url: str | None, workflow: str | None, kinds: list[str] | None) -> _Call:
    body: dict[str, Any] = {"type": "webhook" if url else "log", "url": url, "workflow": workflow}
    if kinds:
        body["kinds"] = kinds
    return _Call("POST", "/api/alert-destinations", body=body)


class Alerts:
    """``client.alerts``: where this tenant's failure alerts go (docs/alerts.md)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def add(
        self, url: str | None = None, *, workflow: str | None = None, kinds: list[str] | None = None
    ) -> AlertDestination:
        """A signed webhook to ``url`` (its secret is in the answer, once), or the log without one."""
        return self._client._call(_add_destination(url, workflow, kinds), AlertDestination)

    def list(self) -> list[AlertDestination]:
        return _DESTINATION_LIST.validate_python(
            self._client._request(_Call("GET", "/api/alert-destinations")).json()
        )

    def remove(self, destination_id: str) -> None:
        self._client._request(_Call("DELETE", f"/api/alert-destinations/{destination_id}"))


class DeadLetters:
    """``client.dead_letters``: signed webhooks that could not be processed (admin keys)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, status: str | None = None) -> DeadLetterPage:
        """Newest first; by default those still dead (``status="redelivered"`` for the others)."""
        return self._client._call(_dead_letters(status), DeadLetterPage)

    def redeliver(self, letter_id: str) -> WebhookOutcome:
        """Process the webhook again with the code running now; ``received`` is False if it still fails."""
        return self._client._call(_redeliver(letter_id), WebhookOutcome)


class AsyncClient:
    """Asynchronous client; same methods as :class:`Client`, awaited."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        api_key: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=_auth(api_key))
        self.retries = retries
        self.runs = AsyncRuns(self)
        self.waitpoints = AsyncWaitpoints(self)
        self.alerts = AsyncAlerts(self)
        self.dead_letters = AsyncDeadLetters(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_event(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        id: str | None = None,
        tags: list[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> EventAccepted:
        """Send an event; returns its id and the runs it reached. ``options``: per-event flow control
        (``delay``, ``not_before``, ``ttl``, ``priority``, ``concurrency_key``: docs/events.md)."""
        return await self._call(_send_event(name, payload, id, tags, options), EventAccepted)

    async def send_and_wait(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        workflow: str | None = None,
        id: str | None = None,
        tags: list[str] | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the same signature as the sync client's
    ) -> RunRecord:
        """Send an event and wait for its run to finish (see :meth:`Client.send_and_wait`)."""
        accepted = await self.send_event(name, payload, id=id, tags=tags, options=options)
        return await self.runs.wait(_run_of(accepted, workflow), timeout=timeout)

    async def create_access_token(
        self, *, run_id: str | None = None, tag: str | None = None, ttl_seconds: int = 3600
    ) -> AccessToken:
        return await self._call(_access_token(run_id, tag, ttl_seconds), AccessToken)

    async def queues(self) -> list[QueueInfo]:
        """The run queue's queues with this tenant's pending, delayed and running runs."""
        response = await self._request(_QUEUES)
        return [QueueInfo.model_validate(item) for item in response.json()]

    async def _call(self, call: _Call, model: type[M]) -> M:
        return model.model_validate((await self._request(call)).json())

    async def _request(self, call: _Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
                _raise_for(response)
                return response
            except (UnavailableError, httpx.TransportError) as error:
                if not (call.retry and attempt < self.retries and _retryable(error)):
                    raise
                await asyncio.sleep(_backoff(attempt, error))
                attempt += 1


class AsyncRuns:
    """``client.runs`` of :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, run_id: str) -> RunRecord:
        return await self._client._call(_Call("GET", f"/api/runs/{run_id}"), RunRecord)

    async def list(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        event: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        system: bool = False,
    ) -> RunPage:
        """Runs newest first; ``q``: part of the business key (any case), or a run or event id;
        ``system``: longhaul's own runs (its schedules) instead of the tenant's (admin keys)."""
        call = _list(status=status, workflow=workflow, event=event, tag=tag, q=q, limit=limit, cursor=cursor,
                     system=system or None)  # fmt: skip
        return await self._client._call(call, RunPage)

    async def cancel(self, run_id: str, reason: str | None = None) -> RunRecord:
        return await self._client._call(_cancel(run_id, reason), RunRecord)

    async def replay(self, run_id: str) -> RunRef:
        return await self._client._call(_Call("POST", f"/api/runs/{run_id}/replay"), RunRef)

    async def resume(self, run_id: str) -> RunRecord:
        return await self._client._call(_Call("POST", f"/api/runs/{run_id}/resume"), RunRecord)

    async def bulk(
        self,
        action: str,
        *,
        dry_run: bool = False,
        reason: str | None = None,
        all: bool = False,
        **filters: Any,
    ) -> BulkAnswer:
        return await self._client._call(_bulk(action, filters, dry_run, reason, all), BulkAnswer)

    async def signal(
        self, run_id: str, name: str, payload: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunRef:
        return await self._client._call(_signal(run_id, name, payload, id), RunRef)

    def stream(self, run_id: str) -> AsyncIterator[RunRecord]:
        """Yield the run's record at every change of status, progress or stage, until it finishes."""
        return self._stream(f"/api/runs/{run_id}/stream")

    def stream_tagged(self, tag: str) -> AsyncIterator[RunRecord]:
        """Yield the record of every run with ``tag`` as it starts and changes, for as long as you iterate."""
        return self._stream("/api/runs/stream", {"tag": tag})

    async def _stream(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[RunRecord]:
        parser = _SseParser()
        async with self._client._http.stream("GET", path, params=params, timeout=None) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response)
            async for line in response.aiter_lines():
                for record in _runs_from_sse([line], parser):
                    if record is None:
                        return
                    yield record

    async def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the same signature as the sync client's
        poll: float = 0.5,
    ) -> RunRecord:
        """Wait until the run has finished and return its final record (TimeoutError after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = await self.get(run_id)
            if run.status.terminal:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run.status} after {timeout}s")
            await asyncio.sleep(poll)


class AsyncWaitpoints:
    """``client.waitpoints`` of the async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        limit: int = 50,
    ) -> list[Waitpoint]:
        call = _waitpoints(status=status, kind=kind, run_id=run_id, tag=tag, limit=limit)
        return _WAITPOINT_LIST.validate_python((await self._client._request(call)).json())

    async def get(self, waitpoint_id: str) -> Waitpoint:
        return await self._client._call(_Call("GET", f"/api/waitpoints/{waitpoint_id}"), Waitpoint)

    async def complete(self, waitpoint_id: str, output: Any = None) -> Waitpoint:
        return await self._client._call(_complete(waitpoint_id, output), Waitpoint)


class AsyncAlerts:
    """``client.alerts`` of the async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def add(
        self, url: str | None = None, *, workflow: str | None = None, kinds: list[str] | None = None
    ) -> AlertDestination:
        return await self._client._call(_add_destination(url, workflow, kinds), AlertDestination)

    async def list(self) -> list[AlertDestination]:
        response = await self._client._request(_Call("GET", "/api/alert-destinations"))
        return _DESTINATION_LIST.validate_python(response.json())

    async def remove(self, destination_id: str) -> None:
        await self._client._request(_Call("DELETE", f"/api/alert-destinations/{destination_id}"))


class AsyncDeadLetters:
    """``client.dead_letters`` of the async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, *, status: str | None = None) -> DeadLetterPage:
        return await self._client._call(_dead_letters(status), DeadLetterPage)

    async def redeliver(self, letter_id: str) -> WebhookOutcome:
        return await self._client._call(_redeliver(letter_id), WebhookOutcome)
