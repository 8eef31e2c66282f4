"""The one settings object of longhaul.

Everything configurable is read here, from (highest precedence first) constructor arguments, the
environment (``LONGHAUL_*``), a TOML file (``LONGHAUL_CONFIG``, else ``./longhaul.toml`` if present) and the
defaults below. The Temporal connection is the exception by design: it is loaded the way the ``temporal``
CLI loads it (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS settings and profiles in
``temporal.toml``, via :mod:`temporalio.envconfig`), so one set of variables serves both tools.
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote

from pydantic import Field, computed_field, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig

from longhaul.project import app_settings

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"


def config_file_path() -> Path:
    """The settings file: ``LONGHAUL_CONFIG`` if set, else ``longhaul.toml`` in the working directory."""
    return Path(os.environ.get("LONGHAUL_CONFIG", "longhaul.toml"))


class Settings(BaseSettings):
    """longhaul's settings; see ``docs/configuration.md`` for every variable."""

    model_config = SettingsConfigDict(env_prefix="LONGHAUL_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path(".longhaul"),
        description="Where the embedded stack keeps its state: the Temporal SQLite file, the app database.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL of the app database; default: an SQLite file in the data dir. "
        "PostgreSQL: postgresql+asyncpg://user:pass@host/db",
    )
    metrics_bind: str | None = Field(
        default=None,
        pattern=r"^[^:\s]*:\d+$",
        description="host:port where this process (API or worker) serves Prometheus metrics at /metrics; "
        "unset: none. Give each process on one host its own port.",
    )
    tracing: Literal["off", "otlp", "console"] = Field(
        default="off",
        description="OpenTelemetry traces from API request to each activity: otlp (endpoint from the "
        "standard OTEL_EXPORTER_OTLP_* variables), console (stdout), or off.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="API, worker and CLI bring the app database's schema to the newest revision when they "
        "start. Set false where a release job runs `longhaul db upgrade`: they then refuse to start on an "
        "outdated schema instead.",
    )
    task_queue: str = Field(default="longhaul", description="The task queue workflows and activities run on.")
    catalog: str = Field(
        default="workflows.catalog:CATALOG",
        pattern=r"^[\w.]+:\w+$",
        description="The application's catalog of pipelines, which the API and worker serve "
        "(module:attribute, imported from the application's folder). Set it in the application's "
        "pyproject.toml (`[tool.longhaul] catalog = ...`). API and worker must use the same one.",
    )
    commands: str | None = Field(
        default=None,
        pattern=r"^[\w.]+:\w+$",
        description="The application's additions to the `longhaul` command: a typer app (module:attribute) "
        "whose commands and groups join longhaul's (this repository's: `longhaul orders`, `videos`, "
        "`payments`).",
    )
    temporal_profile: str | None = Field(
        default=None, description="Profile to load from temporal.toml (TEMPORAL_PROFILE works too)."
    )
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds to.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the HTTP API.")
    api_key: str | None = Field(
        default=None,
        description="The key the CLI and clients send; default: the dev stack's (<data_dir>/api-key).",
    )
    api_key_cache_seconds: float = Field(
        default=10,
        ge=0,
        description="How long an API process trusts a key it has checked without reading it again (0: read "
        "it every request). A revocation takes effect at once regardless: SQLite processes see a marker "
        "file beside the database change, PostgreSQL ones are told by NOTIFY.",
    )
    api_dispatcher: bool = Field(
        default=True,
        description="The API process also runs the run queue's dispatcher, which starts accepted runs in "
        "Temporal. Set false where `longhaul dispatcher` runs on its own.",
    )
    api_worker: bool = Field(
        default=False,
        description="The API process also runs the worker: API, dispatcher and worker in one process "
        "(`longhaul serve` sets it; see docs/architecture.md, 'One box').",
    )
    ingest_rate_limit: float = Field(
        default=200, gt=0, description="Events per second per tenant (per API process)."
    )
    ingest_burst: int = Field(
        default=500, ge=1, description="Events a tenant may send at once above the rate."
    )
    url: str | None = Field(
        default=None, description="URL of the API that the CLI and clients talk to; default: the local API."
    )
    event_id_reuse: Literal["reject", "return_first"] = Field(
        default="reject",
        description="An event id sent again with another payload: reject answers 409 naming the fields "
        "that differ (as payment APIs treat a reused idempotency key); return_first answers with the "
        "first event's runs, as longhaul did before.",
    )
    dev_temporal_port: int = Field(default=7233, ge=1, le=65535, description="gRPC port of the dev server.")
    dev_ui_port: int = Field(default=8233, ge=1, le=65535, description="Web UI port of the dev server.")
    dev_sqlite_fast: bool = Field(
        default=True,
        description="Run the embedded server's SQLite in WAL mode with synchronous=normal: durable across a "
        "crash of any process, though an OS crash or power loss may drop the last commits. "
        "Set false for full sync (about half the throughput).",
    )
    worker_shutdown_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a stopping worker gives in-flight activities to finish before cancelling them.",
    )
    worker_deployment: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The Worker Deployment the workers belong to (e.g. longhaul); with worker_build_id, "
        "workers run with Temporal's worker versioning and each run stays on the version that started "
        "it (docs/upgrades.md). Unset: unversioned workers.",
    )
    worker_build_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="This code's version within worker_deployment (e.g. the image tag or git commit).",
    )
    max_concurrent_activities: int = Field(default=100, ge=1, description="Activity slots per worker.")
    max_cached_workflows: int = Field(
        default=1000,
        ge=0,
        description="Workflows a worker keeps in memory between tasks; others are replayed from history "
        "when they wake (memory against CPU).",
    )
    workflow_sandbox: Literal["shared", "strict"] = Field(
        default="shared",
        description="shared: workflow modules are imported once per worker and shared by all runs (less "
        "CPU and memory per run); strict: re-imported for every run, and non-deterministic calls in them "
        "fail the workflow task (the SDK default; the test suite runs strict).",
    )
    log_level: str = Field(default="INFO", description="Log level of longhaul's processes.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: for people at a terminal; json: one object per line with the run's ids as fields "
        "(run_id, workflow_id, temporal_run_id), for log pipelines.",
    )
    media_dir: Path | None = Field(
        default=None, description="Where pipelines write their outputs; default: <data_dir>/media."
    )
    upload_dir: Path | None = Field(
        default=None,
        description="Where input files live; event file paths are relative to it and may not leave it. "
        "Default: <data_dir>/uploads.",
    )
    pipeline_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Values for the pipelines' own settings (PipelineSettings), by section, over their "
        "environment: for tests and embedding; deployments set each pipeline's variables.",
    )
    reconcile_every_minutes: float = Field(
        default=10, gt=0, description="How often stuck run records are checked against Temporal."
    )
    reconcile_grace_seconds: float = Field(
        default=120,
        ge=0,
        description="How long a record may sit queued/running unchanged before it is checked.",
    )
    stream_retention_hours: float = Field(
        default=168,
        gt=0,
        description="How long the chunks of runs' data streams are kept after they were written (they go "
        "with their run sooner).",
    )
    payload_keys: dict[str, str] = Field(
        default_factory=dict,
        description='Payload encryption keys, id to base64 of 32 bytes, as JSON: {"k1": "..."}. Empty: off.',
    )
    payload_key_id: str | None = Field(
        default=None, description="The key new payloads are encrypted with (default: the only key)."
    )
    temporal_ui_url: str = Field(
        default="http://localhost:8233",
        description="The Temporal UI that links to runs point at (alerts, the dashboard).",
    )
    codec_cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8233"],
        description="Temporal UI origins allowed to call the API's /codec endpoint from the browser.",
    )
    signing_secret: str | None = Field(
        default=None,
        description="Key that signs waitpoint callback URLs and public access tokens; unset: one made once "
        "in <data_dir>/signing-secret. Set it where the API and workers run on several machines (one value).",
    )
    realtime_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins of pages that may open run streams from the browser (with a public access "
        'token), e.g. ["https://app.example.com"]; empty: same-origin pages only.',
    )
    alert_private_hosts: list[str] = Field(
        default_factory=list,
        description="Private hosts or networks alert webhooks may reach (names, addresses or CIDRs, e.g. "
        '["alerts.internal", "10.1.0.0/16"]); empty: public addresses only (loopback, link-local, private, '
        "multicast and unspecified addresses are refused at registration and at delivery).",
    )
    frame_origins: list[str] = Field(
        default_factory=list,
        description="Origins whose pages may frame the realtime example page (CSP frame-ancestors); every "
        "other page of the API, and this one by default, may be framed by no site.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest event body the API accepts; Temporal payloads top out at 2 MB, "
        "so large data goes by reference (a path or URL in the event).",
    )

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def app_database_url(self) -> str:
        """The app database URL, defaulting to ``<data_dir>/longhaul.db`` (SQLite)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'longhaul.db').resolve()}"

    @property
    def media_root(self) -> Path:
        return (self.media_dir or self.data_dir / "media").resolve()

    @property
    def upload_root(self) -> Path:
        return (self.upload_dir or self.data_dir / "uploads").resolve()

    @model_validator(mode="after")
    def _versioned_whole(self) -> Settings:
        if (self.worker_deployment is None) != (self.worker_build_id is None):
            raise ValueError("set worker_deployment and worker_build_id together (or neither)")
        return self

    @property
    def worker_version(self) -> str | None:
        """``deployment:build``, as Temporal names the version (and the run record keeps it)."""
        if self.worker_deployment is None or self.worker_build_id is None:
            return None
        return f"{self.worker_deployment}:{self.worker_build_id}"

    def task_queue_for(self, role: str | None) -> str:
        """The task queue of ``role`` (a pipeline's own queue, e.g. "media"); None: the main one."""
        return task_queue_name(self.task_queue, role)

    def temporal_connect_config(self) -> ClientConnectConfig:
        """Connection arguments for :meth:`temporalio.client.Client.connect`, loaded like the CLI does."""
        profile = ClientConfigProfile.load(profile=self.temporal_profile)
        config = profile.to_client_connect_config()
        config.setdefault("target_host", DEFAULT_TEMPORAL_ADDRESS)
        config.setdefault("namespace", DEFAULT_NAMESPACE)
        return config

    def temporal_address_configured(self) -> bool:
        """Whether the user points at an existing Temporal server (env var or temporal.toml profile)."""
        return ClientConfigProfile.load(profile=self.temporal_profile).address is not None

    @property
    def temporal_address(self) -> str:
        return self.temporal_connect_config()["target_host"]

    @property
    def namespace(self) -> str:
        return self.temporal_connect_config().get("namespace", DEFAULT_NAMESPACE)

    @property
    def dev_key_file(self) -> Path:
        return self.data_dir / "api-key"

    def client_api_key(self) -> str | None:
        """The key clients send: LONGHAUL_API_KEY, else the one ``longhaul dev`` wrote for this data dir."""
        if self.api_key and self.api_key.strip():
            return self.api_key.strip()  # `export LONGHAUL_API_KEY="$(longhaul keys create …)"` and the like
        try:
            return self.dev_key_file.read_text().strip() or None
        except OSError:
            return None

    def temporal_ui_link(self, workflow_id: str) -> str:
        """Where the Temporal UI shows a workflow (its latest run)."""
        ui = self.temporal_ui_url.rstrip("/")
        return f"{ui}/namespaces/{self.namespace}/workflows/{quote(workflow_id, safe='')}"

    @property
    def api_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        host = "localhost" if self.api_host in ("0.0.0.0", "127.0.0.1", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file_path()),
            # the application's [tool.longhaul] table: its catalog, its commands
            InitSettingsSource(settings_cls, init_kwargs=app_settings()),
        )


