"""The ticket triage pipeline's event, stages, table and activities.

A support ticket is normalised, classified (category and urgency), mined for entities (order ids, email
addresses, SKUs), compared with the tenant's open tickets to find a duplicate, and routed to a team; the
result is kept in the ``tickets`` table. The classifier is a set of deterministic keyword rules (no model,
nothing downloaded): the same ticket always gets the same answer, and the rules that fired are part of
the result, so a person can see why. Each stage is a function of the previous stages' typed results; the
workflow runs them as local activities, so their results are in the run's history and a change of the
rules never changes a run already in flight.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, DateTime, Float, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column
from temporalio import activity

from longhaul.sdk import Base, Database, EventPayload, EventType, Resources, insert_new, utcnow

TICKET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
TENANT_MISMATCH = "TenantMismatch"


class TicketCreated(EventPayload):
    """Payload of ``ticket.created``: one support ticket, triaged once per ticket id."""

    tenant_field = "tenant"
    tenant: str = Field(
        min_length=1, max_length=100, description="The ticket's tenant; must be the sender's (else refused)."
    )
    ticket_id: str = Field(pattern=TICKET_ID_PATTERN, description="Stable per ticket: a resend is one run.")
    summary: str = Field(min_length=1, max_length=300)
    body: str = Field(default="", max_length=20_000)


TICKET_CREATED = EventType(name="ticket.created", version=1, schema=TicketCreated)


class Category(StrEnum):
    BILLING = "billing"
    SHIPPING = "shipping"
    ACCOUNT = "account"
    TECHNICAL = "technical"
    GENERAL = "general"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Normalised(BaseModel):
    """The ticket's text in one form: Unicode NFKC, no control characters, single spaces, lower case;
    ``words`` are its distinct content words (what duplicates are compared by)."""

    text: str
    words: list[str]


class Classification(BaseModel):
    category: Category
    urgency: Urgency
    rules: list[str] = Field(description="The rules that fired, e.g. 'billing: refund'.")


class Entities(BaseModel):
    order_ids: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)


class Duplicate(BaseModel):
    ticket_id: str
    similarity: float = Field(description="Jaccard similarity of the two tickets' content words, 0 to 1.")


class Routing(BaseModel):
    team: str
    reason: str


class TriageResult(BaseModel):
    ticket_id: str
    category: Category
    urgency: Urgency
    rules: list[str]
    entities: Entities
    duplicate_of: Duplicate | None
    team: str
    reason: str


class RouteRequest(BaseModel):
    classification: Classification
    duplicate: Duplicate | None


class DuplicateRequest(BaseModel):
    tenant: str
    ticket_id: str
    words: list[str]


class TicketRecord(BaseModel):
    tenant: str
    run_id: str
    summary: str
    words: list[str]
    result: TriageResult


# -- the rules ----------------------------------------------------------------------------------------------

# Keywords per category (whole words or phrases of the normalised text); the category with most hits wins,
# ties go to the one listed first.
CATEGORY_RULES: dict[Category, tuple[str, ...]] = {
    Category.BILLING: ("refund", "charged", "charge", "invoice", "payment", "billing", "price", "paid"),
    Category.SHIPPING: ("delivery", "shipping", "shipped", "parcel", "package", "tracking", "arrived"),
    Category.ACCOUNT: ("password", "log in", "login", "sign in", "account", "locked", "two-factor", "2fa"),
    Category.TECHNICAL: ("error", "crash", "bug", "broken", "not working", "outage", "down", "500", "api"),
}
URGENCY_RULES: tuple[tuple[Urgency, tuple[str, ...]], ...] = (
    (Urgency.URGENT, ("urgent", "asap", "immediately", "outage", "fraud", "charged twice", "data loss")),
    (Urgency.HIGH, ("cannot", "can't", "unable", "blocked", "angry", "still", "again", "locked")),
    (Urgency.LOW, ("no rush", "when you can", "question", "wondering", "feedback", "suggestion")),
)
TEAMS: dict[Category, str] = {
    Category.BILLING: "billing",
    Category.SHIPPING: "logistics",
    Category.ACCOUNT: "identity",
    Category.TECHNICAL: "engineering",
    Category.GENERAL: "support",
}
ESCALATION_TEAM = "escalations"  # urgent tickets of any category go to people on call
DUPLICATE_THRESHOLD = 0.6  # content words two tickets must share (Jaccard) to count as the same problem
DUPLICATE_CANDIDATES = 500  # the tenant's newest open tickets compared

_STOPWORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "this",
        "to",
        "was",
        "we",
        "were",
        "with",
        "you",
        "your",
        "please",
        "hi",
        "hello",
        "thanks",
        "thank",
        "regards",
    )
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# An order id follows the word "order" (optionally "id", "number", "no", "#", ":") and holds a digit;
# "#12345" on its own is an order number too.
_ORDER = re.compile(
    r"\border(?:\s+(?:id|number|no\.?))?\s*[#:]?\s*([A-Za-z]*[-_]?\d[A-Za-z0-9_.:-]*[A-Za-z0-9]|\d)",
    re.IGNORECASE,
)
_HASH_NUMBER = re.compile(r"(?<![\w&])#(\d{3,})\b")
_SKU = re.compile(
    r"\b(sku-[a-z0-9][a-z0-9-]*[a-z0-9])\b|\bsku\s*[#:]?\s*([a-z0-9][a-z0-9-]+)\b", re.IGNORECASE
)


def normalise(summary: str, body: str) -> Normalised:
    text = unicodedata.normalize("NFKC", f"{summary}\n{body}")
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    text = " ".join(text.split()).lower()
    words = sorted({w for w in _WORD.findall(text) if w not in _STOPWORDS and len(w) > 1})
    return Normalised(text=text, words=words)


def _hits(text: str, phrases: tuple[str, ...]) -> list[str]:
    return [p for p in phrases if re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", text)]


def classify(normalised: Normalised) -> Classification:
    text = normalised.text
    scores = {category: _hits(text, phrases) for category, phrases in CATEGORY_RULES.items()}
    best = max(scores, key=lambda category: len(scores[category]))
    category = best if scores[best] else Category.GENERAL
    rules = [f"{category}: {hit}" for hit in scores.get(category, [])]
    urgency = Urgency.NORMAL
    for level, phrases in URGENCY_RULES:
        hits = _hits(text, phrases)
        if hits:
            urgency = level
            rules += [f"{level}: {hit}" for hit in hits]
            break
    return Classification(category=category, urgency=urgency, rules=rules)


def extract(summary: str, body: str) -> Entities:
    text = unicodedata.normalize("NFKC", f"{summary}\n{body}")
    orders = [m.group(1) for m in _ORDER.finditer(text)] + _HASH_NUMBER.findall(text)
    skus = [(m.group(1) or m.group(2)).lower() for m in _SKU.finditer(text)]
    return Entities(
        order_ids=list(dict.fromkeys(orders)),
        emails=list(dict.fromkeys(e.lower() for e in _EMAIL.findall(text))),
        skus=list(dict.fromkeys(skus)),
    )


def route(classification: Classification, duplicate: Duplicate | None) -> Routing:
    if classification.urgency == Urgency.URGENT:
        return Routing(team=ESCALATION_TEAM, reason=f"urgent {classification.category} ticket")
    team = TEAMS[classification.category]
    reason = f"{classification.category} ticket, {classification.urgency} urgency"
    if duplicate is not None:
        reason += f"; likely a duplicate of {duplicate.ticket_id}"
    return Routing(team=team, reason=reason)


def similarity(a: list[str], b: list[str]) -> float:
    union = set(a) | set(b)
    return round(len(set(a) & set(b)) / len(union), 3) if union else 0.0


# -- storage ------------------------------------------------------------------------------------------------


class TicketRow(Base):
    """One triaged ticket per tenant and ticket id (the key that makes recording idempotent)."""

    __tablename__ = "tickets"
    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(300))
    words: Mapped[list[str]] = mapped_column(JSON)
    category: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(20))
    team: Mapped[str] = mapped_column(String(50))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    duplicate_of: Mapped[str | None] = mapped_column(String(100))
    similarity: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # The duplicate search: a tenant's open tickets, newest first.
    __table_args__ = (Index("ix_tickets_open", "tenant", "status", "created_at"),)


class TicketStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open_tickets(self, tenant: str, *, besides: str, limit: int) -> list[tuple[str, list[str]]]:
        """The tenant's newest open tickets other than ``besides``: id and content words."""
        query = (
            select(TicketRow.ticket_id, TicketRow.words)
            .where(TicketRow.tenant == tenant, TicketRow.status == "open", TicketRow.ticket_id != besides)
            .order_by(TicketRow.created_at.desc())
            .limit(limit)
        )
        async with self.db.session() as session:
            return [(ticket_id, words) for ticket_id, words in (await session.execute(query)).all()]

    async def record(self, record: TicketRecord) -> bool:
        """Keep the triaged ticket; False if it was kept before (a retry: nothing changes)."""
        result = record.result
        row = TicketRow(
            tenant=record.tenant,
            ticket_id=result.ticket_id,
            run_id=record.run_id,
            summary=record.summary,
            words=record.words,
            category=result.category,
            urgency=result.urgency,
            team=result.team,
            result=result.model_dump(mode="json"),
            duplicate_of=result.duplicate_of.ticket_id if result.duplicate_of else None,
            similarity=result.duplicate_of.similarity if result.duplicate_of else None,
        )
        async with self.db.session() as session, session.begin():
            return await insert_new(session, row)

    async def get(self, tenant: str, ticket_id: str) -> TicketRow | None:
        async with self.db.session() as session:
            return await session.get(TicketRow, (tenant, ticket_id))


