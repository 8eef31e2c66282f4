"""Completing waitpoint tokens: by API key (API, CLI, client) or by a token's signed callback URL.

A completion is validated against its kind's model (declared by the pipeline), written to the token's row
if the token still waits and is in time (one completion wins: :mod:`longhaul.waitpoints`), and then
delivered to the run by signal. A delivery that fails (Temporal down) is retried by the dispatcher's
upkeep (:meth:`WaitpointService.redeliver`) until it reaches the run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longhaul.config import Settings
from longhaul.db import utcnow
from longhaul.models import Waitpoint, WaitpointStatus
from longhaul.server.envelopes import ConflictError, InvalidInputError, NotFoundError
from longhaul.signing import signing_key
from longhaul.temporal import is_unavailable, signal_once
from longhaul.waitpoints import (
    WAITPOINT_SIGNAL,
    WaitpointStore,
    callback_url,
    signature_matches,
)
from longhaul.workflows.catalog import Catalog

log = logging.getLogger("longhaul.waitpoints")

DELIVERY_TIMEOUT = 5.0  # seconds a completion's signal may take before it is left to the redelivery
REDELIVER_AFTER = timedelta(seconds=10)  # a completion undelivered this long is sent again


class WaitpointCompletedError(ConflictError):
    """The token was completed before: this completion is not taken. Carries the first one."""

    def __init__(self, token: Waitpoint) -> None:
        super().__init__(
            f"waitpoint '{token.id}' was completed already (by {token.completed_by} at "
            f"{token.completed_at:%Y-%m-%d %H:%M:%S} UTC); this completion is not taken"
        )
        self.token = token


class WaitpointClosedError(RuntimeError):
    """The token takes no completion any more: timed out, or its run closed (HTTP 410)."""


class BadCallbackSignatureError(PermissionError):
    """A callback URL this deployment did not sign (HTTP 403)."""


class WaitpointService:
    """Reads and completes the tokens of app storage. One per API process."""

    def __init__(self, client: Client, store: WaitpointStore, settings: Settings, catalog: Catalog) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.catalog = catalog
        self.key = signing_key(settings)  # read once; the realtime routes sign access tokens with it too

    def shown(self, token: Waitpoint) -> Waitpoint:
        """``token`` with its callback URL (for a caller of its tenant)."""
        return token.model_copy(update={"callback_url": callback_url(self.settings, token.id, self.key)})

    async def get(self, token_id: str, *, tenant: str) -> Waitpoint:
        token = await self.store.get(token_id, tenant=tenant)
        if token is None:
            raise NotFoundError(f"no waitpoint '{token_id}'")
        return self.shown(token)

    async def complete(self, token_id: str, output: Any, *, by: str, tenant: str | None = None) -> Waitpoint:
        """Complete the token with ``output`` (a caller of ``tenant``, or the callback URL's holder)."""
        token = await self.store.get(token_id, tenant=tenant)
        if token is None:
            raise NotFoundError(f"no waitpoint '{token_id}'")
        checked = self._validated(token.kind, output)
        completed, changed = await self.store.complete(token_id, checked, by=by, tenant=tenant)
        assert completed is not None
        if not changed:
            raise self._refusal(completed)
        await self._deliver(completed, within=DELIVERY_TIMEOUT)
        return self.shown(completed)

    async def callback(self, token_id: str, signature: str, output: Any) -> Waitpoint:
        """Complete the token through its callback URL: no API key, the signature is the credential."""
        if not signature_matches(self.key, token_id, signature):
            raise BadCallbackSignatureError(
                "this callback URL's signature does not match: it was not issued here"
            )
        return await self.complete(token_id, output, by="callback")

    async def redeliver(self) -> int:
        """Send again the completions whose signal has not reached their run; how many reached it."""
        sent = 0
        for token in await self.store.undelivered(utcnow() - REDELIVER_AFTER):
            sent += await self._deliver(token, within=None)
        return sent

    def _validated(self, kind_name: str, output: Any) -> Any:
        """The output as JSON, validated against the kind's model where the kind is declared."""
        kind = self.catalog.waitpoint_kinds.get(kind_name)
        if kind is None:
            return output
        try:
            return kind.output.model_validate(output).model_dump(mode="json")
        except ValidationError as error:
            raise InvalidInputError.from_validation(error, "output") from error

    @staticmethod
    def _refusal(token: Waitpoint) -> Exception:
        if token.status == WaitpointStatus.COMPLETED:
            return WaitpointCompletedError(token)
        if token.status == WaitpointStatus.WAITING:  # in storage still, but its time has passed
            return WaitpointClosedError(
                f"waitpoint '{token.id}' expired at {token.timeout_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        reason = "timed out" if token.status == WaitpointStatus.TIMED_OUT else "cancelled: its run closed"
        return WaitpointClosedError(f"waitpoint '{token.id}' is {reason}; it takes no completion")

    async def _deliver(self, token: Waitpoint, *, within: float | None) -> bool:
        """Signal the completion to its run (once per token: the signal's request id); note it delivered.
        A run that no longer runs needs no delivery."""
        signal = signal_once(
            self.client, token.workflow_id, WAITPOINT_SIGNAL, token, request_id=f"waitpoint/{token.id}"
        )
        try:
            await asyncio.wait_for(signal, within)
        except (RPCError, RuntimeError, TimeoutError) as error:
            if not (isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND):
                transient = isinstance(error, TimeoutError) or is_unavailable(error)
                log.log(
                    logging.WARNING if transient else logging.ERROR,
                    "waitpoint %s of run %s (workflow %s) not delivered yet: %s",
                    token.id, token.run_id, token.workflow_id, error or "timed out",
                )  # fmt: skip
                return False
        await self.store.delivered(token.id)
        return True
