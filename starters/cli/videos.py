"""``longhaul videos``: the video pipeline's sample videos and uploads."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated

import typer

from longhaul.cli.common import (
    UrlOption,
    api_client,
    cli_settings,
    follow,
    print_outcome,
)

app = typer.Typer(help="The video pipeline: sample videos, uploads.", no_args_is_help=True)


@app.command("sample")
def videos_sample(
    out: Annotated[Path, typer.Argument(help="Where to write the MP4.")],
    seconds: Annotated[float, typer.Option(min=1, max=3600)] = 20,
    height: Annotated[int, typer.Option(help="1080, 720, 480 …", min=144, max=2160)] = 1080,
) -> None:
    """Make a sample video (test pattern and tone, a black and silent second in the middle)."""
    from activities.video.ffmpeg import make_sample

    width = height * 16 // 9 // 2 * 2
    middle = seconds / 2
    make_sample(
        out, width=width, height=height, seconds=seconds, quiet=(middle, middle + min(1, seconds / 4))
    )
    typer.echo(f"{out} ({width}x{height}, {seconds:g}s)")


@app.command("upload")
def videos_upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The video file.")],
    video_id: Annotated[str | None, typer.Option(help="Default: the file name without extension.")] = None,
    user_id: Annotated[str, typer.Option()] = "cli",
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", help="Follow the run with a progress bar.")
    ] = True,
    url: UrlOption = None,
) -> None:
    """Copy a video into the upload dir and send ``video.uploaded`` (for a stack on this machine)."""
    settings = cli_settings()
    video_id = video_id or re.sub(r"[^A-Za-z0-9_-]", "-", file.stem)[:100]
    name = f"{video_id}{file.suffix.lower()}"
    settings.upload_root.mkdir(parents=True, exist_ok=True)
    partial = settings.upload_root / f".{name}.part"
    shutil.copyfile(file, partial)
    partial.replace(settings.upload_root / name)
    payload = {"video_id": video_id, "user_id": user_id, "file_path": name}
    with api_client(url) as client:
        accepted = client.send_event("video.uploaded", payload)
        typer.echo(accepted.model_dump_json(indent=2))
        if not watch:
            return
        run = follow(client, accepted.runs[0].run_id)
    print_outcome(run)
