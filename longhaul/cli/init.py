"""``longhaul init DIR``: start an application of one's own (longhaul.scaffold)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from longhaul.scaffold import EXAMPLES, ScaffoldError, scaffold

app = typer.Typer()  # its command is the root's
CHOICES = "; ".join(f"{key}: {example.title}" for key, example in EXAMPLES.items())


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Where to make it (empty or new).")],
    example: Annotated[
        str,
        typer.Option(
            help="The example pipeline: " + "; ".join(f"{k}: {e.title}" for k, e in EXAMPLES.items())
        ),
    ] = "hello",
    name: Annotated[str | None, typer.Option(help="The project's name (default: the folder's).")] = None,
) -> None:
    """Make a new application: pyproject.toml, workflows/, activities/, starters/, tests/, migrations/,
    deploy/, a Makefile (make dev, make test), .ci/run and a README, with one example pipeline."""
    project = name or folder.resolve().name.lower().replace("_", "-")
    try:
        written = scaffold(folder, name=project, example=example)
    except ScaffoldError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(f"{project}: {len(written)} files in {folder} (example: {example})")
    typer.echo(f"next: cd {folder} && make test && make dev")
