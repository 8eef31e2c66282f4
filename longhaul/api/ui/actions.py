"""What the dashboard's buttons do: cancel, pause, unpause, replay and resume a run, complete a waitpoint
token, make, change, pause, unpause, trigger and delete a schedule, pause and resume a queue and set or
clear its limits and weights. Each is the API's own operation for the signed-in key (the
same checks, the same refusals, rendered as a page), sent by a form from the dashboard's origin; done, it
goes back to the page it came from with a line saying what happened."""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from longhaul.api import queues
from longhaul.api.deps import Schedules, Service, Waitpoints, current_admin
from longhaul.api.schedules import act_on_schedule
from longhaul.api.ui.pages import test_form
from longhaul.api.ui.session import Acting, form_of
from longhaul.api.ui.testing import payload_of
from longhaul.keys import Caller
from longhaul.models import LimitRequest, PauseRequest, WeightRequest
from longhaul.server.envelopes import EventEnvelope, InvalidInputError
from longhaul.server.pausing import pause_run, unpause_run
from longhaul.server.resume import resume
from longhaul.tenant_schedules import ScheduleChange, ScheduleRequest

router = APIRouter(prefix="/ui", include_in_schema=False)


def _done(page: str, done: str) -> RedirectResponse:
    """Back to the dashboard page ``page`` with a line saying what happened."""
    return RedirectResponse(f"{page}?{urlencode({'done': done})}", status_code=303)


def _back_to(run_id: str, done: str) -> RedirectResponse:
    return _done(f"/ui/runs/{quote(run_id, safe='')}", done)


def _by(caller: Caller) -> str:
    """Who acted, for the run's record and log."""
    return f"key {caller.key_id} (dashboard)"


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: str, service: Service, caller: Acting) -> RedirectResponse:
    await service.cancel(run_id, tenant=caller.tenant, by=_by(caller))
    return _back_to(run_id, "Cancellation requested: the run stops after its compensations.")


@router.post("/runs/{run_id}/pause")
async def pause(run_id: str, service: Service, caller: Acting) -> RedirectResponse:
    await pause_run(service, run_id, tenant=caller.tenant, by=_by(caller))
    return _back_to(run_id, "Paused: it waits until it is unpaused.")


@router.post("/runs/{run_id}/unpause")
async def unpause(run_id: str, service: Service, caller: Acting) -> RedirectResponse:
    await unpause_run(service, run_id, tenant=caller.tenant, by=_by(caller))
    return _back_to(run_id, "Unpaused: it goes on.")


@router.post("/runs/{run_id}/replay")
async def replay(run_id: str, service: Service, caller: Acting) -> RedirectResponse:
    new = await service.replay(run_id, tenant=caller.tenant)
    return _back_to(new.id, f"Replay of {run_id}: this new run has its input.")


@router.post("/runs/{run_id}/resume")
async def resume_run(run_id: str, service: Service, caller: Acting) -> RedirectResponse:
    await resume(service, run_id, tenant=caller.tenant)
    return _back_to(run_id, "Resumed from the step that failed.")


@router.post("/events/{name}")
async def send_test_event(name: str, request: Request, service: Service, caller: Acting) -> RedirectResponse:
    """An event's test form: send it as the API would (tagged ``test``) and open the run it made."""
    payload = payload_of(await test_form(service, name, caller.tenant), await form_of(request))
    accepted = await service.send(name, EventEnvelope(payload=payload, tags=["test"]), tenant=caller.tenant)
    if not accepted.deliveries:  # every subscription's filter refused it
        refused = ", ".join(accepted.filtered_out)
        done = f"Sent {name} ({accepted.event_id}): no run, filtered out by {refused}."
        return _done(f"/ui/events/{quote(name, safe='')}", done)
    return _back_to(accepted.deliveries[0].run.id, f"Sent {name} ({accepted.event_id}) from its test page.")


@router.post("/waitpoints/{waitpoint_id}/complete")
async def complete_waitpoint(
    waitpoint_id: str, request: Request, waitpoints: Waitpoints, caller: Acting
) -> RedirectResponse:
    """The form's ``output`` is the token's output as JSON (checked against its kind's model)."""
    text = (await form_of(request)).get("output", "").strip() or "{}"
    try:
        output = json.loads(text)
    except ValueError as error:
        raise InvalidInputError(
            [{"type": "json_invalid", "loc": ["output"], "msg": f"output is not JSON: {error}"}]
        ) from error
    by = f"key:{caller.key_id} (dashboard)"
    token = await waitpoints.complete(waitpoint_id, output, by=by, tenant=caller.tenant)
    return _back_to(token.run_id, f"Waitpoint {token.id} completed.")


