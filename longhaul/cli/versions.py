"""``longhaul versions``: the workers' versions (Temporal Worker Deployments) and a release's rollout: the
replay gate, the current version, and retiring a drained one (docs/upgrades.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from longhaul.cli.common import cli_settings, with_temporal
from longhaul.config import Settings

app = typer.Typer(help="Worker versions: runs pinned to the version that started them.", no_args_is_help=True)

DeploymentOption = Annotated[
    str | None,
    typer.Option("--deployment", help="The Worker Deployment (default: $LONGHAUL_WORKER_DEPLOYMENT)."),
]


def _deployment(given: str | None, settings: Settings) -> str:
    deployment = given or settings.worker_deployment
    if deployment is None:
        typer.echo("no Worker Deployment: pass --deployment or set LONGHAUL_WORKER_DEPLOYMENT", err=True)
        raise typer.Exit(2)
    return deployment


@app.command("show")
def versions_show(deployment: DeploymentOption = None) -> None:
    """The deployment's versions, oldest first: current, draining (runs pinned to it are open) or drained."""
    from longhaul.server.versions import describe

    settings = cli_settings()
    name = _deployment(deployment, settings)
    for version in asyncio.run(with_temporal(settings, lambda client: describe(client, name))):
        state = "current" if version.current else version.drainage or "-"
        typer.echo(f"{name}:{version.build_id}\t{state}")


@app.command("gate")
def versions_gate(
    histories: Annotated[Path, typer.Argument(help="A folder of recorded histories (*.json).")],
) -> None:
    """The replay gate: replay every recorded history on this code (the catalog's workflows, as a worker
    runs them); exit 1 naming each that fails. A release makes its version current only after it passes."""
    from longhaul.server.versions import replay_gate
    from longhaul.workflows.catalog import load_catalog

    settings = cli_settings()
    paths = sorted(histories.glob("*.json"))
    if not paths:
        typer.echo(f"no histories (*.json) in {histories}", err=True)
        raise typer.Exit(2)
    failed = asyncio.run(replay_gate(load_catalog(settings.catalog), settings, paths))
    for path, why in failed:
        typer.echo(f"{path.name}: {why}", err=True)
    if failed:
        typer.echo(f"{len(failed)} of {len(paths)} histories do not replay on this code", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(paths)} histories replay on this code")


@app.command("current")
def versions_current(
    build_id: Annotated[str, typer.Argument(help="The version new runs go to (its workers must poll).")],
    deployment: DeploymentOption = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for its workers to poll.")] = 60,
) -> None:
    """Make a version current: new runs go to it; runs pinned to the one before finish there."""
    from longhaul.server.versions import set_current

    settings = cli_settings()
    name = _deployment(deployment, settings)
    try:
        asyncio.run(with_temporal(settings, lambda client: set_current(client, name, build_id, wait)))
    except LookupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(f"{name}:{build_id} is current")


@app.command("drained")
def versions_drained(
    build_id: str,
    deployment: DeploymentOption = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for it to drain (0: look once).")] = 0,
) -> None:
    """Exit 0 once no open run is pinned to the version (its workers may stop), else 1 saying how many."""
    from longhaul.server.versions import drained

    settings = cli_settings()
    name = _deployment(deployment, settings)
    open_runs = asyncio.run(with_temporal(settings, lambda client: drained(client, name, build_id, wait)))
    if open_runs:
        typer.echo(f"{name}:{build_id} has {open_runs} open run(s) pinned to it", err=True)
        raise typer.Exit(1)
    typer.echo(f"{name}:{build_id} is drained")


@app.command("retire")
def versions_retire(build_id: str, deployment: DeploymentOption = None) -> None:
    """Delete a drained version whose workers have stopped."""
    from longhaul.server.versions import NotDrainedError, retire

    settings = cli_settings()
    name = _deployment(deployment, settings)
    try:
        asyncio.run(with_temporal(settings, lambda client: retire(client, name, build_id)))
    except NotDrainedError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(f"retired {name}:{build_id}")
