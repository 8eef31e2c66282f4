"""The ticket triage pipeline: its rules as functions, and whole runs through the API, a real dev server,
a worker and real SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from activities.tickets import (
    Category,
    Classification,
    Duplicate,
    TicketCreated,
    TicketStore,
    Urgency,
    classify,
    extract,
    normalise,
    route,
    similarity,
)
from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunFilter, RunStore
from tests.apps import api_client, wait_for_status
from tests.postgres import both_databases
from workflows.tickets import TicketTriageWorkflow

TICKET = {
    "tenant": "default",
    "ticket_id": "T-100",
    "summary": "Charged twice for order #48213",
    "body": "Hi, my card was charged twice for order ORD-48213 (SKU-MUG x2). "
    "Please refund to ada@example.com",
}


def _classified(summary: str, body: str = "") -> Classification:
    return classify(normalise(summary, body))


def test_normalise_folds_case_width_and_whitespace_and_keeps_content_words() -> None:
    fullwidth_urgent = "\uff35\uff32\uff27\uff25\uff2e\uff34"
    normalised = normalise(f"  {fullwidth_urgent}:\tLogin\x00 broken ", "The app is broken again")
    assert normalised.text == "urgent: login broken the app is broken again"
    assert normalised.words == ["again", "app", "broken", "login", "urgent"]


@pytest.mark.parametrize(
    ("summary", "body", "category", "urgency"),
    [
        ("Charged twice for my order", "please refund", Category.BILLING, Urgency.URGENT),
        ("Where is my parcel?", "tracking says it shipped a week ago", Category.SHIPPING, Urgency.NORMAL),
        ("Cannot log in", "my account is locked", Category.ACCOUNT, Urgency.HIGH),
        ("API returns 500", "outage since 9:00", Category.TECHNICAL, Urgency.URGENT),
        ("A question about gift wrap", "no rush", Category.GENERAL, Urgency.LOW),
    ],
)
def test_the_rules_classify_category_and_urgency_and_say_which_fired(
    summary: str, body: str, category: Category, urgency: Urgency
) -> None:
    classified = _classified(summary, body)
    assert (classified.category, classified.urgency) == (category, urgency)
    assert all(rule.split(":")[0] in (category, urgency) for rule in classified.rules)


def test_keywords_inside_other_words_do_not_fire() -> None:
    # "downgrade" holds "down", "discharged" holds "charged": neither is a technical or billing ticket.
    assert _classified("Question about the downgrade", "discharged battery").category == Category.GENERAL


def test_extract_finds_order_ids_emails_and_skus_once_each() -> None:
    entities = extract(TICKET["summary"], TICKET["body"] + " Also order number 48213 and #48213.")
    assert entities.order_ids == ["48213", "ORD-48213"]
    assert entities.emails == ["ada@example.com"]
    assert entities.skus == ["sku-mug"]


def test_words_without_digits_are_not_order_ids() -> None:
    assert extract("My order is late", "order status please").order_ids == []


def test_urgent_tickets_go_to_escalations_and_others_to_their_categorys_team() -> None:
    assert route(_classified("Outage: API down"), None).team == "escalations"
    billing = route(_classified("Invoice is wrong"), Duplicate(ticket_id="T-1", similarity=0.8))
    assert billing.team == "billing" and "duplicate of T-1" in billing.reason


def test_similarity_is_the_share_of_content_words_in_common() -> None:
    assert similarity(["a", "b", "c"], ["b", "c", "d"]) == 0.5
    assert similarity([], []) == 0.0


@pytest.fixture
def ticket() -> dict[str, Any]:
    """TICKET with an id of its own: the dev server (shared by the tests) keeps every ticket's workflow."""
    return {**TICKET, "ticket_id": f"T-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
async def desk(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(settings)) as http, build_worker(dev_client, store, settings):
        yield http


async def _triage(http: httpx.AsyncClient, ticket: dict[str, Any], event_id: str) -> dict[str, Any]:
    response = await http.post("/api/events/ticket.created", json={"id": event_id, "payload": ticket})
    assert response.status_code == 202, response.text
    [run] = response.json()["runs"]
    return await wait_for_status(http, run["run_id"], "completed", "failed")


@both_databases
async def test_a_ticket_is_triaged_stage_by_stage_and_its_result_kept(
    desk: httpx.AsyncClient, store: RunStore, ticket: dict[str, Any]
) -> None:
    record = await _triage(desk, ticket, "evt-t-100")
    assert record["status"] == "completed" and record["progress"] == 100
    output = record["output"]
    assert (output["category"], output["urgency"], output["team"]) == ("billing", "urgent", "escalations")
    assert output["entities"]["order_ids"] == ["48213", "ORD-48213"]
    stages = [line["message"] for line in record["logs"]]
    for stage in ("normalising", "classifying", "extracting", "duplicate", "routing", "recording"):
        assert any(stage in message for message in stages), (stage, stages)
    kept = await TicketStore(store.db).get("default", ticket["ticket_id"])
    assert kept is not None and kept.team == "escalations" and kept.run_id == record["id"]
    assert kept.result == output


@both_databases
async def test_the_same_ticket_sent_again_is_the_same_run(
    desk: httpx.AsyncClient, ticket: dict[str, Any]
) -> None:
    first = await _triage(desk, ticket, "evt-a")
    again = await desk.post("/api/events/ticket.created", json={"id": "evt-b", "payload": ticket})
    assert again.status_code == 202 and again.json()["runs"][0]["run_id"] == first["id"]


@both_databases
async def test_a_ticket_like_an_open_one_of_the_tenant_is_marked_as_its_duplicate(
    desk: httpx.AsyncClient, ticket: dict[str, Any]
) -> None:
    await _triage(desk, ticket, "evt-1")
    same = {
        **ticket,
        "ticket_id": ticket["ticket_id"] + "-b",
        "summary": "charged twice for order #48213 (again)",
    }
    other = {
        **ticket,
        "ticket_id": ticket["ticket_id"] + "-c",
        "summary": "Where is my parcel?",
        "body": "tracking is stuck",
    }
    duplicate = (await _triage(desk, same, "evt-2"))["output"]["duplicate_of"]
    assert duplicate["ticket_id"] == ticket["ticket_id"] and duplicate["similarity"] >= 0.6
    assert (await _triage(desk, other, "evt-3"))["output"]["duplicate_of"] is None


async def test_a_ticket_of_another_tenant_is_refused_at_intake_naming_the_field(
    desk: httpx.AsyncClient, store: RunStore, ticket: dict[str, Any]
) -> None:
    foreign = {**ticket, "tenant": "globex"}
    response = await desk.post("/api/events/ticket.created", json={"id": "evt-x", "payload": foreign})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "payload", "tenant"]
    assert problem["msg"] == "names tenant 'globex', but this key sends for tenant 'default'"
    batch = await desk.post("/api/events", json={"events": [{"name": "ticket.created", "payload": foreign}]})
    assert batch.status_code == 422
    assert batch.json()["detail"][0]["loc"] == ["body", "events", 0, "payload", "tenant"]
    assert await store.count() == 0  # nothing recorded, nothing started


