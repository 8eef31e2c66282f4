"""Runs pinned to their version: Temporal's Worker Deployments as longhaul's workers, CLI and release use it.

With ``worker_deployment`` and ``worker_build_id`` set, every worker of a process polls as that version
of the deployment, and every workflow it starts is **pinned**: it runs to its end on the workers of the
version that started it, whatever is deployed meanwhile. New runs go to the deployment's *current*
version, which the release sets once the new code has passed the replay gate (:func:`replay_gate` against
the recorded histories: the runs a patch would have to keep working). A version no run is pinned to any
more is *drained*: its workers can stop, and :func:`retire` deletes it. docs/upgrades.md says when to
patch and when to pin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.enums.v1 import VersionDrainageStatus
from temporalio.api.workflowservice.v1 import (
    DeleteWorkerDeploymentVersionRequest,
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from longhaul.config import Settings
from longhaul.server.worker import CarryRunUpdates, workflow_runner
from longhaul.temporal import data_converter
from longhaul.workflows.catalog import Catalog

IDENTITY = "longhaul versions"
REGISTERED_WAIT = 60.0  # seconds to wait for a new version's workers to poll before it can be current


def replayer(workflows: Sequence[type], short_steps: frozenset[str], settings: Settings) -> Replayer:
    """Replays as ``longhaul worker`` runs ``workflows``: its sandbox and its workflow interceptor (with the
    catalog's ``short_steps``). Without the 2 s deadlock detector: replay checks determinism, and a
    garbage-collector pause inside an activation tripped it once in CI."""
    return Replayer(
        workflows=workflows,
        data_converter=data_converter(settings),  # the deployment's: its payload codec reads what it wrote
        workflow_runner=workflow_runner(settings, workflows),
        interceptors=[CarryRunUpdates(short_steps)],
        debug_mode=True,
    )


async def replay_gate(catalog: Catalog, settings: Settings, paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Replay each recorded history (``*.json``) on this code; the ones that fail, with why (empty: the
    code may take the runs in flight). A history of a workflow this catalog no longer has fails too."""
    failed = []
    for path in paths:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        try:
            replaying = replayer(catalog.workflows, catalog.short_steps, settings)
            result = await replaying.replay_workflow(history, raise_on_replay_failure=False)
        except Exception as error:  # an unreadable file, an unknown workflow type
            failed.append((path, f"{type(error).__name__}: {error}"))
            continue
        if result.replay_failure is not None:
            failed.append((path, f"{type(result.replay_failure).__name__}: {result.replay_failure}"))
    return failed


@dataclass(frozen=True)
class VersionState:
    """One version of a deployment: its build id, whether it is current, its drainage."""

    build_id: str
    current: bool
    drainage: str  # "" (current or never current), "draining" (runs pinned to it are open), "drained"


async def describe(client: Client, deployment: str) -> list[VersionState]:
    """The deployment's versions, oldest first."""
    answer = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
    )
    current = answer.worker_deployment_info.routing_config.current_deployment_version.build_id
    names = {
        VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING: "draining",
        VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED: "drained",
    }
    summaries = sorted(
        answer.worker_deployment_info.version_summaries, key=lambda v: v.create_time.ToDatetime()
    )
    return [
        VersionState(v.deployment_version.build_id, v.deployment_version.build_id == current,
                     names.get(v.drainage_status, ""))
        for v in summaries
    ]  # fmt: skip


async def set_current(client: Client, deployment: str, build_id: str, wait: float = REGISTERED_WAIT) -> None:
    """Make ``build_id`` the version new runs go to (runs pinned to the one before stay there). Its
    workers must be polling: waits up to ``wait`` seconds for them."""
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace, deployment_name=deployment, build_id=build_id, identity=IDENTITY
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError as error:  # the version is not known until its workers poll
            if error.status != RPCStatusCode.NOT_FOUND and "not found" not in error.message:
                raise
            if loop.time() >= deadline:
                raise LookupError(
                    f"no workers of {deployment}:{build_id} polled within {wait:g} s: start them first "
                    f"({error.message})"
                ) from error
            await asyncio.sleep(0.5)


async def pinned_open(client: Client, deployment: str, build_id: str) -> int:
    """How many runs pinned to the version are still open (visibility: may lag a second)."""
    query = f"TemporalWorkerDeploymentVersion = '{deployment}:{build_id}' AND ExecutionStatus = 'Running'"
    return (await client.count_workflows(query)).count


async def drained(client: Client, deployment: str, build_id: str, wait: float = 0) -> int:
    """Wait up to ``wait`` seconds for no open run to be pinned to the version; how many still are."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        open_runs = await pinned_open(client, deployment, build_id)
        if not open_runs or loop.time() >= deadline:
            return open_runs
        await asyncio.sleep(2)


class NotDrainedError(RuntimeError):
    """The version still has runs pinned to it, or workers polling it."""


async def retire(client: Client, deployment: str, build_id: str) -> None:
    """Delete a drained version (no open run pinned to it; its workers stopped). Raises NotDrainedError
    saying which is not the case yet."""
    open_runs = await pinned_open(client, deployment, build_id)
    if open_runs:
        raise NotDrainedError(
            f"{deployment}:{build_id} has {open_runs} open run(s) pinned to it: let them finish"
        )
    request = DeleteWorkerDeploymentVersionRequest(
        namespace=client.namespace,
        deployment_version=VersionProto(deployment_name=deployment, build_id=build_id),
        skip_drainage=True,  # checked above, without waiting for the server's periodic drainage check
        identity=IDENTITY,
    )
    try:
        await client.workflow_service.delete_worker_deployment_version(request)
    except RPCError as error:
        if "pollers" in error.message:
            raise NotDrainedError(
                f"{deployment}:{build_id} still has workers polling: stop them first"
            ) from error
        raise