@router.post("/schedules")
async def create_schedule(request: Request, caller: Acting, tenant_schedules: Schedules) -> RedirectResponse:
    """A new schedule of the tenant's from the schedules page's form (a repeated id: the first)."""
    form = await form_of(request)
    fields = _schedule_fields(form) | {"id": form.get("id", ""), "event": form.get("event", "")}
    try:
        wanted = ScheduleRequest.model_validate(fields)
    except ValidationError as error:
        raise InvalidInputError.from_validation(error) from error
    schedule, created = await tenant_schedules.create(caller.tenant, wanted, _by(caller))
    return _to_schedules(f"{schedule.id}: {'created' if created else 'exists already: unchanged'}.")


@router.post("/schedules/{schedule}")
async def change_schedule(
    schedule: str, request: Request, caller: Acting, tenant_schedules: Schedules
) -> RedirectResponse:
    """The schedule's page's form: every field as shown (cron or interval, whichever is filled)."""
    try:
        change = ScheduleChange.model_validate(_schedule_fields(await form_of(request)))
    except ValidationError as error:
        raise InvalidInputError.from_validation(error) from error
    await tenant_schedules.change(caller.tenant, schedule, change)
    return _done(f"/ui/schedules/{quote(schedule, safe='')}", "Saved.")


@router.post("/schedules/{schedule}/delete")
async def delete_schedule(schedule: str, caller: Acting, tenant_schedules: Schedules) -> RedirectResponse:
    await tenant_schedules.delete(caller.tenant, schedule)
    return _to_schedules(f"{schedule}: deleted.")


def _schedule_fields(form: dict[str, str]) -> dict[str, Any]:
    """A schedule form's fields as the API takes them: blanks left out, the payload read as JSON."""
    fields: dict[str, Any] = {
        name: form[name].strip()
        for name in ("cron", "interval_seconds", "timezone", "overlap", "catchup_window_seconds", "note")
        if form.get(name, "").strip() or name == "note"
    }
    fields["paused"] = form.get("paused") == "on"
    try:
        fields["payload"] = json.loads(form.get("payload", "").strip() or "{}")
    except ValueError as error:
        raise InvalidInputError(
            [{"type": "json_invalid", "loc": ["payload"], "msg": f"payload is not JSON: {error}"}]
        ) from error
    return fields


@router.post("/schedules/{schedule}/{action}")
async def act(
    schedule: str,
    action: Literal["pause", "unpause", "trigger"],
    service: Service,
    caller: Acting,
    tenant_schedules: Schedules,
) -> RedirectResponse:
    await act_on_schedule(schedule, action, service.client, caller, tenant_schedules)
    return _to_schedules(f"{schedule}: {action} done.")


def _to_schedules(done: str) -> RedirectResponse:
    return _done("/ui/schedules", done)


QueueAction = Literal["pause", "resume", "limit", "clear-limit", "weight", "clear-weight"]


@router.post("/queues/{queue}/{action}")
async def act_on_queue(
    queue: str, action: QueueAction, request: Request, service: Service, caller: Acting
) -> RedirectResponse:
    """The queues page's forms, each the API's own operation (the same checks: a tenant key pauses and
    resumes only its own tenant's runs; limits and weights are for admin keys)."""
    form = {name: value.strip() for name, value in (await form_of(request)).items() if value.strip()}
    try:
        if action in ("pause", "resume"):
            asked = PauseRequest.model_validate({k: v for k, v in form.items() if k in ("key", "reason")})
            if action == "pause":
                await queues.pause_queue(queue, asked, service, caller)
            else:
                await queues.resume_queue(queue, PauseRequest(key=asked.key), service, caller)
            done = f"{queue}{' for ' + asked.key if asked.key else ''}: {action}d."
        elif action == "limit":
            limit = LimitRequest.model_validate({"scope": form.get("scope"), "limit": form.get("limit")})
            await queues.set_limit(queue, limit, service, await current_admin(caller))
            done = f"{limit.scope}: limit {limit.limit}."
        elif action == "clear-limit":
            await queues.clear_limit(queue, form.get("scope", ""), service, await current_admin(caller))
            done = f"{form.get('scope')}: back to its declared limit."
        elif action == "weight":
            if not form.get("key"):
                raise InvalidInputError([{"type": "missing", "loc": ["key"], "msg": "name the key value"}])
            weight = WeightRequest.model_validate({"weight": form.get("weight")})
            await queues.set_weight(queue, form.get("key", ""), weight, service, await current_admin(caller))
            done = f"{queue}: {form.get('key')} weight {weight.weight:g}."
        else:
            await queues.clear_weight(queue, form.get("key", ""), service, await current_admin(caller))
            done = f"{queue}: {form.get('key')} back to weight 1."
    except ValidationError as error:
        raise InvalidInputError.from_validation(error) from error
    return _done("/ui/queues", done)
