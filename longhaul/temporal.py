"""The one place that builds Temporal clients, so every process speaks with the same data converter."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior, SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from longhaul.codec import CodecError, EncryptionCodec, parse_keys
from longhaul.config import Settings
from longhaul.telemetry import client_interceptors, runtime

# Typed search attributes every longhaul workflow carries, so runs can be filtered in the Temporal UI.
TENANT = SearchAttributeKey.for_keyword("LonghaulTenant")
EVENT = SearchAttributeKey.for_keyword("LonghaulEvent")
RUN_ID = SearchAttributeKey.for_keyword("LonghaulRunId")
BUSINESS_KEY = SearchAttributeKey.for_keyword("LonghaulKey")
TAGS = SearchAttributeKey.for_keyword_list("LonghaulTags")  # the run's tags: LonghaulTags = 'user:42'
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (TENANT, EVENT, RUN_ID, BUSINESS_KEY, TAGS)
# Memo key of the task queues a workflow's activities run on, by role ({"media": "longhaul-media"}).
TASK_QUEUES_MEMO = "longhaul.task_queues"

# The embedded server's SQLite in WAL mode with synchronous=normal (see docs/configuration.md).
SQLITE_FAST = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")

# What the embedded server runs with beside its defaults (dynamic config):
# - Task priority (express orders first) needs the server's priority-aware matcher, and is strict only within
#   one task-queue partition (each of the default 4 orders its own backlog). The embedded dev server runs
#   one partition per queue, which is plenty for one machine. Clusters keep their partitions: there,
#   priority orders each partition's backlog, which under load is what matters.
# - Pausing one started run (``longhaul runs pause``) is the server's workflow pause, off by default in
#   1.29+ servers: without it the API answers 409 for a started run (docs/events.md "Pause one run").
SERVER_FEATURES = (
    "--dynamic-config-value", "matching.useNewMatcher=true",
    "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
    "--dynamic-config-value", "frontend.WorkflowPauseEnabled=true",
)  # fmt: skip


# How long a call to Temporal made for a request (a start, a cancel, a pause) may take before it is 503.
RPC_TIMEOUT = timedelta(seconds=10)

_UNAVAILABLE = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means "Temporal cannot be reached now, try again later".

    A lazily connected client reports a refused first connection as a plain RuntimeError from the
    SDK's bridge ("Failed client connect"); later failures are RPCErrors with a transient status. A call
    that outlives its own ``rpc_timeout`` fails in the client as CANCELLED "Timeout expired", not as
    DEADLINE_EXCEEDED: a server too busy to answer in time, which a burst on a slow machine showed (it
    was a 500).
    """
    if isinstance(error, RPCError):
        timed_out = error.status == RPCStatusCode.CANCELLED and str(error) == "Timeout expired"
        return error.status in _UNAVAILABLE or timed_out
    return isinstance(error, RuntimeError) and str(error).startswith("Failed client connect")


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """Connect to the configured Temporal server with the pydantic data converter.

    A client is bound to the event loop and process that created it: create one per process after any
    fork, on the long-lived loop (the API's lifespan, the worker's main). ``lazy`` defers the connection
    to the first call, so a process can start (and answer 503) while Temporal is down.
    """
    converter = data_converter(settings)
    return await Client.connect(
        **settings.temporal_connect_config(),
        data_converter=converter,
        lazy=lazy,
        runtime=runtime(settings.metrics_bind),
        interceptors=client_interceptors(settings),
        # Run updates travel in activity headers: encrypted like every other payload when a codec is set.
        header_codec_behavior=HeaderCodecBehavior.CODEC
        if converter.payload_codec
        else HeaderCodecBehavior.NO_CODEC,
    )


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The encryption codec if payload keys are configured."""
    if not settings.payload_keys:
        return None
    keys = parse_keys(settings.payload_keys)
    active = settings.payload_key_id or (next(iter(keys)) if len(keys) == 1 else None)
    if active is None:
        raise CodecError(
            "several payload keys are configured: name the active one in LONGHAUL_PAYLOAD_KEY_ID"
        )
    return EncryptionCodec(keys, active)


def data_converter(settings: Settings) -> DataConverter:
    """pydantic payloads, encrypted when payload keys are configured."""
    codec = payload_codec(settings)
    return (
        dataclasses.replace(pydantic_data_converter, payload_codec=codec)
        if codec
        else pydantic_data_converter
    )


def search_attribute_flag(key: SearchAttributeKey[Any]) -> str:
    """``temporal server start-dev --search-attribute`` value of ``key`` (``LonghaulTags=KeywordList``)."""
    words = SearchAttributeIndexedValueType(key.indexed_value_type).name.split("_")
    return f"{key.name}={''.join(word.capitalize() for word in words)}"


async def ensure_search_attributes(client: Client) -> None:
    """Register longhaul's search attributes on the namespace; already registered ones are left alone.

    Self-hosted and dev servers accept this through the operator service. Where the caller may not
    (Temporal Cloud registers them per namespace in its console or ``tcld``), the error says what to do.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    namespace = client.namespace
    wanted = {key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in SEARCH_ATTRIBUTES}
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {name: kind for name, kind in wanted.items() if name not in listed.custom_attributes}
    except RPCError as error:
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        missing = wanted  # the time-skipping test server cannot list them; adding twice is refused
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        except RPCError as error:
            if error.status != RPCStatusCode.ALREADY_EXISTS:
                raise


async def signal_once(client: Client, workflow_id: str, signal: str, arg: Any, *, request_id: str) -> None:
    """Signal a workflow at most once per ``request_id``.

    The server drops a signal whose request id the workflow has already seen, so a redelivered event
    (a client's retry, a webhook sent twice) signals once. The SDK's ``handle.signal`` draws a random
    request id, hence this direct call; the argument goes through the client's data converter as usual.
    """
    from temporalio.api.common.v1 import Payloads, WorkflowExecution
    from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest

    payloads = await client.data_converter.encode([arg])
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            signal_name=signal,
            input=Payloads(payloads=payloads),
            identity=client.identity,
            request_id=request_id,
        ),
        retry=True,
    )