def task_queue_name(main: str, role: str | None) -> str:
    """The one rule for task-queue names: a pipeline's queue of ``role`` is ``<main>-<role>``. The worker
    polls these names and longhaul passes them to the workflows it starts (their memo); this rule is
    only applied again for a workflow started without them (by hand, or before they were passed)."""
    return main if role is None else f"{main}-{role}"


class PipelineSettings(BaseSettings):
    """A pipeline's own settings: subclass it with a ``section``, and declare it on the pipeline
    (``Pipeline(settings=OrderSettings)``); the worker checks it on start. Read (highest precedence first)
    from :attr:`Settings.pipeline_settings` [section], the environment with the section's prefix
    (``class OrderSettings(PipelineSettings, section="orders")``: ``ORDERS_PAYMENTS_URL``), the
    settings file's ``[orders]`` table, and the defaults::

        class OrderSettings(PipelineSettings, section="orders"):
            payments_url: str = "http://127.0.0.1:8010"

        orders = OrderSettings.of(resources.settings)
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)
    section: ClassVar[str]

    def __init_subclass__(cls, section: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if section is not None:
            cls.section = section
            cls.model_config = {**cls.model_config, "env_prefix": f"{section.upper()}_"}

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """The pipeline's settings in a process configured by ``settings``."""
        return cls(**settings.pipeline_settings.get(cls.section, {}))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        table: dict[str, Any] = {}
        path = config_file_path()
        if path.is_file():
            table = tomllib.loads(path.read_text()).get(cls.section, {})
        return (init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=table))


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; keyword arguments win over every other source."""
    return Settings(**overrides)
