"""``longhaul keys``: API keys, straight in app storage (no API needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from longhaul.cli.common import (
    T,
    cli_settings,
    open_database,
)
from longhaul.keys import KeyStore, Role

app = typer.Typer(help="API keys (one tenant each).", no_args_is_help=True)


@app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    role: Annotated[
        Role, typer.Option(help="admin: also acts on what belongs to no tenant (global schedules).")
    ] = Role.TENANT,
) -> None:
    """Create an API key. It is printed once and stored only as a hash: keep it."""
    key, secret = asyncio.run(_keys(lambda keys: keys.create(tenant, name, role)))
    typer.echo(secret)
    typer.echo(
        f"{key.role} key {key.id} for tenant {key.tenant} "
        f"(shown once; revoke with: longhaul keys revoke {key.id})",
        err=True,
    )


@app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """List keys (ids, tenants, names; never the keys themselves)."""
    for key in asyncio.run(_keys(lambda keys: keys.list(tenant))):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.tenant}  {key.role}  {state}  {key.name}")


@app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it are refused from now on."""
    if not asyncio.run(_keys(lambda keys: keys.revoke(key_id))):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


async def _keys(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async with open_database(cli_settings()) as db:
        return await action(KeyStore(db))
