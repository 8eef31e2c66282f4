"""The catalog reads workflow names and signal schemas from longhaul's own declarations, not from the
SDK's private structures."""

from __future__ import annotations

import pytest
from temporalio import workflow

from activities.hello import HELLO
from activities.orders.models import CustomerCancel, PaymentConfirmed
from longhaul.workflows import registry
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import Pipeline, Subscription, signal_names, signal_schema, workflow_name
from workflows.orders import OrderWorkflow


def test_names_and_signal_schemas_come_from_the_declaration() -> None:
    assert workflow_name(OrderWorkflow) == "order-processing"
    assert signal_names(OrderWorkflow) == ["cancel", "payment.confirmed"]
    assert signal_schema(OrderWorkflow, "payment.confirmed") is PaymentConfirmed
    assert signal_schema(OrderWorkflow, "cancel") is CustomerCancel  # ``CustomerCancel | None``: optional
    with pytest.raises(KeyError):
        signal_schema(OrderWorkflow, "nope")


@workflow.defn(name="plain")
class Plain:
    @workflow.run
    async def run(self) -> None: ...


@registry.defn(name="declared")
class Declared:
    @registry.signal(name="poke")
    async def poke(self) -> None: ...

    @workflow.run
    async def run(self) -> None: ...


def test_a_workflow_declared_only_with_the_sdk_is_refused_by_the_catalog_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"Plain is not declared with longhaul\.sdk\.defn"):
        Catalog(Pipeline("plain", entries=(Subscription(HELLO, Plain),)))


def test_the_registry_decorators_still_define_the_workflow_for_the_sdk() -> None:
    assert registry.declared(Declared).name == "declared" and registry.declared(Declared).signals == ["poke"]
    assert (
        Catalog(Pipeline("declared", entries=(Subscription(HELLO, Declared),))).workflow("declared")
        is Declared
    )
