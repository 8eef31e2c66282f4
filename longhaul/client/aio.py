"""The async client: :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from longhaul.client import calls as wire
from longhaul.client.calls import DEFAULT_URL, M, UnavailableError
from longhaul.models import (
    AccessToken,
    AlertDestination,
    BulkAnswer,
    Chunk,
    DeadLetterPage,
    EventAccepted,
    FairWeight,
    LimitSet,
    QueueInfo,
    QueuePause,
    RunPage,
    RunRecord,
    RunRef,
    StreamInfo,
    Waitpoint,
    WebhookOutcome,
)
from longhaul.tenant_schedules import TenantSchedule


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
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=wire.auth(api_key))
        self.retries = retries
        self.runs = AsyncRuns(self)
        self.waitpoints = AsyncWaitpoints(self)
        self.alerts = AsyncAlerts(self)
        self.dead_letters = AsyncDeadLetters(self)
        self.schedules = AsyncSchedules(self)

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
        return await self._call(wire.send_event(name, payload, id, tags, options), EventAccepted)

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
        return await self.runs.wait(wire.run_of(accepted, workflow), timeout=timeout)

    async def create_access_token(
        self, *, run_id: str | None = None, tag: str | None = None, ttl_seconds: int = 3600
    ) -> AccessToken:
        return await self._call(wire.access_token(run_id, tag, ttl_seconds), AccessToken)

    async def queues(self) -> list[QueueInfo]:
        """The run queue's queues with this tenant's pending, delayed and running runs."""
        response = await self._request(wire.QUEUES)
        return [QueueInfo.model_validate(item) for item in response.json()]

    async def pause_queue(self, queue: str, key: str | None = None, reason: str | None = None) -> QueuePause:
        """Hold ``queue``'s pending runs (tenant ``key``'s only, if given) until resumed; a tenant key
        pauses only its own tenant's."""
        return await self._call(wire.pause_queue(queue, key, reason), QueuePause)

    async def resume_queue(self, queue: str, key: str | None = None) -> None:
        """Let the held runs start again."""
        await self._request(wire.pause_queue(queue, key, None, resume=True))

    async def set_limit(self, queue: str, scope: str, limit: int) -> LimitSet:
        """Hold a scope of ``queue`` (as a waiting run's reason names it) to ``limit`` in place of its
        declared one (admin keys)."""
        return await self._call(wire.limit(queue, scope, limit), LimitSet)

    async def clear_limit(self, queue: str, scope: str) -> None:
        """Back to the declared limit (admin keys)."""
        await self._request(wire.limit(queue, scope, None))

    async def set_weight(self, queue: str, key: str, weight: float) -> FairWeight:
        """Give a key value of a fair-share queue (a tenant, or ``<tenant>/<value>``) ``weight`` turns to
        a weight-1 value's one (admin keys)."""
        return await self._call(wire.weight(queue, key, weight), FairWeight)

    async def clear_weight(self, queue: str, key: str) -> None:
        """Back to weight 1 (admin keys)."""
        await self._request(wire.weight(queue, key, None))

    async def _call(self, call: wire.Call, model: type[M]) -> M:
        return model.model_validate((await self._request(call)).json())

    async def _request(self, call: wire.Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
                wire.raise_for(response)
                return response
            except (UnavailableError, httpx.TransportError) as error:
                if not (call.retry and attempt < self.retries and wire.retryable(error)):
                    raise
                await asyncio.sleep(wire.backoff(attempt, error))
                attempt += 1


class AsyncRuns:
    """``client.runs`` of :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, run_id: str) -> RunRecord:
        return await self._client._call(wire.Call("GET", f"/api/runs/{run_id}"), RunRecord)

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
        call = wire.list_runs(status=status, workflow=workflow, event=event, tag=tag, q=q, limit=limit,
                              cursor=cursor, system=system or None)  # fmt: skip
        return await self._client._call(call, RunPage)

    async def cancel(self, run_id: str, reason: str | None = None) -> RunRecord:
        return await self._client._call(wire.cancel(run_id, reason), RunRecord)

    async def pause(self, run_id: str, reason: str | None = None) -> RunRecord:
        return await self._client._call(wire.pause_run(run_id, reason), RunRecord)

    async def unpause(self, run_id: str) -> RunRecord:
        return await self._client._call(wire.Call("POST", f"/api/runs/{run_id}/unpause"), RunRecord)

    async def replay(self, run_id: str) -> RunRef:
        return await self._client._call(wire.Call("POST", f"/api/runs/{run_id}/replay"), RunRef)

    async def resume(self, run_id: str) -> RunRecord:
        return await self._client._call(wire.Call("POST", f"/api/runs/{run_id}/resume"), RunRecord)

    async def bulk(
        self,
        action: str,
        *,
        dry_run: bool = False,
        reason: str | None = None,
        all: bool = False,
        **filters: Any,
    ) -> BulkAnswer:
        return await self._client._call(wire.bulk(action, filters, dry_run, reason, all), BulkAnswer)

    async def signal(
        self, run_id: str, name: str, payload: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunRef:
        return await self._client._call(wire.signal(run_id, name, payload, id), RunRef)

    def stream(self, run_id: str) -> AsyncIterator[RunRecord]:
        """Yield the run's record at every change of status, progress or stage, until it finishes."""
        return self._stream(f"/api/runs/{run_id}/stream", None, "run", RunRecord)

    def stream_tagged(self, tag: str) -> AsyncIterator[RunRecord]:
        """Yield the record of every run with ``tag`` as it starts and changes, for as long as you iterate."""
        return self._stream("/api/runs/stream", {"tag": tag}, "run", RunRecord)

    async def streams(self, run_id: str) -> builtins.list[StreamInfo]:
        """The run's data streams: name, chunk count, last write."""
        call = wire.Call("GET", f"/api/runs/{run_id}/streams")
        return wire.STREAM_LIST.validate_python((await self._client._request(call)).json())

    def read_stream(self, run_id: str, name: str, *, after: int = 0) -> AsyncIterator[Chunk]:
        """Yield the chunks of the run's data stream ``name`` (after ``after``: a chunk's ``seq``) as they
        are written, until the run has finished and every chunk is read."""
        return self._stream(f"/api/runs/{run_id}/streams/{name}", {"after": str(after)}, "chunk", Chunk)

    async def _stream(
        self, path: str, params: dict[str, str] | None, kind: str, model: type[M]
    ) -> AsyncIterator[M]:
        parser = wire.SseParser()
        async with self._client._http.stream("GET", path, params=params, timeout=None) as response:
            if not response.is_success:
                await response.aread()
                wire.raise_for(response)
            async for line in response.aiter_lines():
                for item in wire.from_sse([line], parser, kind, model):
                    if item is None:
                        return
                    yield item

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
        call = wire.waitpoints(status=status, kind=kind, run_id=run_id, tag=tag, limit=limit)
        return wire.WAITPOINT_LIST.validate_python((await self._client._request(call)).json())

    async def get(self, waitpoint_id: str) -> Waitpoint:
        return await self._client._call(wire.Call("GET", f"/api/waitpoints/{waitpoint_id}"), Waitpoint)

    async def complete(self, waitpoint_id: str, output: Any = None) -> Waitpoint:
        return await self._client._call(wire.complete(waitpoint_id, output), Waitpoint)


class AsyncAlerts:
    """``client.alerts`` of the async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def add(
        self, url: str | None = None, *, workflow: str | None = None, kinds: list[str] | None = None
    ) -> AlertDestination:
        return await self._client._call(wire.add_destination(url, workflow, kinds), AlertDestination)

    async def list(self) -> list[AlertDestination]:
        response = await self._client._request(wire.Call("GET", "/api/alert-destinations"))
        return wire.DESTINATION_LIST.validate_python(response.json())

    async def remove(self, destination_id: str) -> None:
        await self._client._request(wire.Call("DELETE", f"/api/alert-destinations/{destination_id}"))


class AsyncDeadLetters:
    """``client.dead_letters`` of the async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, *, status: str | None = None) -> DeadLetterPage:
        return await self._client._call(wire.dead_letters(status), DeadLetterPage)

    async def redeliver(self, letter_id: str) -> WebhookOutcome:
        return await self._client._call(wire.redeliver(letter_id), WebhookOutcome)


