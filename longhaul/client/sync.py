"""The sync client: :class:`Client`."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping
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
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout, headers=wire.auth(api_key))
        self.retries = retries
        self.runs = Runs(self)
        self.waitpoints = Waitpoints(self)
        self.alerts = Alerts(self)
        self.dead_letters = DeadLetters(self)
        self.schedules = Schedules(self)

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
        return self._call(wire.send_event(name, payload, id, tags, options), EventAccepted)

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
        return self.runs.wait(wire.run_of(accepted, workflow), timeout=timeout)

    def create_access_token(
        self, *, run_id: str | None = None, tag: str | None = None, ttl_seconds: int = 3600
    ) -> AccessToken:
        """A public access token for a browser: it streams one run, or the runs with ``tag``, read-only,
        until it expires (docs/realtime.md)."""
        return self._call(wire.access_token(run_id, tag, ttl_seconds), AccessToken)

    def queues(self) -> list[QueueInfo]:
        """The run queue's queues with this tenant's pending, delayed and running runs."""
        response = self._request(wire.QUEUES)
        return [QueueInfo.model_validate(item) for item in response.json()]

    def pause_queue(self, queue: str, key: str | None = None, reason: str | None = None) -> QueuePause:
        """Hold ``queue``'s pending runs (tenant ``key``'s only, if given) until resumed; a tenant key
        pauses only its own tenant's."""
        return self._call(wire.pause_queue(queue, key, reason), QueuePause)

    def resume_queue(self, queue: str, key: str | None = None) -> None:
        """Let the held runs start again."""
        self._request(wire.pause_queue(queue, key, None, resume=True))

    def set_limit(self, queue: str, scope: str, limit: int) -> LimitSet:
        """Hold a scope of ``queue`` (as a waiting run's reason names it) to ``limit`` in place of its
        declared one (admin keys)."""
        return self._call(wire.limit(queue, scope, limit), LimitSet)

    def clear_limit(self, queue: str, scope: str) -> None:
        """Back to the declared limit (admin keys)."""
        self._request(wire.limit(queue, scope, None))

    def set_weight(self, queue: str, key: str, weight: float) -> FairWeight:
        """Give a key value of a fair-share queue (a tenant, or ``<tenant>/<value>``) ``weight`` turns to
        a weight-1 value's one (admin keys)."""
        return self._call(wire.weight(queue, key, weight), FairWeight)

    def clear_weight(self, queue: str, key: str) -> None:
        """Back to weight 1 (admin keys)."""
        self._request(wire.weight(queue, key, None))

    def _call(self, call: wire.Call, model: type[M]) -> M:
        return model.model_validate(self._request(call).json())

    def _request(self, call: wire.Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, params=call.params, json=call.body)
                wire.raise_for(response)
                return response
            except (UnavailableError, httpx.TransportError) as error:
                if not (call.retry and attempt < self.retries and wire.retryable(error)):
                    raise
                time.sleep(wire.backoff(attempt, error))
                attempt += 1


