"""What a pipeline's activities may use: made once per worker process and handed to each pipeline's
activity factory (:class:`longhaul.workflows.pipeline.Queue`), so pipelines share one pool of each."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from temporalio.client import Client

from longhaul.activities.bulk import RunActor
from longhaul.activities.children import ChildRuns
from longhaul.activities.events import Emitter
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.storage import RunStore


@dataclass(frozen=True)
class Resources:
    settings: Settings
    store: RunStore  # run records (progress written from activities)
    client: Client  # the worker's Temporal client
    http: httpx.AsyncClient  # one connection pool for the process's HTTP calls
    emit: Emitter  # sends an event through the catalog, as the API would
    act: RunActor  # cancels, replays or resumes a run, as the API would (bulk actions)
    children: ChildRuns  # starts and cancels a run's child runs (trigger_and_wait)

    @property
    def db(self) -> Database:
        """The app database, for a pipeline's own tables."""
        return self.store.db
