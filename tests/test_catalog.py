"""The catalog collects the pipelines and refuses declarations that would collide."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from activities.hello import HELLO
from longhaul.config import Settings
from longhaul.filters import FilterError, compile_filter
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.maintenance import LONGHAUL
from longhaul.workflows.pipeline import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    Pipeline,
    Subscription,
    TaskQueue,
    Webhook,
)
from workflows.catalog import CATALOG
from workflows.hello import HelloWorkflow
from workflows.orders import ORDERS
from workflows.video import VIDEO


def test_the_catalog_collects_every_pipelines_parts_with_longhauls_own_first() -> None:
    assert CATALOG.pipelines[0] is LONGHAUL
    assert [p.name for p in CATALOG.pipelines] == [
        "longhaul",
        "hello",
        "video",
        "digests",
        "cleanup",
        "orders",
        "tickets",
        "demo",
    ]
    assert list(CATALOG.queues) == [None, "media", "payments"]
    assert {"runs", "api_keys", "videos", "products", "tickets"} <= {t.name for t in CATALOG.tables()}
    assert list(CATALOG.webhooks) == ["payments"]
    assert CATALOG.task_queue_roles("video-processing") == ["media"]
    assert CATALOG.task_queue_roles("hello") == []
    assert {"ticket.created", "order.created", "video.processing.completed"} <= set(CATALOG.events)
    assert "order.cancelled" in CATALOG.events  # declared by the order subscription's cancel_on
    assert [s.workflow_name for s, _ in CATALOG.cancellers("order.cancelled")] == ["order-processing"]


@pytest.mark.parametrize(
    ("flow", "refusal"),
    [
        (
            {"debounce": Debounce(timedelta(seconds=1)), "batch": Batch(2, timedelta(seconds=1))},
            "do not go together",
        ),
        (
            {"batch": Batch(2, timedelta(seconds=1)), "once_per_key": True, "key": "name"},
            "once per key already",
        ),
        ({"batch": Batch(0, timedelta(seconds=1))}, "at least one event"),
        ({"concurrency": (Concurrency(1, key="nope"),)}, "no field 'nope'"),
        ({"cancel_on": (CancelOn(HELLO, "nope"),)}, "no field 'nope'"),
        ({"filter": 'payload.nme == "x"'}, r"names payload.nme: no such field \(fields: greeting, name"),
        ({"filter": 'payload.name.first == "x"'}, None),  # a str has no fields, but CEL says so at run time
        ({"filter": "payload.name =="}, "does not compile"),
        ({"filter": '"payload.nope" == payload.name'}, None),  # a string, not a field
    ],
)
def test_flow_control_that_cannot_work_is_refused_when_the_catalog_is_built(
    flow: dict[str, Any], refusal: str | None
) -> None:
    pipeline = Pipeline(name="p", entries=(Subscription(HELLO, HelloWorkflow, **flow),))
    if refusal is None:
        Catalog(pipeline)  # accepted
        return
    with pytest.raises(ValueError, match=refusal):
        Catalog(pipeline)


def test_schedules_come_from_the_pipelines_that_declare_them(tmp_path: Path) -> None:
    ids = [s.id for s in CATALOG.schedules(Settings(data_dir=tmp_path))]
    assert ids == ["reconcile-runs", "cleanup-old-videos"]


def test_a_pipeline_listed_twice_counts_once() -> None:
    assert Catalog(VIDEO, VIDEO, LONGHAUL).pipelines == (LONGHAUL, VIDEO)


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (
            Pipeline("copy", queues=(TaskQueue(lambda resources: [], role="media"),)),
            "task queue role 'media'",
        ),
        (
            Pipeline("copy", webhooks=(Webhook("payments", lambda s: "x", lambda body: "ignored"),)),
            "webhook source 'payments' is declared twice",
        ),
        (Pipeline("copy", tables=VIDEO.tables), "table 'videos' is declared twice"),
        (Pipeline("copy", schedules=LONGHAUL.schedules), "schedule 'reconcile-runs' is declared twice"),
    ],
)
def test_what_two_pipelines_declare_alike_is_refused_naming_it(pipeline: Pipeline, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Catalog(VIDEO, ORDERS, pipeline).schedules(Settings())


def test_a_filter_is_checked_into_nested_models_and_left_to_cel_inside_a_dict() -> None:
    class Address(BaseModel):
        city: str

    class Shipped(BaseModel):
        address: Address | None = None
        labels: dict[str, str] = {}

    compile_filter('payload.address.city == "Paris" && payload.labels.gift == "yes"', Shipped)
    with pytest.raises(FilterError, match=r"names payload.address.town: no such field \(fields: city\)"):
        compile_filter('payload.address.town == "Paris"', Shipped)
