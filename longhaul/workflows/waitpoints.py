"""Waitpoint tokens for workflow authors: wait, durably, for a person or another system to answer.

``result = await wait_for_token(APPROVAL, timeout=timedelta(hours=24), description="order o-1: 1,250 EUR")``
records a token in app storage, shows it (with its callback URL) in the run record and the Temporal UI,
and waits until the token is completed — by ``POST /api/waitpoints/{id}/complete`` with an API key, the
CLI, the client, or its signed callback URL — or its timeout passes. ``result.ok`` says which; on
completion, ``result.output`` is the kind's pydantic model, validated where the completion arrived.

The wait is a condition on a signal plus a timer, so it costs nothing while it lasts and survives any
crash. When the timer fires, the token is timed out *in storage* first: if a completion won the race
there (its signal not delivered yet), the workflow takes the completion instead (see
:mod:`longhaul.waitpoints`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.waitpoints import WaitpointActivities
    from longhaul.models import Waitpoint, WaitpointStatus
    from longhaul.waitpoints import WAITPOINT_SIGNAL, waitpoint_id

from longhaul.workflows.pipeline import Output, WaitpointKind
from longhaul.workflows.tracking import (
    RECORD_RETRY,
    RECORD_TIMEOUT,
    current_run_id,
    current_tenant,
    instance_state,
    log,
)


@dataclass(frozen=True)
class TokenResult(Generic[Output]):
    """How a wait ended: ``token`` as stored then (status, who completed it, when), and its output."""

    token: Waitpoint
    output: Output | None

    @property
    def ok(self) -> bool:
        """Completed in time (``output`` is set)."""
        return self.token.status == WaitpointStatus.COMPLETED

    @property
    def timed_out(self) -> bool:
        return self.token.status == WaitpointStatus.TIMED_OUT


class _Waits:
    """One workflow run's waits: how many it began (ids derive from the count) and the completions its
    signal brought, by token id."""

    def __init__(self) -> None:
        self.began = 0
        self.completions: dict[str, Waitpoint] = {}
        workflow.set_signal_handler(WAITPOINT_SIGNAL, self.completed)

    def completed(self, token: Waitpoint) -> None:
        self.completions.setdefault(token.id, token)  # a redelivery changes nothing


_WAITS = "_longhaul_waits"  # on the workflow instance: one per execution, rebuilt by a replay


def _waits() -> _Waits:
    return instance_state(_WAITS, _Waits)


async def wait_for_token(
    kind: WaitpointKind[Output],
    *,
    timeout: timedelta,  # noqa: ASYNC109 (a durable timer in Temporal, not an asyncio timeout)
    description: str | None = None,
    tags: Sequence[str] = (),
) -> TokenResult[Output]:
    """Create a token of ``kind`` and wait until it is completed or ``timeout`` passes."""
    waits = _waits()
    waits.began += 1
    info = workflow.info()
    token = Waitpoint(
        id=waitpoint_id(info.workflow_id, info.run_id, waits.began),
        tenant=current_tenant(),
        run_id=current_run_id(),
        workflow_id=info.workflow_id,
        kind=kind.name,
        status=WaitpointStatus.WAITING,
        description=description,
        tags=list(tags),
        timeout_at=workflow.now() + timeout,
        created_at=workflow.now(),
    )
    await log(f"waiting for {kind.name} (token {token.id}) until {token.timeout_at:%Y-%m-%d %H:%M:%S} UTC")
    token = await _storage(WaitpointActivities.create, token, f"waitpoint {kind.name}: create")
    if token.status == WaitpointStatus.WAITING:
        token = await _wait(waits, token)
    output = _output(kind, token) if token.status == WaitpointStatus.COMPLETED else None
    by = f" by {token.completed_by}" if token.completed_by else ""
    await log(f"waitpoint {token.id} ({kind.name}) {token.status.value.replace('_', ' ')}{by}")
    return TokenResult(token=token, output=output)


async def _wait(waits: _Waits, token: Waitpoint) -> Waitpoint:
    """Wait for the token's completion until its time; then time it out in storage (or take the
    completion that got there first)."""
    workflow.set_current_details(
        f"**waiting** for {token.kind} (token `{token.id}`) until {token.timeout_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f": {token.description}" if token.description else "")
        + f"\n\ncomplete it: `POST {token.callback_url}` with the output as the JSON body"
    )
    remaining = token.timeout_at - workflow.now()
    try:
        await workflow.wait_condition(
            lambda: token.id in waits.completions,
            timeout=max(remaining, timedelta(0)),
            timeout_summary=f"waitpoint {token.kind}",
        )
    except TimeoutError:
        return await _storage(WaitpointActivities.time_out, token.id, f"waitpoint {token.kind}: time out")
    completed = waits.completions[token.id]
    return completed.model_copy(update={"callback_url": token.callback_url})


async def _storage(activity: Any, arg: Any, summary: str) -> Waitpoint:
    token: Waitpoint = await workflow.execute_local_activity_method(
        activity, arg, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY, summary=summary
    )
    return token


def _output(kind: WaitpointKind[Output], token: Waitpoint) -> Output:
    try:
        return kind.output.model_validate(token.output)
    except ValidationError as error:  # validated on arrival; only a kind changed since could fail
        raise ApplicationError(
            f"waitpoint {token.id}: its output does not fit {kind.name}: {error}",
            type="WaitpointOutputInvalid",
            non_retryable=True,
        ) from None
