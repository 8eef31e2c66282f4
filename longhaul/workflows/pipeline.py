"""A pipeline, declared in one place: its events, what they start or signal, its workflows, where its
activities run, its tables, its schedules and the webhooks it receives.

The worker, the API and migrations read pipelines from the catalog (:mod:`longhaul.workflows.catalog`) and
name none of them. A pipeline's declaration sits at the end of its workflow module (``workflows/orders.py``:
``ORDERS``), beside the code it declares; its activities, models and tables are in ``activities/<name>``.

Declarations are plain data: the parts that need the deployment (activity instances, schedule inputs, a
webhook's secret) are functions of :class:`~longhaul.activities.resources.Resources` or of the settings,
called by the process that serves them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from longhaul.humanize import duration
from longhaul.workflows import registry

if TYPE_CHECKING:
    from sqlalchemy import Table

    from longhaul.activities.resources import Resources
    from longhaul.config import PipelineSettings, Settings
    from longhaul.db import Database
    from longhaul.events import EventType
    from longhaul.webhooks import Inbound
    from longhaul.workflows.schedules import ScheduleDecl


def workflow_name(workflow_cls: type) -> str:
    """The registered Temporal name of a workflow class (declared with
    :func:`longhaul.workflows.registry.defn`)."""
    return registry.declared(workflow_cls).name


MAX_COLLECTED = 1000  # events a collecting debounce's run holds at most (its input is one ≤ 2 MB payload)
TENANT_KEY = "tenant"  # a flow-control key that names the sender's tenant rather than a payload field


def _per(key: str | None) -> str:
    return f" per {key}" if key else ""


@dataclass(frozen=True)
class Concurrency:
    """At most ``limit`` runs of the subscription's queue at once (started and not closed): across the
    queue, or per value of ``key`` (a payload field, or ``"tenant"``). A run waits ``pending`` until a
    slot frees."""

    limit: int
    key: str | None = None

    def rule(self) -> str:
        return f"at most {self.limit} at once{_per(self.key)}"


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` starts per ``per`` (per value of ``key``); the rest wait their turn
    (``delay``), or are refused at intake (``refuse``: at most ``limit`` events accepted per ``per``, the
    sender answered 429 with ``Retry-After``, nothing recorded)."""

    limit: int
    per: timedelta
    key: str | None = None
    mode: Literal["delay", "refuse"] = "delay"

    def rule(self) -> str:
        every = f"per {duration(self.per.total_seconds())}{_per(self.key)}"
        if self.mode == "refuse":
            return f"at most {self.limit} events {every}, more refused (429)"
        return f"at most {self.limit} starts {every}"


@dataclass(frozen=True)
class Throttle:
    """Starts spread evenly: one every ``per / limit`` (per value of ``key``)."""

    limit: int
    per: timedelta
    key: str | None = None

    def rule(self) -> str:
        return f"one start every {duration(self.per.total_seconds() / self.limit)}{_per(self.key)}"


@dataclass(frozen=True)
class Singleton:
    """One open run per value of ``key`` (None: one per queue). A new event while one is open is
    skipped (``skip``: answered with the open run) or cancels it (``cancel``: the new run starts once
    the old one has closed, its cleanup done)."""

    key: str | None = None
    mode: Literal["skip", "cancel"] = "skip"

    def rule(self) -> str:
        return f"singleton{_per(self.key)} ({self.mode})"


@dataclass(frozen=True)
class Debounce:
    """Events of one ``key`` value less than ``delay`` apart become one run, which starts once ``delay``
    passes without another (at the latest ``max_delay`` after the first), with the newest payload
    (``trailing``) or the first (``leading``). With ``collect``, it starts with every event of the
    window instead, in order: its input is ``{"events": [payload, …], "event_ids": […]}`` (as a batch's),
    at most ``max_events`` of them: the run that holds that many is due at once, and the next event opens
    a new window."""

    delay: timedelta
    key: str | None = None
    mode: Literal["trailing", "leading"] = "trailing"
    max_delay: timedelta | None = None
    collect: bool = False
    max_events: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.max_events <= MAX_COLLECTED:
            raise ValueError(f"Debounce.max_events must be 1 to {MAX_COLLECTED}, not {self.max_events}")

    def rule(self) -> str:
        how = f"collects up to {self.max_events} events" if self.collect else self.mode
        return f"debounce {duration(self.delay.total_seconds())}{_per(self.key)} ({how})"


@dataclass(frozen=True)
class Batch:
    """Events of one ``key`` value are collected into one run, whose input is ``{"events": [payload,
    …], "event_ids": […]}``: it starts once ``max_size`` have arrived, or ``max_wait`` after the first."""

    max_size: int
    max_wait: timedelta
    key: str | None = None

    def rule(self) -> str:
        return f"batches of {self.max_size} or {duration(self.max_wait.total_seconds())}{_per(self.key)}"


