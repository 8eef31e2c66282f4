"""The ``longhaul`` command: one module per command group (``longhaul runs`` → :mod:`.runs`), and the
application's additions (the ``commands`` setting, :func:`command_line`).

Process exit is made deterministic here: the Temporal SDK can crash during interpreter finalization
(sdk-python #300: Rust threads vs. a finalizing runtime), turning a successful command into exit 139.
So :func:`main` flushes and leaves with ``os._exit`` once the command has shut everything down.
"""

from __future__ import annotations

import os
import sys

import typer
from pydantic import ValidationError

from longhaul.cli import (
    alerts,
    db,
    events,
    init,
    keys,
    queues,
    runs,
    schedules,
    stack,
    tenant_schedules,
    versions,
    waitpoints,
    webhooks,
)
from longhaul.config import Settings, load_settings
from longhaul.logs import configure_logging
from longhaul.project import import_object

app = typer.Typer(
    name="longhaul",
    help="Durable workflows for long-running processes, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app)
app.add_typer(init.app)
app.add_typer(queues.app, name="queues")
for name, group in (
    ("events", events),
    ("runs", runs),
    ("waitpoints", waitpoints),
    ("alerts", alerts),
    ("schedules", schedules),
    ("tenant-schedules", tenant_schedules),
    ("keys", keys),
    ("db", db),
    ("webhooks", webhooks),
    ("versions", versions),
):
    app.add_typer(group.app, name=name)


def command_line(settings: Settings) -> typer.Typer:
    """The ``longhaul`` command with the application's additions (the ``commands`` setting) joined."""
    if settings.commands is not None:
        additions = import_object(settings.commands)
        if not isinstance(additions, typer.Typer):
            raise ValueError(f"commands '{settings.commands}' is not a typer.Typer")
        if additions not in [group.typer_instance for group in app.registered_groups]:
            app.add_typer(additions)
    return app


def main() -> None:
    """Entry point of the ``longhaul`` script: run the command, then exit without interpreter teardown."""
    status_code = 0
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        command_line(settings)(standalone_mode=True)
    except ValidationError as error:
        print(f"longhaul: invalid settings: {error}", file=sys.stderr)
        status_code = 2
    except SystemExit as exit_:
        status_code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        status_code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        status_code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status_code)