class AsyncSchedules:
    """``client.schedules``: this tenant's schedules: an event sent on a cron (in a time zone) or an
    interval, each firing's runs through the run queue (docs/schedules.md)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, id: str, event: str, payload: dict[str, Any] | None = None, **spec: Any
    ) -> TenantSchedule:
        """``spec``: ``cron`` or ``interval_seconds``, and ``timezone``, ``overlap``,
        ``catchup_window_seconds``, ``paused``, ``note``. A schedule of that ``id`` already: the first."""
        return await self._client._call(wire.create_schedule(id, event, payload, spec), TenantSchedule)

    async def list(self) -> list[TenantSchedule]:
        return wire.SCHEDULE_LIST.validate_python(
            (await self._client._request(wire.Call("GET", "/api/schedules", retry=True))).json()
        )

    async def get(self, schedule: str) -> TenantSchedule:
        return await self._client._call(
            wire.Call("GET", wire.schedule_path(schedule), retry=True), TenantSchedule
        )

    async def update(self, schedule: str, **change: Any) -> TenantSchedule:
        """Change the fields given (``payload``, ``cron``, ``interval_seconds``, ``paused`` …)."""
        call = wire.Call("PATCH", wire.schedule_path(schedule), body=change)
        return await self._client._call(call, TenantSchedule)

    async def delete(self, schedule: str) -> None:
        await self._client._request(wire.Call("DELETE", wire.schedule_path(schedule)))

    async def trigger(self, schedule: str) -> None:
        """Fire now (its overlap policy still applies)."""
        await self._client._request(wire.Call("POST", wire.schedule_path(schedule, "trigger")))
