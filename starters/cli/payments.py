"""``longhaul payments``: the local payment provider the order pipeline pays through in development and
tests (``longhaul dev`` starts it: the order pipeline declares it as a dev service)."""

from __future__ import annotations

from typing import Annotated

import typer

from longhaul.cli.common import DataDir, cli_settings

app = typer.Typer()  # its command is the root's


@app.command()
def payments(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 8010).")] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Where confirmations are sent (default: the API's /api/webhooks/payments)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the local payment provider (for development and tests). Its charges, idempotency keys and
    ledger are kept in <data dir>/payments.db, so a restart forgets nothing."""
    import uvicorn

    from activities.orders.settings import OrderSettings
    from providers.payments import create_provider

    settings = cli_settings(data_dir=data_dir)
    orders = OrderSettings.of(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_provider(
        secret=orders.payments_webhook_secret,
        webhook_url=webhook_url or f"{settings.api_url}/api/webhooks/payments",
        database=(settings.data_dir / "payments.db").resolve(),
    )
    uvicorn.run(app, host=host, port=port or orders.dev_payments_port, log_config=None, access_log=False)
