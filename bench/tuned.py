"""``python -m bench.tuned KNOB COMMAND``: a longhaul command (``serve``, ``api``, ``worker``) with one
tuning knob of :mod:`bench.tuning` applied, for measuring it beside the defaults.

The knobs are applied here, in the benchmark, so that a candidate needs no setting of its own until a
measurement supports it: what a measurement keeps becomes longhaul's default, and leaves this list.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from temporalio.worker import PollerBehaviorAutoscaling, Worker

import longhaul.db
import longhaul.processes
import longhaul.server.worker
from longhaul.cli import app

# Options the main task queue's Worker gets, by knob.
WORKER_OPTIONS: dict[str, dict[str, Any]] = {
    "pollers-autoscaling": {"workflow_task_poller_behavior": PollerBehaviorAutoscaling()},
    "pollers-20": {"max_concurrent_workflow_task_polls": 20, "nonsticky_to_sticky_poll_ratio": 0.5},
    "workflow-tasks-200": {"max_concurrent_workflow_tasks": 200, "max_concurrent_local_activities": 300},
}
# PRAGMAs app storage's SQLite connections run, by knob.
APP_PRAGMAS: dict[str, tuple[str, ...]] = {
    "app-sqlite-cache": ("cache_size=-65536", "mmap_size=268435456", "temp_store=MEMORY"),
}


def _with_options(options: dict[str, Any]) -> Callable[..., Any]:
    def build(*args: Any, **kwargs: Any) -> Worker:
        if "workflows" in kwargs:  # the main task queue's worker
            kwargs.update(options)
        return Worker(*args, **kwargs)

    return build


def _with_pragmas(pragmas: tuple[str, ...]) -> Callable[..., None]:
    tune: Callable[[Any], None] = getattr(longhaul.db, "_tune_sqlite")  # noqa: B009

    def tune_more(engine: Any) -> None:
        tune(engine)

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        event.listen(engine.sync_engine, "connect", on_connect)

    return tune_more


def _settled(build: Callable[..., Any]) -> Callable[..., Any]:
    def build_and_settle(*args: Any, **kwargs: Any) -> Any:
        workers = build(*args, **kwargs)
        longhaul.processes.settle_heap()
        return workers

    return build_and_settle


def apply(knob: str, command: str) -> None:
    if knob in WORKER_OPTIONS:
        setattr(longhaul.server.worker, "Worker", _with_options(WORKER_OPTIONS[knob]))  # noqa: B010
    if knob in APP_PRAGMAS:
        setattr(longhaul.db, "_tune_sqlite", _with_pragmas(APP_PRAGMAS[knob]))  # noqa: B010
    if knob == "python-gc":  # Python's own collector settings: no settle_heap in any command
        setattr(longhaul.processes, "settle_heap", lambda: None)  # noqa: B010
    if knob == "worker-settle-heap" and command == "worker":  # longhaul worker settles once it is built
        build = _settled(longhaul.server.worker.build_worker)
        setattr(longhaul.server.worker, "build_worker", build)  # noqa: B010


def main() -> None:
    knob, command = sys.argv[1], sys.argv[2]
    apply(knob, command)
    sys.argv = ["longhaul", command]
    app()


if __name__ == "__main__":
    main()
