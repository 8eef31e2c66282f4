"""Reload in ``longhaul dev``: the application's source is watched (watchfiles), and a change restarts the
worker, and the API too when the catalog changed (an event, a workflow, a queue, a waitpoint kind, ...).

Before anything is restarted, the changed code is imported in a fresh process (``python -m
longhaul.server.reload``): an import or syntax error is printed with its file and line, and the stack keeps
serving the code it has until the file is fixed. The new worker starts beside the old one, which leaves
gracefully once the new one polls: runs in flight carry on (a run waiting on a timer is picked up by the
new worker, with the new code).
"""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from pathlib import Path

from watchfiles import Change, DefaultFilter

from longhaul.config import load_settings
from longhaul.project import app_dir
from longhaul.workflows.catalog import Catalog, load_catalog
from longhaul.workflows.pipeline import signal_names, workflow_name


class SourceFilter(DefaultFilter):
    """The application's Python files: not its tests, its virtual environments or its data."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            ignore_dirs=(*DefaultFilter.ignore_dirs, "tests", ".longhaul", "venv", "build", "dist"),
            ignore_paths=[data_dir.resolve()],
        )

    def __call__(self, change: Change, path: str) -> bool:
        return path.endswith(".py") and super().__call__(change, path)


def fingerprint(catalog: Catalog) -> str:
    """What the API serves of the catalog, as a hash: events and their schemas, workflows and their
    signals, webhooks, waitpoint kinds and task queues. The API restarts when it changes."""
    described = {
        "events": {name: event.schema.model_json_schema() for name, event in sorted(catalog.events.items())},
        "workflows": {workflow_name(w): signal_names(w) for w in catalog.workflows},
        "subscriptions": [(s.event.name, s.workflow_name) for s in catalog.subscriptions],
        "routes": [(r.event.name, r.workflow_name, r.signal_name) for r in catalog.routes],
        "webhooks": sorted(catalog.webhooks),
        "waitpoints": {
            k: kind.output.model_json_schema() for k, kind in sorted(catalog.waitpoint_kinds.items())
        },
        "queues": sorted(str(role) for role in catalog.queues),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def where(error: BaseException, folder: Path | None) -> str:
    """``file:line: what`` of an error raised while importing the application: a syntax error's own place,
    else the innermost frame in the application's folder (else the innermost of all)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}: {type(error).__name__}: {error.msg}"
    frames = traceback.extract_tb(error.__traceback__)
    inside = [f for f in frames if folder is not None and Path(f.filename).is_relative_to(folder)]
    innermost = inside or list(frames)
    place = f"{innermost[-1].filename}:{innermost[-1].lineno}: " if innermost else ""
    return f"{place}{type(error).__name__}: {error}"


def main() -> int:
    """Import the application's catalog as a new process would; print its fingerprint, or where the
    import failed (exit 1)."""
    try:
        catalog = load_catalog(load_settings().catalog)
    except Exception as error:
        print(where(error, app_dir()), file=sys.stderr)
        return 1
    print(fingerprint(catalog))
    return 0


if __name__ == "__main__":
    sys.exit(main())
