"""App storage: durable run records in SQLite (default) or PostgreSQL, through SQLAlchemy 2 async.

Run records are the product's truth: the API writes one (``queued``) before it starts a workflow, the
worker moves it through its statuses, and status pages read it. Uniqueness of a run per
(tenant, event, event id, workflow) is enforced here by constraints, not by hoping callers behave.
"""

from __future__ import annotations

from longhaul.db import Database, insert_ignoring_duplicates
from longhaul.group_commit import GroupCommit
from longhaul.records import (
    LOGS,
    QUEUE_CHANNEL,
    RUNS,
    RunLogRow,
    RunRow,
    RunStepRow,
    RunTagRow,
    notify_queue,
    record_of,
    tags_of,
)
from longhaul.storage.reads import InvalidCursorError, RunFilter
from longhaul.storage.writes import RunWrites
from longhaul.streams import StreamStore
from longhaul.waitpoints import WaitpointStore

__all__ = [
    "QUEUE_CHANNEL",
    "InvalidCursorError",
    "RunFilter",
    "RunLogRow",
    "RunRow",
    "RunStepRow",
    "RunStore",
    "RunTagRow",
    "notify_queue",
    "record_of",
    "tags_of",
]


class RunStore(RunWrites):
    """Reads and writes run records (:class:`~longhaul.storage.reads.RunReads`,
    :class:`~longhaul.storage.writes.RunWrites`). One per process; safe to share across tasks of one event
    loop."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sessions = db.sessions
        self._insert_run = insert_ignoring_duplicates(RUNS, is_sqlite=db.is_sqlite)
        self._insert_log = insert_ignoring_duplicates(LOGS, is_sqlite=db.is_sqlite)
        self.waitpoints = WaitpointStore(db)
        self.streams = StreamStore(db)
        self._updates = GroupCommit(self._write_updates)