async def test_a_ticket_of_another_tenant_started_past_intake_fails_at_once_and_alerts(
    desk: httpx.AsyncClient,
    store: RunStore,
    dev_client: Client,
    settings: Settings,
    ticket: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The workflow's own check is the last line (a run started by hand, or by an older API)."""
    caplog.set_level(logging.ERROR)
    handle = await dev_client.start_workflow(
        TicketTriageWorkflow.run, TicketCreated(**{**ticket, "tenant": "globex"}),
        id=f"ticket-triage/default/{ticket['ticket_id']}", task_queue=settings.task_queue,
    )  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "names tenant 'globex' but was sent by tenant 'default'" in str(failed.value.cause)
    [run] = (await store.page(RunFilter(tenant="default", workflow="ticket-triage"))).runs
    record = await wait_for_status(desk, run.id, "failed")
    assert record["attempts"] == 1
    alerts = [r for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert alerts and record["id"] in alerts[0].getMessage()
    assert await TicketStore(store.db).get("default", ticket["ticket_id"]) is None


async def test_a_ticket_without_a_summary_is_refused_naming_the_field(desk: httpx.AsyncClient) -> None:
    payload = {k: v for k, v in TICKET.items() if k != "summary"}
    response = await desk.post("/api/events/ticket.created", json={"payload": payload})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "summary"]
