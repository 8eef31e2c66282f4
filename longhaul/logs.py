"""Logging of longhaul's processes: text for people at a terminal, JSON lines for log pipelines.

Either way a line logged while a workflow or activity runs names its run, so an operator can go from a
log line to the run record and to the Temporal UI: the SDK's loggers (``activity.logger``,
``workflow.logger``) attach the workflow id, Temporal run id and type; the JSON format lifts them into
fields and adds longhaul's run id (derived from the workflow id, as everywhere). Code outside a workflow
or activity passes ``extra={"run_id": …, "workflow_id": …}`` for the same fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio import activity, workflow

from longhaul.models import run_id_for

LogFormat = Literal["text", "json"]
# Context the SDK attaches to records (its field names), and the JSON field each becomes.
_SDK_FIELDS = {
    "workflow_id": "workflow_id",
    "workflow_run_id": "temporal_run_id",
    "run_id": "temporal_run_id",
    "workflow_type": "workflow_type",
    "activity_type": "activity_type",
    "activity_id": "activity_id",
    "attempt": "attempt",
    "task_queue": "task_queue",
    "namespace": "namespace",
}
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the run's ids, other extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for context in ("temporal_workflow", "temporal_activity"):
            for name, value in (getattr(record, context, None) or {}).items():
                if name in _SDK_FIELDS:
                    line.setdefault(_SDK_FIELDS[name], value)
        for name, value in record.__dict__.items():
            if name not in _RECORD_FIELDS and not name.startswith(("temporal_", "_")):
                line.setdefault(name, value)
        if "workflow_id" in line:
            line.setdefault("run_id", run_id_for(str(line["workflow_id"])))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Set up the root logger of a longhaul process (the CLI does it once, before any command)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        # The ids travel as fields; the SDK's text copy of them on every message would repeat them.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic narrates every step at INFO; longhaul.migrations logs what an upgrade changed instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
