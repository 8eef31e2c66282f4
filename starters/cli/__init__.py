"""This application's additions to the ``longhaul`` command (``[tool.longhaul] commands`` names
:data:`app`): the order pipeline's demo data, the video pipeline's samples and uploads, and the local payment
provider."""

import typer

from starters.cli import orders, payments, videos

app = typer.Typer()
app.add_typer(payments.app)
app.add_typer(orders.app, name="orders")
app.add_typer(videos.app, name="videos")
