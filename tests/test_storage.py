"""Run records in real SQLite: dedupe by constraint, monotonic status, idempotent updates, pagination."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from activities.orders.models import OrderLine
from activities.orders.store import InsufficientStockError, OrderStore, Product
from longhaul.db import Database, utcnow
from longhaul.keys import ApiKeyRow, KeyStore
from longhaul.models import RunStatus, RunUpdate
from longhaul.storage import RunFilter, RunStore
from tests.postgres import both_databases

pytestmark = both_databases


def _run(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": f"run_{n}",
        "tenant": "t1",
        "workflow": "hello",
        "workflow_id": f"hello/t1/e{n}",
        "event": "hello",
        "event_id": f"e{n}",
        "input": {"name": "x"},
        **extra,
    }


async def test_concurrent_creates_of_one_run_insert_once(store: RunStore) -> None:
    results = await asyncio.gather(*(store.adopt(**_run(1)) for _ in range(10)))
    assert sum(inserted for _, inserted in results) == 1
    assert {record.id for record, _ in results} == {"run_1"}
    assert await store.count() == 1


async def test_a_final_status_is_never_changed_again(store: RunStore) -> None:
    await store.adopt(**_run(1))
    assert await store.apply(RunUpdate(run_id="run_1", status=RunStatus.COMPLETED, output=1), op_id="a")
    late = RunUpdate(run_id="run_1", status=RunStatus.RUNNING, progress=10, log="late")
    assert not await store.apply(late, op_id="b")
    record = await store.get("run_1")
    assert record is not None
    assert (record.status, record.progress, record.output, record.logs) == (RunStatus.COMPLETED, 100, 1, [])


async def test_a_retried_update_logs_its_line_once(store: RunStore) -> None:
    await store.adopt(**_run(1))
    update = RunUpdate(run_id="run_1", progress=40, stage="transcoding", log="40% transcoding")
    assert await store.apply(update, op_id="wf-run/3")
    assert await store.apply(update, op_id="wf-run/3")  # the activity's retry
    record = await store.get("run_1")
    assert record is not None
    assert [line.message for line in record.logs] == ["40% transcoding"]
    assert (record.progress, record.stage) == (40, "transcoding")


async def test_started_at_is_the_first_start_not_a_retry(store: RunStore) -> None:
    await store.adopt(**_run(1))
    await store.apply(RunUpdate(run_id="run_1", status=RunStatus.RUNNING, attempt=1), op_id="a")
    first = await store.get("run_1")
    await asyncio.sleep(0.01)
    await store.apply(RunUpdate(run_id="run_1", status=RunStatus.RUNNING, attempt=2), op_id="b")
    second = await store.get("run_1")
    assert first is not None and second is not None
    assert second.started_at == first.started_at
    assert second.attempts == 2


async def test_listing_is_scoped_to_the_tenant_and_pages_without_gaps(store: RunStore) -> None:
    for n in range(7):
        await store.adopt(**_run(n, tags=["a"] if n < 3 else ["b", "a"]))
    await store.adopt(**{**_run(99), "tenant": "t2", "workflow_id": "hello/t2/e99"})
    seen, cursor = [], None
    while True:
        page = await store.page(RunFilter(tenant="t1"), limit=3, cursor=cursor)
        seen += [run.id for run in page.runs]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [f"run_{n}" for n in reversed(range(7))]
    tagged_b = await store.page(RunFilter(tenant="t1", tag="b"))
    assert [run.tags for run in tagged_b.runs] == [["a", "b"]] * 4
    assert await store.get("run_99", tenant="t1") is None


async def test_a_failed_transaction_undoes_what_its_savepoint_wrote(store: RunStore) -> None:
    """SQLite's driver commits at a savepoint's release unless told otherwise; a rollback must undo all."""
    orders = OrderStore(store.db)
    await orders.upsert_products("t1", [Product(product_id="p", name="P", price=Decimal("1.00"), stock=1)])
    line = OrderLine(product_id="p", quantity=2, unit_price=Decimal("1.00"), amount=Decimal("2.00"))
    with pytest.raises(InsufficientStockError):
        await orders.reserve("t1", "op-1", "o-1", [line])
    assert not await orders.release("t1", "op-1")  # the reservation row was rolled back with the rest
    assert (await orders.products("t1", ["p"]))["p"].stock == 1
    line.quantity = 1
    assert await orders.reserve("t1", "op-1", "o-1", [line])
    assert not await orders.reserve("t1", "op-1", "o-1", [line])  # a retry reserves nothing more
    assert (await orders.products("t1", ["p"]))["p"].stock == 0
    assert await orders.release("t1", "op-1")
    assert not await orders.release("t1", "op-1")
    assert (await orders.products("t1", ["p"]))["p"].stock == 1


async def test_a_cached_key_costs_no_query_but_a_revocation_anywhere_ends_it_at_once(
    store: RunStore,
) -> None:
    cached = KeyStore(store.db, cache_seconds=60)
    other_db = Database(store.db.engine.url.render_as_string(hide_password=False))
    other_process = KeyStore(other_db)  # its own engine and connections, as `longhaul keys revoke` has
    try:
        async with cached.watching():
            for _ in range(100):  # PostgreSQL: the cache is trusted once it LISTENs
                if store.db.is_sqlite or cached._listening:
                    break
                await asyncio.sleep(0.05)
            stale, stale_key = await cached.create("acme", "cache")
            assert await cached.tenant_of(stale_key) == "acme"
            async with other_db.sessions.begin() as session:  # changed behind longhaul's back: unseen
                await session.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == stale.id).values(revoked_at=utcnow())
                )
            assert await cached.tenant_of(stale_key) == "acme"  # answered from memory: no query
            key_info, key = await cached.create("acme", "cache")
            assert await cached.tenant_of(key) == "acme"
            await other_process.revoke(key_info.id)
            for _ in range(40):  # SQLite: the next request; PostgreSQL: as soon as NOTIFY arrives
                if await cached.tenant_of(key) is None:
                    break
                assert not store.db.is_sqlite, "SQLite: refused at the very next request"
                await asyncio.sleep(0.05)
            assert await cached.tenant_of(key) is None
            assert await cached.tenant_of(stale_key) is None  # the whole cache went with it
            again, second = await cached.create("acme", "cache")
            assert await cached.tenant_of(second) == "acme"
            await cached.revoke(again.id)
            assert await cached.tenant_of(second) is None  # revoked by this process: at once
    finally:
        await other_db.close()


async def test_a_process_that_cannot_see_revocations_trusts_no_cache(store: RunStore) -> None:
    """On PostgreSQL a KeyStore that does not LISTEN (a CLI command) checks every key in the database."""
    unwatched = KeyStore(store.db, cache_seconds=60)
    info, key = await unwatched.create("acme", "cache")
    assert await unwatched.tenant_of(key) == "acme"
    await KeyStore(store.db).revoke(info.id)
    assert await unwatched.tenant_of(key) is None


async def test_runs_are_found_by_business_key_part_in_any_case_by_id_and_by_the_run_that_started_them(
    store: RunStore,
) -> None:
    await store.adopt(**_run(1, business_key="Invoice-2026_0042"))
    await store.adopt(**_run(2, business_key="invoice-2026-0043"))
    await store.adopt(**_run(3, business_key="receipt-%_"))
    await store.adopt(**{**_run(4), "event_id": "run_1.completed", "workflow_id": "notice/t1/x"})
    await store.adopt(**_run(5, replay_of="run_1"))
    await store.adopt(**{**_run(6), "event_id": "run_10.completed", "workflow_id": "notice/t1/y"})

    async def found(**where: Any) -> list[str]:
        return sorted(run.id for run in (await store.page(RunFilter(tenant="t1", **where))).runs)

    assert await found(search="INVOICE-2026") == ["run_1", "run_2"]
    assert await found(search="2026_") == ["run_1"]  # _ and % are literal text, not wildcards
    assert await found(search="%") == ["run_3"]
    assert await found(search="run_2") == ["run_2"]  # a run id, whole
    assert await found(search="e3") == ["run_3"]  # an event id, whole
    assert await found(children_of="run_1") == ["run_4", "run_5"]  # its event's run, its replay
    assert await found(ids=("run_2", "run_3", "run_99")) == ["run_2", "run_3"]


async def test_the_overview_is_counted_per_bucket_workflow_and_status_with_durations(store: RunStore) -> None:
    from datetime import timedelta

    from longhaul.db import utcnow

    for n, status in enumerate(["completed", "completed", "failed", "running"]):
        await store.adopt(**_run(n, workflow="hello" if n < 3 else "video"))
        await store.apply(RunUpdate(run_id=f"run_{n}", status=RunStatus.RUNNING, attempt=1), op_id=f"s{n}")
        if status != "running":
            await asyncio.sleep(0.05 * (n + 1))
            await store.apply(RunUpdate(run_id=f"run_{n}", status=RunStatus(status)), op_id=f"e{n}")
    await store.adopt(**{**_run(9), "tenant": "t2", "workflow_id": "hello/t2/e9"})
    start = utcnow() - timedelta(minutes=7, seconds=30)
    buckets = await store.created_per_bucket("t1", start, timedelta(minutes=5))
    assert sorted((status, n) for _, status, n in buckets) == [
        (RunStatus.COMPLETED, 2), (RunStatus.FAILED, 1), (RunStatus.RUNNING, 1),
    ]  # fmt: skip
    # 7.5 minutes after the start, less the test's time: the second bucket
    assert {index for index, _, _ in buckets} == {1}
    assert sorted(await store.per_workflow("t1", start)) == [
        ("hello", RunStatus.COMPLETED, 2), ("hello", RunStatus.FAILED, 1), ("video", RunStatus.RUNNING, 1),
    ]  # fmt: skip
    took = await store.durations("t1", start)
    assert [workflow for workflow, _ in took] == ["hello", "hello"]  # completed ones only
    assert all(0.03 < seconds < 5 for _, seconds in took), took
