"""The HTTP API: send events, read and act on runs. Small typed endpoints in one router per concern
(events, runs, schedules, codec, webhooks, health), their shared dependencies in :mod:`.deps`; the
pydantic schema is the validation, and every refusal names the field and changes nothing."""

from longhaul.api.app import create_app

__all__ = ["create_app"]
