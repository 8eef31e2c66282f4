"""``longhaul dev``: the whole stack on embedded defaults, supervised as child processes.

Starts the Temporal dev server (SQLite file in the data dir, Web UI), then a worker, then the HTTP API;
waits until each is healthy, prints the URLs, and on Ctrl-C / SIGTERM stops them in reverse order (API,
then worker with its graceful shutdown, then the server). Children are in their own sessions, so a
terminal's Ctrl-C reaches only the supervisor, which stops them in order, and they get SIGTERM from the
kernel if the supervisor itself dies (``PR_SET_PDEATHSIG``): no orphans either way.

A child that dies while the stack runs is started again after a backoff (1 s, doubling to 30 s), while the
others keep running, as the runs in flight expect; each restart is logged. A child that keeps dying (more
than :attr:`RestartPolicy.limit` restarts within :attr:`RestartPolicy.window` seconds) stops the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from watchfiles import awatch

from longhaul.api.codec import codec_url
from longhaul.binaries import temporal_cli
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.keys import KeyStore, Role
from longhaul.migrations import upgrade
from longhaul.models import DEFAULT_TENANT
from longhaul.processes import die_with_parent
from longhaul.project import app_dir
from longhaul.server.children import Child, DevError, RestartPolicy, check_ports_free, ended
from longhaul.server.reload import SourceFilter, fingerprint
from longhaul.server.schedules import sync as sync_schedules
from longhaul.signing import signing_key
from longhaul.temporal import (
    SEARCH_ATTRIBUTES,
    SERVER_FEATURES,
    SQLITE_FAST,
    connect,
    ensure_search_attributes,
    search_attribute_flag,
)
from longhaul.workflows.catalog import Catalog, load_catalog
from longhaul.workflows.pipeline import DevService

STARTUP_TIMEOUT = 90.0


@dataclass
class DevStack:
    settings: Settings
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    children: list[Child] = field(default_factory=list)
    client: Client | None = None
    catalog: Catalog = field(init=False)
    embedded: bool = field(init=False)
    local_services: list[DevService] = field(init=False)
    api_key: str = ""
    fingerprint: str = ""  # of the catalog the API serves (longhaul.server.reload)
    retiring: set[subprocess.Popen[bytes]] = field(default_factory=set)  # workers replaced by a reload

    def __post_init__(self) -> None:
        self.catalog = load_catalog(self.settings.catalog)
        # Decided once: start() sets TEMPORAL_ADDRESS for the children once the embedded server runs.
        self.embedded = not self.settings.temporal_address_configured()
        # A pipeline's stand-in system runs here unless the settings point at the real one.
        self.local_services = [
            service for service in self.catalog.dev_services if service.configured_url(self.settings) is None
        ]

    def service_url(self, service: DevService) -> str:
        return f"http://127.0.0.1:{service.port(self.settings)}"

    @property
    def temporal_address(self) -> str:
        if self.embedded:
            return f"127.0.0.1:{self.settings.dev_temporal_port}"
        return self.settings.temporal_address

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.settings.dev_ui_port}" if self.embedded else "(your server's UI)"

    def check_ports(self) -> None:
        s = self.settings
        ports = [(s.api_host, s.api_port, "HTTP API", "--api-port")]
        if self.embedded:
            ports[:0] = [
                ("127.0.0.1", s.dev_temporal_port, "Temporal server", "--temporal-port"),
                ("127.0.0.1", s.dev_ui_port, "Temporal Web UI", "--ui-port"),
            ]
        ports += [
            ("127.0.0.1", svc.port(s), svc.title, svc.variable(svc.port_field)) for svc in self.local_services
        ]
        check_ports_free(ports)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["LONGHAUL_DATA_DIR"] = str(self.settings.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, name: str, argv: list[str], stop_timeout: float, log_file: Path | None = None) -> Child:
        child = Child(name, argv, log_file, stop_timeout, self._popen(argv, log_file))
        self.children.append(child)
        return child

    def _popen(self, argv: list[str], log_file: Path | None) -> subprocess.Popen[bytes]:
        out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - the child owns it from here
        try:
            return subprocess.Popen(
                argv,
                env=self._child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        finally:
            if out:
                out.close()

    def temporal_argv(self) -> list[str]:
        """The embedded server's command line: SQLite file, ports, search attributes, and (with payload
        encryption on) its Web UI's codec endpoint."""
        s = self.settings
        argv = [
            temporal_cli(),
            "server",
            "start-dev",
            "--db-filename", str(s.data_dir / "temporal.db"),
            "--ip", "127.0.0.1",
            "--port", str(s.dev_temporal_port),
            "--ui-port", str(s.dev_ui_port),
            "--log-level", "error",
            "--ui-disable-news-fetch",
            *SERVER_FEATURES,
        ]  # fmt: skip
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", search_attribute_flag(key)]
        if s.payload_keys:  # the UI decodes through the API, at the URL that is its own credential
            argv += ["--ui-codec-endpoint", codec_url(s.api_url, signing_key(s))]
        if s.dev_sqlite_fast:
            argv += SQLITE_FAST
        return argv

    def _start_temporal(self) -> Child:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        return self._spawn(
            "temporal", self.temporal_argv(), stop_timeout=15, log_file=s.data_dir / "temporal.log"
        )

    async def _start_service(self, service: DevService) -> None:
        """Run a pipeline's stand-in system; the children started after it find it by its setting."""
        url = self.service_url(service)
        os.environ[service.variable(service.url_field)] = url
        port = str(service.port(self.settings))
        child = self._start_longhaul(
            service.command, "--port", port, *service.args(self.settings), stop_timeout=5
        )
        await self._wait(child, f"{service.title} at {url}", lambda: _http_ok(f"{url}/health"))

    def _start_longhaul(self, name: str, *args: str, stop_timeout: float) -> Child:
        return self._spawn(name, [sys.executable, "-m", "longhaul.cli", name, *args], stop_timeout)

    async def _wait(self, child: Child | None, what: str, probe: Callable[[], Awaitable[bool]]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if child is not None and not child.alive():
                raise DevError(f"{what} exited during start-up (exit code {child.process.returncode})")
            try:
                if await probe():
                    return
            except Exception:  # not up yet
                pass
            await asyncio.sleep(0.2)
        raise DevError(f"{what} was not healthy after {STARTUP_TIMEOUT:.0f}s")

    async def start(self) -> None:
        """Start every part and return once all are healthy."""
        self.check_ports()
        s = self.settings
        temporal = None
        if self.embedded:
            temporal = self._start_temporal()
            # From here on this process (and its children) behave as if pointed at that server.
            os.environ["TEMPORAL_ADDRESS"] = self.temporal_address
        await self._wait(temporal, f"Temporal server at {self.temporal_address}", self._connect)
        client = self.client
        assert client is not None
        await ensure_search_attributes(client)
        if self.embedded:
            await self._wait(temporal, f"Temporal Web UI at {self.ui_url}", lambda: _http_ok(self.ui_url))

        db = Database(s.app_database_url)
        try:
            await upgrade(db)  # before the API and worker start, so they find it current
            for pipeline in self.catalog.pipelines:
                if pipeline.dev_seed is not None:
                    await pipeline.dev_seed(db, DEFAULT_TENANT)
            await self._ensure_dev_key(KeyStore(db))
        finally:
            await db.close()
        for service in self.local_services:
            await self._start_service(service)

        worker = self._start_longhaul("worker", stop_timeout=s.worker_shutdown_timeout + 10)
        await self._wait(worker, "worker", lambda: _polling(client, s, worker.process.pid))
        for change in await sync_schedules(client, self.catalog.schedules(s), s):
            if change.action != "unchanged":
                print(f"longhaul dev: schedule {change}", file=sys.stderr)

        api = self._start_longhaul("api", "--host", s.api_host, "--port", str(s.api_port), stop_timeout=15)
        await self._wait(api, f"HTTP API at {s.api_url}", lambda: _http_ok(f"{s.api_url}/health"))

    async def _ensure_dev_key(self, keys: KeyStore) -> None:
        """An admin key of the default tenant (the developer is the operator here too), kept in
        <data dir>/api-key (mode 0600) for the local CLI."""
        path = self.settings.dev_key_file
        if path.is_file():
            caller = await keys.caller_of(path.read_text().strip())
            if caller is not None and (caller.tenant, caller.role) == (DEFAULT_TENANT, Role.ADMIN):
                self.api_key = path.read_text().strip()
                return
        _, self.api_key = await keys.create(DEFAULT_TENANT, "longhaul dev", Role.ADMIN)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(self.api_key + "\n")

    async def _connect(self) -> bool:
        self.client = await connect(self.settings)
        return await self.client.service_client.check_health()

    async def supervise(self, stop: asyncio.Event) -> int:
        """Restart children that die until a stop request; return the exit status for the CLI (1 if a
        child kept dying past the restart limit)."""
        while not stop.is_set():
            for child in self.children:
                if not self._tend(child):
                    return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)
        return 0

    def _tend(self, child: Child) -> bool:
        """Notice a dead child and schedule its restart, or restart it when due; False: give up."""
        now = time.monotonic()
        if child.restart_at is None:
            if child.alive():
                return True
            policy = self.restart
            child.restarts = [t for t in child.restarts if now - t < policy.window]
            code = child.process.returncode
            if len(child.restarts) >= policy.limit:
                _say(
                    f"{child.name} exited (exit code {code}) after {policy.limit} restarts within "
                    f"{policy.window:g}s; stopping"
                )
                return False
            delay = policy.delay(len(child.restarts))
            child.restart_at = now + delay
            _say(
                f"{child.name} exited (exit code {code}); restarting in {delay:g}s "
                f"(restart {len(child.restarts) + 1} of at most {policy.limit} within {policy.window:g}s)"
            )
        elif now >= child.restart_at:
            child.process = self._popen(child.argv, child.log_file)
            child.restarts.append(now)
            child.restart_at = None
            _say(f"{child.name} restarted (pid {child.process.pid})")
        return True

    async def watch(self, folder: Path, stop: asyncio.Event) -> None:
        """Reload on each change of the application's Python source in ``folder``, until ``stop``."""
        self.fingerprint = fingerprint(self.catalog)
        source = SourceFilter(self.settings.data_dir)
        async for changes in awatch(folder, watch_filter=source, debounce=200, step=50, stop_event=stop):
            changed = sorted({str(Path(path).relative_to(folder)) for _, path in changes})
            await self.reload(changed)

    async def reload(self, changed: list[str]) -> None:
        """Check the new code in a fresh process while a new worker starts beside the old one; on success
        the old worker leaves gracefully (and the API restarts if the catalog changed), on failure the new
        worker goes and the stack keeps serving what it had."""
        began = time.monotonic()
        worker = self._named("worker")
        new = Child(
            worker.name,
            worker.argv,
            worker.log_file,
            worker.stop_timeout,
            self._popen(worker.argv, worker.log_file),
        )
        check = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "longhaul.server.reload", env=self._child_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await check.communicate()
        client = self.client
        assert client is not None
        try:
            if check.returncode != 0:
                said = err.decode(errors="replace").strip().splitlines()
                raise DevError(said[-1] if said else f"the check exited with {check.returncode}")
            await self._wait(
                new, "the reloaded worker", lambda: _polling(client, self.settings, new.process.pid)
            )
        except DevError as error:
            new.process.kill()
            new.process.wait()
            _say(f"{', '.join(changed)} changed; not reloaded: {error} (still serving the code before)")
            return
        self._retire(worker.process, worker.stop_timeout)
        worker.process, restarted = new.process, ["worker"]
        if (catalog := out.decode().strip()) != self.fingerprint:
            await self._restart(self._named("api"), f"{self.settings.api_url}/health")
            self.fingerprint, restarted = catalog, ["worker", "API"]
        took = time.monotonic() - began
        _say(f"{', '.join(changed)} changed: {' and '.join(restarted)} reloaded in {took:.1f}s")

    def _named(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def _retire(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Stop a replaced child gracefully, in the background (its activities finish)."""
        self.retiring.add(process)
        process.send_signal(signal.SIGTERM)

        async def reap() -> None:
            await ended(process, timeout)
            self.retiring.discard(process)

        asyncio.get_running_loop().create_task(reap())

    async def _restart(self, child: Child, health: str) -> None:
        child.process.send_signal(signal.SIGTERM)
        await ended(child.process, child.stop_timeout)
        child.process = self._popen(child.argv, child.log_file)
        await self._wait(child, child.name, lambda: _http_ok(health))

    async def stop(self) -> None:
        """Stop children in reverse start order: API, worker (graceful), server."""
        for child in reversed(self.children):
            if child.alive():
                child.process.send_signal(signal.SIGTERM)
            await ended(child.process, child.stop_timeout)
        for process in list(self.retiring):
            await ended(process, 0)
        self.children.clear()


def _say(message: str) -> None:
    print(f"longhaul dev: {message}", file=sys.stderr, flush=True)


async def _http_ok(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        return (await http.get(url)).status_code == 200


async def _polling(client: Client, settings: Settings, pid: int) -> bool:
    """True once the worker process ``pid`` polls the task queue (its identity starts with its pid)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return any(p.identity.startswith(f"{pid}@") for p in response.pollers)


async def run_dev(settings: Settings, *, reload: bool = True) -> int:
    """The ``longhaul dev`` command: returns the process exit status. With ``reload``, a change of the
    application's source reloads the worker (and the API when the catalog changed)."""
    stack = DevStack(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.ensure_future(stack.start())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # stopped during start-up
            starting.cancel()
            return 130
        stopped.cancel()
        starting.result()
        _print_banner(stack)
        folder = app_dir() if reload else None
        watching = asyncio.ensure_future(stack.watch(folder, stop)) if folder else None
        try:
            return await stack.supervise(stop)
        finally:
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
    except DevError as error:
        print(f"longhaul dev: error: {error}", file=sys.stderr)
        return 1
    finally:
        if stack.children:
            await stack.stop()
            print("longhaul dev: stopped", file=sys.stderr)


def _service_line(stack: DevStack, service: DevService) -> str:
    """``Payments     http://127.0.0.1:8010  (local provider; …)``, or the real system's URL."""
    if service in stack.local_services:
        url = stack.service_url(service) + (f"  ({service.note})" if service.note else "")
    else:
        url = str(service.configured_url(stack.settings))
    return f"  {service.command.capitalize():<12} {url}"


def _print_banner(stack: DevStack) -> None:
    s = stack.settings
    lines = [
        "longhaul dev is up",
        f"  HTTP API     {s.api_url}  (docs: {s.api_url}/docs)",
        f"  Dashboard    {s.api_url}/ui  (sign in with the API key below)",
        f"  Temporal UI  {stack.ui_url}" + ("  (decodes payloads through the API)" if s.payload_keys else ""),
        f"  Temporal     {stack.temporal_address}  namespace {s.namespace}, task queue {s.task_queue}",
        *(_service_line(stack, service) for service in stack.catalog.dev_services),
        f"  API key      {stack.api_key}  (tenant {DEFAULT_TENANT}, admin; in {s.dev_key_file})",
        f"  Data         {s.data_dir.resolve()}",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