@dataclass(frozen=True)
class FairShare:
    """Starts shared fairly among the values of ``key`` (the tenant by default, or a payload field):
    while several values have runs waiting, they take turns (round robin), each value as often as its
    weight says (1 unless set at run time: ``longhaul queues weight``). One tenant's 10,000 runs then
    delay another tenant's next run by about one turn, not by 10,000. Priority still orders the runs of
    one value."""

    key: str = TENANT_KEY

    def rule(self) -> str:
        return f"fair share per {self.key}"


@dataclass(frozen=True)
class CancelOn:
    """``event`` cancels the subscription's open runs whose payload field ``match`` equals the event's
    (a waiting run closes at once; a started one is cancelled in Temporal and runs its compensation)."""

    event: EventType
    match: str

    def rule(self) -> str:
        return f"cancelled by {self.event.name} (same {self.match})"


@dataclass(frozen=True)
class Subscription:
    """``workflow`` starts once per ``event`` received. ``key`` names the payload field that is the run's
    business key (a search attribute in the UI, and what signal routes find the run by). With
    ``once_per_key``, the workflow runs once per key rather than per event id: a second
    ``video.uploaded`` for the same video returns the first one's run.

    Flow control (the run queue, :mod:`longhaul.queue`): runs wait in ``queue`` (default: the workflow's
    name; subscriptions naming one queue share its limits) until ``concurrency``, ``rate_limit`` and
    ``throttle`` let them start, taking turns between the values of ``fair_share``'s key; ``singleton``,
    ``debounce`` or ``batch`` (one of them) make several events one run; ``cancel_on`` names events that
    cancel its runs. With ``filter``, only the events that match it start a run."""

    event: EventType
    workflow: type
    key: str | None = None
    once_per_key: bool = False
    priority: Callable[[Any], int] | None = None  # Temporal priority key (1 first … 5) from the payload
    queue: str | None = None
    concurrency: Sequence[Concurrency] = ()
    rate_limit: RateLimit | None = None
    throttle: Throttle | None = None
    singleton: Singleton | None = None
    debounce: Debounce | None = None
    batch: Batch | None = None
    cancel_on: Sequence[CancelOn] = ()
    fair_share: FairShare | None = None
    # A CEL expression over ``payload`` and ``tenant`` (longhaul/filters.py): it starts only for the
    # events that match, e.g. 'payload.total > 1000 && payload.currency == "EUR"'.
    filter: str | None = None

    @property
    def workflow_name(self) -> str:
        return workflow_name(self.workflow)

    @property
    def queue_name(self) -> str:
        return self.queue or self.workflow_name

    def flow_rules(self) -> list[str]:
        """Its flow control, for people (``longhaul queues``, ``GET /api/queues``)."""
        declared = [
            *self.concurrency,
            self.rate_limit,
            self.throttle,
            self.singleton,
            self.debounce,
            self.batch,
            self.fair_share,
        ]
        return [rule.rule() for rule in [*declared, *self.cancel_on] if rule is not None]

    @property
    def flow_keys(self) -> list[str]:
        """The payload fields its flow control is keyed by (checked against the event's schema)."""
        limits = [
            *self.concurrency,
            self.rate_limit,
            self.throttle,
            self.singleton,
            self.debounce,
            self.batch,
            self.fair_share,
        ]
        return [
            k for k in dict.fromkeys(x.key for x in limits if x is not None) if k not in (None, TENANT_KEY)
        ]


@dataclass(frozen=True)
class SignalRoute:
    """``event`` is delivered as signal ``signal`` (default: the event's name) to the running ``workflow``
    whose business key equals the payload's ``key`` field."""

    event: EventType
    workflow: type
    key: str
    signal: str | None = None

    @property
    def signal_name(self) -> str:
        return self.signal or self.event.name

    @property
    def workflow_name(self) -> str:
        return workflow_name(self.workflow)


Activities = Callable[["Resources"], Sequence[Callable[..., Any]]]


@dataclass(frozen=True)
class TaskQueue:
    """Activities and the task queue they run on: the main one (``role`` None) or the pipeline's own
    (``role`` "media": the queue ``<task_queue>-media``), served by its own worker with its own limits,
    so CPU-bound or rate-limited work never starves the rest. A workflow finds a queue's name with
    :func:`longhaul.workflows.tracking.task_queue` (``task_queue("media")``)."""

    activities: Activities
    role: str | None = None
    concurrency: Callable[[Settings], int] | None = None  # activity slots per worker (default: the setting)
    # Activities per second across every worker of the queue (enforced by the server; all workers of the
    # queue must set the same value, so it is a setting).
    rate_limit: Callable[[Settings], float] | None = None
    heartbeat_throttle: timedelta | None = None  # how often heartbeats reach the server, at most


