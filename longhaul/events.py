"""Event schemas: an event is a name, a version and a pydantic model of its payload.

Schemas live in the shared layer so the API (validation), the workflows (typed input) and the clients all
use the same model. Which workflows an event starts is declared in :mod:`workflows.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longhaul.video import Rendition, Thumbnail, VideoAnalysis


class EventPayload(BaseModel):
    """Base of every event payload: unknown fields are refused, so a typo is an error, not silently lost."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EventType:
    """An event longhaul accepts: ``name`` on the wire, ``version`` of its schema, ``schema`` its payload."""

    name: str
    version: int
    schema: type[EventPayload]


class HelloRequested(EventPayload):
    """Payload of ``hello``: the smallest real pipeline, proving API → Temporal → worker → run record."""

    name: str = Field(min_length=1, max_length=200, description="Who to greet.")
    greeting: str = Field(default="Hello", min_length=1, max_length=50)
    wait_seconds: float = Field(
        default=0, ge=0, le=86_400, description="A durable timer before the greeting (survives restarts)."
    )


HELLO = EventType(name="hello", version=1, schema=HelloRequested)


VIDEO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"


class VideoUploaded(EventPayload):
    """Payload of ``video.uploaded``: a video to process into renditions, thumbnails and an analysis."""

    video_id: str = Field(pattern=VIDEO_ID_PATTERN, description="Letters, digits, '_' and '-'.")
    user_id: str = Field(min_length=1, max_length=100)
    file_path: str = Field(
        min_length=1,
        max_length=1000,
        description="The file, relative to the upload dir (it may not leave it), or an http(s) URL.",
    )
    format: str | None = Field(default=None, max_length=20, description="Container hint, e.g. mp4.")
    duration: float | None = Field(default=None, gt=0, description="Claimed seconds; the probe decides.")

    @field_validator("file_path")
    @classmethod
    def _inside_upload_dir(cls, value: str) -> str:
        if value.startswith(("http://", "https://")):
            return value
        path = PurePosixPath(value)
        if "\x00" in value or path.is_absolute() or ".." in path.parts or value.startswith("~"):
            raise ValueError(
                "must be a path inside the upload dir (relative, without '..') or an http(s) URL"
            )
        return value


class VideoProcessingCompleted(EventPayload):
    video_id: str
    user_id: str
    duration: float
    renditions: list[Rendition]
    skipped: list[str]
    thumbnails: list[Thumbnail]
    analysis: VideoAnalysis


class VideoProcessingFailed(EventPayload):
    video_id: str
    user_id: str
    reason: str


VIDEO_UPLOADED = EventType(name="video.uploaded", version=1, schema=VideoUploaded)
VIDEO_COMPLETED = EventType(name="video.processing.completed", version=1, schema=VideoProcessingCompleted)
VIDEO_FAILED = EventType(name="video.processing.failed", version=1, schema=VideoProcessingFailed)


ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=ORDER_ID_PATTERN)
    quantity: int = Field(gt=0, le=10_000)
    price: Decimal = Field(gt=0, max_digits=12, decimal_places=2, description='Unit price, e.g. "19.99".')


class OrderCreated(EventPayload):
    """Payload of ``order.created``."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=100)
    items: list[OrderItem] = Field(min_length=1, max_length=100)
    express: bool = Field(default=False, description="Express orders go first when the queue is backed up.")


class PaymentConfirmed(EventPayload):
    """Payload of ``payment.confirmed``: routed as a signal to the order's workflow by ``order_id``."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    charge_id: str = Field(min_length=1, max_length=100)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{3}$",
        description="ISO 4217 code. The order completes only if amount and currency match its charge; "
        "a confirmation that does not state it cannot match.",
    )


ORDER_CREATED = EventType(name="order.created", version=1, schema=OrderCreated)
PAYMENT_CONFIRMED = EventType(name="payment.confirmed", version=1, schema=PaymentConfirmed)
