"""``longhaul orders``: the order pipeline's demo data."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from longhaul.cli.common import (
    cli_settings,
    open_database,
)
from longhaul.config import Settings

app = typer.Typer(help="The order pipeline.", no_args_is_help=True)


@app.command("seed")
def orders_seed(
    tenant: Annotated[str, typer.Option(help="The tenant whose catalog gets them.")] = "default",
) -> None:
    """Add the demo products (sku-book, sku-mug, sku-tee) to a tenant, if missing. ``longhaul dev`` seeds
    the default tenant only: a tenant of your own needs this before its orders find any stock."""
    added = asyncio.run(_seed(cli_settings(), tenant))
    typer.echo(f"{added} demo products added for tenant {tenant}")


async def _seed(settings: Settings, tenant: str) -> int:
    from activities.orders.store import seed_demo_products

    async with open_database(settings) as db:
        return await seed_demo_products(db, tenant)