class Runs:
    """``client.runs``: read and act on runs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, run_id: str) -> RunRecord:
        return self._client._call(wire.Call("GET", f"/api/runs/{run_id}"), RunRecord)

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
        call = wire.list_runs(status=status, workflow=workflow, event=event, tag=tag, q=q, limit=limit,
                              cursor=cursor, system=system or None)  # fmt: skip
        return self._client._call(call, RunPage)

    def cancel(self, run_id: str, reason: str | None = None) -> RunRecord:
        """Ask the run to stop; its record says this key asked, and ``reason``."""
        return self._client._call(wire.cancel(run_id, reason), RunRecord)

    def pause(self, run_id: str, reason: str | None = None) -> RunRecord:
        """Pause the run: a waiting one is not started, a started one is paused in Temporal, until
        :meth:`unpause`; its record says this key paused it, and ``reason``."""
        return self._client._call(wire.pause_run(run_id, reason), RunRecord)

    def unpause(self, run_id: str) -> RunRecord:
        """Let a paused run go on."""
        return self._client._call(wire.Call("POST", f"/api/runs/{run_id}/unpause"), RunRecord)

    def replay(self, run_id: str) -> RunRef:
        return self._client._call(wire.Call("POST", f"/api/runs/{run_id}/replay"), RunRef)

    def resume(self, run_id: str) -> RunRecord:
        """Resume a failed run from its failed step on the code running now (docs/events.md)."""
        return self._client._call(wire.Call("POST", f"/api/runs/{run_id}/resume"), RunRecord)

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
        return self._client._call(wire.bulk(action, filters, dry_run, reason, all), BulkAnswer)

    def signal(
        self, run_id: str, name: str, payload: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunRef:
        return self._client._call(wire.signal(run_id, name, payload, id), RunRef)

    def stream(self, run_id: str) -> Iterator[RunRecord]:
        """Yield the run's record at every change of status, progress or stage, until it finishes."""
        return self._stream(f"/api/runs/{run_id}/stream", None, "run", RunRecord)

    def stream_tagged(self, tag: str) -> Iterator[RunRecord]:
        """Yield the record of every run with ``tag`` (first those changed last) as it starts and changes,
        for as long as you iterate."""
        return self._stream("/api/runs/stream", {"tag": tag}, "run", RunRecord)

    def streams(self, run_id: str) -> builtins.list[StreamInfo]:
        """The run's data streams: name, chunk count, last write."""
        call = wire.Call("GET", f"/api/runs/{run_id}/streams")
        return wire.STREAM_LIST.validate_python((self._client._request(call)).json())

    def read_stream(self, run_id: str, name: str, *, after: int = 0) -> Iterator[Chunk]:
        """Yield the chunks of the run's data stream ``name`` (after ``after``: a chunk's ``seq``) as they
        are written, until the run has finished and every chunk is read."""
        return self._stream(f"/api/runs/{run_id}/streams/{name}", {"after": str(after)}, "chunk", Chunk)

    def _stream(self, path: str, params: dict[str, str] | None, kind: str, model: type[M]) -> Iterator[M]:
        with self._client._http.stream("GET", path, params=params, timeout=None) as response:
            if not response.is_success:
                response.read()
                wire.raise_for(response)
            for item in wire.from_sse(response.iter_lines(), wire.SseParser(), kind, model):
                if item is None:
                    return
                yield item

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
        call = wire.waitpoints(status=status, kind=kind, run_id=run_id, tag=tag, limit=limit)
        return wire.WAITPOINT_LIST.validate_python(self._client._request(call).json())

    def get(self, waitpoint_id: str) -> Waitpoint:
        return self._client._call(wire.Call("GET", f"/api/waitpoints/{waitpoint_id}"), Waitpoint)

    def complete(self, waitpoint_id: str, output: Any = None) -> Waitpoint:
        """Complete the token with ``output``; a token completed before raises LonghaulError 409."""
        return self._client._call(wire.complete(waitpoint_id, output), Waitpoint)


class Alerts:
    """``client.alerts``: where this tenant's failure alerts go (docs/alerts.md)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def add(
        self, url: str | None = None, *, workflow: str | None = None, kinds: list[str] | None = None
    ) -> AlertDestination:
        """A signed webhook to ``url`` (its secret is in the answer, once), or the log without one."""
        return self._client._call(wire.add_destination(url, workflow, kinds), AlertDestination)

    def list(self) -> list[AlertDestination]:
        return wire.DESTINATION_LIST.validate_python(
            self._client._request(wire.Call("GET", "/api/alert-destinations")).json()
        )

    def remove(self, destination_id: str) -> None:
        self._client._request(wire.Call("DELETE", f"/api/alert-destinations/{destination_id}"))


class DeadLetters:
    """``client.dead_letters``: signed webhooks that could not be processed (admin keys)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, status: str | None = None) -> DeadLetterPage:
        """Newest first; by default those still dead (``status="redelivered"`` for the others)."""
        return self._client._call(wire.dead_letters(status), DeadLetterPage)

    def redeliver(self, letter_id: str) -> WebhookOutcome:
        """Process the webhook again with the code running now; ``received`` is False if it still fails."""
        return self._client._call(wire.redeliver(letter_id), WebhookOutcome)


class Schedules:
    """``client.schedules``: this tenant's schedules: an event sent on a cron (in a time zone) or an
    interval, each firing's runs through the run queue (docs/schedules.md)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, id: str, event: str, payload: dict[str, Any] | None = None, **spec: Any
    ) -> TenantSchedule:
        """``spec``: ``cron`` or ``interval_seconds``, and ``timezone``, ``overlap``,
        ``catchup_window_seconds``, ``paused``, ``note``. A schedule of that ``id`` already: the first."""
        return self._client._call(wire.create_schedule(id, event, payload, spec), TenantSchedule)

    def list(self) -> list[TenantSchedule]:
        return wire.SCHEDULE_LIST.validate_python(
            self._client._request(wire.Call("GET", "/api/schedules", retry=True)).json()
        )

    def get(self, schedule: str) -> TenantSchedule:
        return self._client._call(wire.Call("GET", wire.schedule_path(schedule), retry=True), TenantSchedule)

    def update(self, schedule: str, **change: Any) -> TenantSchedule:
        """Change the fields given (``payload``, ``cron``, ``interval_seconds``, ``paused`` …)."""
        call = wire.Call("PATCH", wire.schedule_path(schedule), body=change)
        return self._client._call(call, TenantSchedule)

    def delete(self, schedule: str) -> None:
        self._client._request(wire.Call("DELETE", wire.schedule_path(schedule)))

    def trigger(self, schedule: str) -> None:
        """Fire now (its overlap policy still applies)."""
        self._client._request(wire.Call("POST", wire.schedule_path(schedule, "trigger")))
