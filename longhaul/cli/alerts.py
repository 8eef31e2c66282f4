"""``longhaul alerts``: where this tenant hears of failed and expired runs and timed-out waitpoints."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from longhaul.cli.common import UrlOption, api_client, echo_json
from longhaul.models import AlertKind

app = typer.Typer(help="Failure alerts: signed webhooks or the log (docs/alerts.md).", no_args_is_help=True)


@app.command("add")
def alerts_add(
    webhook: Annotated[str | None, typer.Option(help="POST alerts here (signed); unset: to the log.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's runs.")] = None,
    kind: Annotated[
        list[AlertKind] | None, typer.Option(help="Only these kinds (repeat); default: all.")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Add a destination; a webhook's signing secret is printed this once."""
    with api_client(url) as client:
        echo_json(client.alerts.add(webhook, workflow=workflow, kinds=[k.value for k in kind or []] or None))


@app.command("list")
def alerts_list(url: UrlOption = None) -> None:
    """The tenant's destinations, as JSON."""
    with api_client(url) as client:
        typer.echo(
            json.dumps(
                [d.model_dump(mode="json", exclude={"secret"}) for d in client.alerts.list()], indent=2
            )
        )


@app.command("remove")
def alerts_remove(destination_id: str, url: UrlOption = None) -> None:
    """Stop sending alerts to a destination."""
    with api_client(url) as client:
        client.alerts.remove(destination_id)
    typer.echo(f"removed {destination_id}")
