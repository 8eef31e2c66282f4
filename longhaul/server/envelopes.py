"""What a sender posts (an event's envelope and per-event options) and the errors a refused request gets:
shared by the run service, the API, the CLI and the worker's activities."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from longhaul.models import ID_PATTERN, TAG_PATTERN, RunRecord
from longhaul.text import StoredText, check_json, check_text

MAX_BATCH = 1000
MAX_WAIT_SECONDS = 366 * 24 * 3600  # the longest delay or TTL a sender may ask for: a year


class NotFoundError(LookupError):
    """The thing asked for does not exist (for this tenant)."""


class UnknownEventError(NotFoundError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown event '{name}'; known events: {', '.join(sorted(known))}")


class ConflictError(RuntimeError):
    """The run is not in a state that allows this (e.g. cancelling a completed run)."""


class IdempotencyConflictError(ConflictError):
    """An event id sent again with another payload: like a payment API's reused idempotency key, it is
    refused rather than answered with the first run, which did something else."""

    def __init__(self, event_id: str, run: RunRecord, payload: dict[str, Any]) -> None:
        first = run.input if isinstance(run.input, dict) else {}
        fields = sorted(k for k in first.keys() | payload.keys() if first.get(k) != payload.get(k))
        super().__init__(
            f"event id '{event_id}' was sent before with another payload (differs in: "
            f"{', '.join(fields)}; first run {run.id}): send the same payload to get that run, "
            "or a new id for a new event"
        )


def repeated_ids(items: list[BatchItem]) -> list[dict[str, Any]]:
    """An event id that a batch repeats with another payload (of the same event): which payload is
    meant? Bad input, named at the repeat; as the same payload it is one event, sent once."""
    first: dict[tuple[str, str], int] = {}
    errors = []
    for index, item in enumerate(items):
        if item.id is None:
            continue
        earlier = first.setdefault((item.name, item.id), index)
        if earlier != index and items[earlier].payload != item.payload:
            problem = (
                f"event id '{item.id}' is also events[{earlier}] of this batch, with another payload: "
                "send one of them (nothing of this batch was written)"
            )
            errors.append({"type": "value_error", "loc": ["events", index, "payload"], "msg": problem})
    return errors


def check_reuse(run: RunRecord, event_name: str, event_id: str, payload: dict[str, Any]) -> None:
    """Raise IdempotencyConflictError if ``run`` was started by this very event id with another payload.
    (A once-per-key run reached by a *different* event id is the subscription's dedupe, not a reuse.)"""
    if run.event == event_name and run.event_id == event_id and run.input != payload:
        raise IdempotencyConflictError(event_id, run, payload)


class InvalidInputError(ValueError):
    """Input that fails validation; ``errors`` locate each problem (``loc``) and say what it is (``msg``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors

    @classmethod
    def from_validation(cls, error: ValidationError, *prefix: str | int) -> InvalidInputError:
        return cls(
            [{"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]} for e in error.errors()]
        )


class TemporalUnavailableError(RuntimeError):
    """Temporal could not be reached; nothing was started and no record claims a run. Retry later."""

    @classmethod
    def of(cls, error: BaseException) -> TemporalUnavailableError:
        """The API's 503 for a call that failed as :func:`longhaul.temporal.is_unavailable` says."""
        return cls(f"Temporal is unavailable: {error}")


class RunOptions(BaseModel):
    """Flow control a sender sets per event, on top of what the subscription declares."""

    model_config = ConfigDict(extra="forbid")

    delay: float | None = Field(
        default=None, ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait before the run may start."
    )
    not_before: AwareDatetime | None = Field(
        default=None, description="The run does not start before this time (ISO 8601 with a time zone)."
    )
    ttl: float | None = Field(
        default=None,
        gt=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds from now: a run not started by then is expired instead of started.",
    )
    priority: int | None = Field(
        default=None, ge=1, le=5, description="1 starts first … 5 last (default: 3, or the subscription's)."
    )
    idempotency_key_ttl: float | None = Field(
        default=None,
        gt=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds the event id returns the run it made; the same id sent after that makes a new "
        "run (default: it always returns the first). For runs named by the event id: not those a business "
        "key names, nor those events join (debounce, batch, singleton).",
    )
    concurrency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The payload field whose value keys the subscription's per-key limits, instead of the "
        "one it declares.",
    )

    @model_validator(mode="after")
    def _one_start_time(self) -> RunOptions:
        if self.delay is not None and self.not_before is not None:
            raise ValueError("give delay or not_before, not both")
        return self

    def due(self, now: datetime) -> datetime | None:
        """When the run may start, if later than now."""
        if self.delay:
            return now + timedelta(seconds=self.delay)
        return self.not_before if self.not_before is not None and self.not_before > now else None


class EventEnvelope(BaseModel):
    """What a sender posts: the payload, an optional id that makes the send idempotent, tags, and
    per-event flow control (``options``)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=ID_PATTERN,
        description="Event id or idempotency key; sending the same id again returns the same runs.",
    )
    payload: Annotated[dict[str, Any], AfterValidator(check_json)] = Field(
        default_factory=dict, description="The event's data (its schema)."
    )
    # Constraints before the text check: after it, pydantic would count a too-long tag as "items".
    tags: list[
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=100, pattern=TAG_PATTERN),
            AfterValidator(check_text),
        ]
    ] = Field(
        default_factory=list,
        max_length=10,
        description="Labels copied to every run of the event, to filter runs by, here and in the Temporal "
        "UI (LonghaulTags = 'user:42'): 1 to 100 characters each, no spaces, commas or quotes.",
    )
    options: RunOptions = Field(default_factory=RunOptions, description="Per-event flow control.")


class BatchItem(EventEnvelope):
    name: StoredText = Field(min_length=1, max_length=100, description="The event's name.")
