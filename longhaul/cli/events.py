"""``longhaul events``: send events through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from longhaul.cli.common import (
    UrlOption,
    api_client,
    echo_json,
)

app = typer.Typer(help="Send events.", no_args_is_help=True)


@app.command("send")
def events_send(
    name: Annotated[str, typer.Argument(help="Event name, e.g. hello.")],
    data: Annotated[str, typer.Option("--data", help="Payload JSON, or @file.json.")] = "{}",
    event_id: Annotated[str | None, typer.Option("--id", help="Event id / idempotency key.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag for the runs (repeatable).")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before its runs may start.")] = None,
    ttl: Annotated[float | None, typer.Option(help="Seconds: a run not started by then expires.")] = None,
    priority: Annotated[int | None, typer.Option(min=1, max=5, help="1 starts first … 5 last.")] = None,
    idempotency_key_ttl: Annotated[
        float | None,
        typer.Option(help="Seconds --id returns its run; after that the same id makes a new one."),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Send an event and print the runs it reached (started, signalled, or joined)."""
    try:
        raw = Path(data[1:]).read_text() if data.startswith("@") else data
        payload = json.loads(raw)
    except (OSError, json.JSONDecodeError) as error:
        typer.echo(f"--data: {error}", err=True)
        raise typer.Exit(2) from error
    with api_client(url) as client:
        options = {
            "delay": delay,
            "ttl": ttl,
            "priority": priority,
            "idempotency_key_ttl": idempotency_key_ttl,
        }
        sent = client.send_event(
            name, payload, id=event_id, tags=tag, options={k: v for k, v in options.items() if v is not None}
        )
        echo_json(sent)
