"""The storage side of waitpoint tokens for workflows (which do no I/O): create one, time one out.

Both are local activities of :func:`longhaul.workflows.waitpoints.wait_for_token`, idempotent by the token's
id: a retried create finds its row (whatever happened to it since), a retried time-out changes nothing twice.
"""

from __future__ import annotations

from temporalio import activity

from longhaul.config import Settings
from longhaul.models import Waitpoint
from longhaul.signing import signing_key
from longhaul.waitpoints import WaitpointStore, callback_url


class WaitpointActivities:
    def __init__(self, store: WaitpointStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.key = signing_key(settings)  # read once, not per token

    @activity.defn(name="waitpoints.create")
    async def create(self, token: Waitpoint) -> Waitpoint:
        """Record ``token`` (waiting) and return it as stored, with its callback URL."""
        stored = await self.store.create(token)
        return self._with_url(stored)

    @activity.defn(name="waitpoints.time_out")
    async def time_out(self, token_id: str) -> Waitpoint:
        """Time the token out, unless it was completed first: then the completion is returned."""
        token = await self.store.time_out(token_id)
        if token is None:
            raise LookupError(f"no waitpoint '{token_id}'")  # retried: its create is committed first
        return self._with_url(token)

    def _with_url(self, token: Waitpoint) -> Waitpoint:
        url = callback_url(self.settings, token.id, self.key)
        return token.model_copy(update={"callback_url": url})