@dataclass(frozen=True)
class Webhook:
    """A signed webhook the API receives at ``/api/webhooks/<source>`` (longhaul's signature scheme,
    :mod:`longhaul.webhooks`), checked with the secret ``secret`` reads from the settings. ``translate``
    turns the parsed JSON body into the event to send, or into the reason it is ignored (text); it
    raises :class:`~longhaul.webhooks.UnprocessableWebhookError` for what can never be sent."""

    source: str
    secret: Callable[[Settings], str]
    translate: Callable[[Any], Inbound | str]
    description: str = ""


@dataclass(frozen=True)
class DevService:
    """A stand-in for another company's system that ``longhaul dev`` runs beside the stack (the order
    pipeline's payment provider), unless the pipeline's settings point at the real one. It runs as
    ``longhaul <command> --port <port> <args>``, is healthy when ``/health`` answers, and the stack's
    processes find it through the pipeline's setting ``url_field`` (its URL); ``port_field`` moves it."""

    command: str  # the `longhaul` command that runs it
    title: str  # what errors and the banner call it
    settings: type[PipelineSettings]  # the pipeline's settings, which hold its URL and its port
    url_field: str  # set by the user: the real system is used, nothing starts
    port_field: str
    args: Callable[[Settings], list[str]] = field(default=lambda _settings: [])
    note: str = ""  # shown after its URL in the banner

    def configured_url(self, settings: Settings) -> str | None:
        """The real system's URL, where the user set one."""
        values = self.settings.of(settings)
        return str(getattr(values, self.url_field)) if self.url_field in values.model_fields_set else None

    def port(self, settings: Settings) -> int:
        return int(getattr(self.settings.of(settings), self.port_field))

    def variable(self, field_name: str) -> str:
        """The environment variable of one of its settings (``ORDERS_PAYMENTS_URL``)."""
        return f"{self.settings.model_config.get('env_prefix', '')}{field_name.upper()}"


Output = TypeVar("Output", bound=BaseModel)


@dataclass(frozen=True)
class WaitpointKind(Generic[Output]):
    """A kind of waitpoint token the pipeline's workflows wait on (:func:`longhaul.workflows.waitpoints.
    wait_for_token`), and the model of what completes it: a completion is validated against ``output``
    where it arrives (the API answers 422 naming the field, and the token stays waiting), so the workflow
    receives an ``output`` instance."""

    name: str
    output: type[Output]
    description: str = ""


@dataclass(frozen=True)
class Pipeline:
    """One pipeline. ``entries``: what its events start or signal (another pipeline's events may be
    subscribed to as well). ``published``: events its workflows emit, declared even while nothing
    subscribes. ``workflows``: those not started by an event (scheduled ones); the entries' are added.
    ``tables``: its app-storage tables (mapped classes), which migrations compare with. ``waitpoints``:
    the kinds of token its workflows wait on (what completes each).
    ``schedules``: its schedules, built from the settings. ``settings``: its own settings model
    (:class:`~longhaul.config.PipelineSettings`). ``short_steps``: activities (functions or methods, on
    the main task queue) its workflows' calls run as local activities (:mod:`longhaul.workflows.steps`).
    ``dev_services`` and ``dev_seed`` (demo data for a tenant; returns the rows added): what ``longhaul
    dev`` starts and seeds for it."""

    name: str
    entries: Sequence[Subscription | SignalRoute] = ()
    published: Sequence[EventType] = ()
    workflows: Sequence[type] = ()
    queues: Sequence[TaskQueue] = ()
    tables: Sequence[type] = ()
    webhooks: Sequence[Webhook] = ()
    waitpoints: Sequence[WaitpointKind[Any]] = ()
    schedules: Callable[[Settings], Sequence[ScheduleDecl]] = field(default=lambda _settings: ())
    dev_services: Sequence[DevService] = ()
    dev_seed: Callable[[Database, str], Awaitable[int]] | None = None
    settings: type[PipelineSettings] | None = None  # its own settings (checked when a worker starts)
    short_steps: Sequence[Callable[..., Any]] = ()

    @property
    def all_workflows(self) -> tuple[type, ...]:
        return tuple(dict.fromkeys([*(e.workflow for e in self.entries), *self.workflows]))

    @property
    def task_queue_roles(self) -> list[str]:
        """The roles of the pipeline's own task queues (what its workflows get in their memo)."""
        return [q.role for q in self.queues if q.role is not None]

    def table_objects(self) -> list[Table]:
        """Its tables: the ``__table__`` of each mapped class."""
        return [mapped.__table__ for mapped in self.tables]  # type: ignore[attr-defined]


def signal_schema(workflow_cls: type, signal: str) -> type[BaseModel] | None:
    """The pydantic model a workflow's signal handler takes, if any (``None``: no argument or not typed).

    Raises KeyError if the workflow declares no signal of that name.
    """
    return registry.declared(workflow_cls).signal_schema(signal)


def signal_names(workflow_cls: type) -> list[str]:
    return registry.declared(workflow_cls).signals