# -- activities ---------------------------------------------------------------------------------------------


class TicketActivities:
    def __init__(self, store: TicketStore) -> None:
        self.store = store

    @activity.defn(name="tickets.normalise")
    async def normalise(self, ticket: TicketCreated) -> Normalised:
        return normalise(ticket.summary, ticket.body)

    @activity.defn(name="tickets.classify")
    async def classify(self, normalised: Normalised) -> Classification:
        return classify(normalised)

    @activity.defn(name="tickets.extract")
    async def extract(self, ticket: TicketCreated) -> Entities:
        return extract(ticket.summary, ticket.body)

    @activity.defn(name="tickets.find_duplicate")
    async def find_duplicate(self, request: DuplicateRequest) -> Duplicate | None:
        """The most similar of the tenant's open tickets, if similar enough."""
        candidates = await self.store.open_tickets(
            request.tenant, besides=request.ticket_id, limit=DUPLICATE_CANDIDATES
        )
        scored = [(similarity(request.words, words), ticket_id) for ticket_id, words in candidates]
        best = max(scored, default=(0.0, ""))
        return Duplicate(ticket_id=best[1], similarity=best[0]) if best[0] >= DUPLICATE_THRESHOLD else None

    @activity.defn(name="tickets.route")
    async def route(self, request: RouteRequest) -> Routing:
        return route(request.classification, request.duplicate)

    @activity.defn(name="tickets.record")
    async def record(self, record: TicketRecord) -> None:
        await self.store.record(record)


def ticket_activities(resources: Resources) -> list[Callable[..., Any]]:
    tickets = TicketActivities(TicketStore(resources.db))
    return [
        tickets.normalise,
        tickets.classify,
        tickets.extract,
        tickets.find_duplicate,
        tickets.route,
        tickets.record,
    ]
