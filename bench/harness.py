"""What every benchmark shares: the embedded server as users run it, timing, medians, the result file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from bench.events import StepsRequested
from longhaul.binaries import temporal_cli
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.keys import KeyStore
from longhaul.migrations import upgrade
from longhaul.ports import free_port
from longhaul.processes import die_with_parent
from longhaul.server.service import workflow_id_for
from longhaul.temporal import SEARCH_ATTRIBUTES, SERVER_FEATURES, SQLITE_FAST

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LONGHAUL = str(Path(sys.executable).parent / "longhaul")


@asynccontextmanager
async def embedded_server(
    data_dir: Path, extra_args: Sequence[str] = ()
) -> AsyncIterator[WorkflowEnvironment]:
    """The dev server as ``longhaul dev`` runs it: SQLite file persistence, WAL, synchronous=normal (and
    ``extra_args``: what a tuning benchmark tries)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=str(data_dir / "temporal.db"),
        dev_server_extra_args=[*SQLITE_FAST, *SERVER_FEATURES, *extra_args],
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        yield env
    finally:
        await env.shutdown()


def versions() -> str:
    """The versions that decide the numbers: the SDK, the server binary, the database drivers."""
    from importlib.metadata import version

    server = subprocess.run([str(temporal_cli()), "--version"], capture_output=True, text=True).stdout
    packages = ("temporalio", "sqlalchemy", "aiosqlite", "fastapi", "uvicorn", "httpx", "pydantic")
    return ", ".join([server.strip(), *(f"{p} {version(p)}" for p in packages)])


def address_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


class Service:
    """A process the benchmark runs beside the server (``longhaul worker``, ``longhaul api``, the plain
    worker), its output in a log file; it dies with the benchmark."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], root: Path) -> None:
        self.name = name
        self.log = root / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        """Resident memory of the process now (VmRSS), in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{self.name} is not running")

    async def wait_for(self, ready: Callable[[], Awaitable[bool]], patience: float = 60) -> None:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(Exception):
                if await ready():
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {patience}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Stack:
    """The embedded server and the longhaul processes a benchmark starts on it, stopped together."""

    root: Path
    env: WorkflowEnvironment
    catalog: str = "bench.catalog:BENCH_CATALOG"
    services: list[Service] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each process of the stack: the server, each service, this one."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished ones: wrk (services run on)
        used = {
            "temporal server": cpu_seconds(server_pid(self.root)),
            "benchmark driver": cpu_seconds(os.getpid()),
            "wrk": children.ru_utime + children.ru_stime,
        }
        used.update({service.name: service.cpu_seconds() for service in self.services})
        return used

    def settings(self, **overrides: Any) -> Settings:
        return Settings(**{"data_dir": self.root / "data", "catalog": self.catalog, **overrides})

    def environ(self, **settings: str) -> dict[str, str]:
        """The environment of a longhaul process on this stack: its server, data dir and catalog, and
        ``settings``: longhaul's by field name (``task_queue``), a pipeline's by variable (``ORDERS_…``)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LONGHAUL_"))}
        values = {"data_dir": str(self.root / "data"), "catalog": self.catalog, **settings}
        return {
            **base,
            "PYTHONPATH": str(ROOT),
            "TEMPORAL_ADDRESS": address_of(self.env),
            **{k if k.isupper() else f"LONGHAUL_{k.upper()}": v for k, v in values.items()},
        }

    async def worker(
        self, name: str = "worker", program: Sequence[str] = (LONGHAUL,), **settings: str
    ) -> Service:
        """``longhaul worker`` (run by ``program``), ready once it polls its task queue."""
        service = self._start(name, [*program, "worker"], self.environ(**settings))
        task_queue = settings.get("task_queue", "longhaul")
        await service.wait_for(lambda: _polled_by(self.client, task_queue, service.pid))
        return service

    def dispatcher(self, name: str = "dispatcher", **settings: str) -> Service:
        """``longhaul dispatcher`` (starting the run queue's runs), not waited for."""
        return self._start(name, [LONGHAUL, "dispatcher"], self.environ(**settings))

    async def plain_worker(
        self, task_queue: str, webhook_port: int | None = None, **settings: str
    ) -> Service:
        """A hand-written temporalio worker (bench/plain_worker.py) with the baseline workflows (and, with
        ``webhook_port``, the payment provider's webhook receiver)."""
        args = [sys.executable, "-m", "bench.plain_worker", task_queue]
        if webhook_port is not None:
            args.append(str(webhook_port))
        service = self._start("plain-worker", args, self.environ(**settings))
        await service.wait_for(lambda: _polled_by(self.client, task_queue, service.pid))
        return service

    async def api(
        self,
        name: str = "api",
        command: str = "api",
        program: Sequence[str] = (LONGHAUL,),
        **settings: str,
    ) -> tuple[Service, str, str]:
        """``longhaul api`` (or ``command``: ``serve``, all in one; run by ``program``) on the port
        ``api_port`` of ``settings`` (default: a free one), ready once /health answers; returns it, its
        URL and a key."""
        port = int(settings.pop("api_port", 0)) or free_port()
        environ = self.environ(api_port=str(port), **settings)
        data_dir = Path(settings.get("data_dir", self.root / "data"))
        db = Database(self.settings(data_dir=data_dir).app_database_url)
        try:
            await upgrade(db)
            _, key = await KeyStore(db).create("bench", "benchmark")
        finally:
            await db.close()
        service = self._start(name, [*program, command], environ)
        url = f"http://127.0.0.1:{port}"
        await service.wait_for(lambda: _healthy(url))
        if command == "serve":
            task_queue = settings.get("task_queue", "longhaul")
            await service.wait_for(lambda: _polled_by(self.client, task_queue, service.pid))
        return service, url, key

    async def payments(self, webhook_url: str, name: str = "payments") -> str:
        """A local payment provider (``longhaul payments``) confirming to ``webhook_url``, with its ledger
        in a data dir of its own (``name``)."""
        port = free_port()
        args = [LONGHAUL, "payments", "--port", str(port), "--webhook-url", webhook_url]
        service = self._start(name, args, self.environ(data_dir=str(self.root / name)))
        url = f"http://127.0.0.1:{port}"
        await service.wait_for(lambda: _healthy(url))
        return url

    async def measure(self, comparison: Comparison, variant: str, action: Awaitable[Any]) -> None:
        """Time ``action`` as one measurement of ``variant``, with the CPU each process spent on it."""
        before = self.cpu_seconds()
        start = time.perf_counter()
        await action
        comparison.add(variant, time.perf_counter() - start)
        comparison.add_cpu(variant, before, self.cpu_seconds())

    def _start(self, name: str, args: list[str], environ: dict[str, str]) -> Service:
        service = Service(name, args, environ, self.root)
        self.services.append(service)
        return service


async def _healthy(url: str) -> bool:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/health")).status_code == 200


async def _polled_by(client: Client, task_queue: str, pid: int) -> bool:
    """Whether process ``pid`` polls ``task_queue`` (a worker's identity starts with its pid)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue))
    )
    return any(poller.identity.startswith(f"{pid}@") for poller in described.pollers)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(root: Path) -> int:
    """The embedded Temporal server of the stack in ``root``: this process's child running the temporal
    binary on a database in ``root``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_text()
                if parent == os.getpid() and "temporal" in command and str(root) in command:
                    return int(entry.name)
    raise RuntimeError("no embedded Temporal server among this process's children")


@asynccontextmanager
async def stack(name: str, server_args: Sequence[str] = ()) -> AsyncIterator[Stack]:
    """A fresh embedded server (given ``server_args`` too) in a temporary directory; every service
    started on it is stopped after."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        async with embedded_server(root, server_args) as env:
            running = Stack(root, env)
            try:
                yield running
            finally:
                for service in reversed(running.services):
                    service.stop()


# A variant: given a batch name, the number of items and how many at a time, the coroutine that runs them.
Variant = Callable[[str, int, int], Awaitable[None]]


def each(make: Callable[[str], Callable[[int], Awaitable[None]]]) -> Variant:
    """The variant that runs ``make(batch)(i)`` for every item ``i``, ``in_flight`` at a time."""

    def run(batch: str, count: int, in_flight: int) -> Awaitable[None]:
        return keep_in_flight(count, in_flight, make(batch))

    return run


# The API settings of benchmarks that measure throughput: the per-tenant ingest limit out of the way.
UNLIMITED_INGEST = {"ingest_rate_limit": "1000000", "ingest_burst": "1000000"}


def api_client(url: str, key: str, connections: int, timeout: float = 60) -> httpx.AsyncClient:
    """An HTTP client of the API with ``key``, up to ``connections`` kept open."""
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=timeout,
    )


async def warm_up(variants: Mapping[str, Variant], count: int, in_flight: int) -> None:
    """Run each variant once, unmeasured: connections, caches, the sandbox."""
    for variant in variants.values():
        await variant(f"warm-{uuid.uuid4().hex[:6]}", count, in_flight)


async def interleaved(
    bench: Stack,
    comparison: Comparison,
    variants: Mapping[str, Variant],
    count: int,
    in_flight: int,
    repeats: int,
) -> None:
    """``repeats`` measurements of each variant (``count`` items, ``in_flight`` at a time), alternating
    the order every repeat, so drift on a noisy machine hits every variant alike."""
    for repeat in range(repeats):
        sequence = list(variants.items())
        for name, variant in sequence if repeat % 2 == 0 else reversed(sequence):
            await bench.measure(comparison, name, variant(uuid.uuid4().hex[:8], count, in_flight))


async def keep_in_flight(count: int, in_flight: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Run ``one(i)`` for i in range(count), ``in_flight`` at a time."""
    gate = asyncio.Semaphore(in_flight)

    async def guarded(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(guarded(i) for i in range(count)))


async def post_event(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST an event, sent again if the connection drops (a kept-alive connection the server closed):
    the event id makes the second delivery return the first one's run."""
    for attempt in range(3):
        try:
            answer = await http.post(path, json=body)
            return answer.raise_for_status()
        except httpx.TransportError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def result_once_started(client: Client, workflow_id: str, patience: float = 60) -> Any:
    """The workflow's result; an accepted event's workflow is started by the run queue's dispatcher a
    moment after the API answered, so "not found" at first means "not started yet": looked for again
    after 2 ms, then twice as long each time up to 50 ms (soon found when it starts at once, and few
    calls to the server when a backlog delays it)."""
    deadline = time.monotonic() + patience
    pause = 0.002
    while time.monotonic() < deadline:
        try:
            return await client.get_workflow_handle(workflow_id).result()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
    raise RuntimeError(f"{workflow_id} was not started within {patience} s")


One = Callable[[int], Awaitable[None]]


def started_by_hand(
    client: Client, workflow: str, task_queue: str, *, eager: bool = False
) -> Callable[[str], One]:
    """Hand-written temporalio: ``client.start_workflow`` of the three steps' workflow, then its result
    (``eager``: the first workflow task handed straight to a worker polling with ``client``)."""

    def make(batch: str) -> One:
        async def one(i: int) -> None:
            handle = await client.start_workflow(
                workflow,
                StepsRequested(item=f"item-{i}"),
                id=f"{workflow}-{batch}-{i}",
                task_queue=task_queue,
                request_eager_start=eager,
            )
            await handle.result()

        return one

    return make


def sent_to_longhaul(
    http: httpx.AsyncClient, client: Client, event: str, workflow: str
) -> Callable[[str], One]:
    """Through longhaul: the three steps' event POSTed to the API, then its run's workflow result."""

    def make(batch: str) -> One:
        async def one(i: int) -> None:
            event_id = f"{event}-{batch}-{i}"
            await post_event(http, f"/api/events/{event}", {"id": event_id, "payload": {"item": f"item-{i}"}})
            await result_once_started(client, workflow_id_for(workflow, "bench", event_id))

        return one

    return make


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of ``values``, nearest-rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


@dataclass
class Comparison:
    """Variants measured side by side (interleaved) in one run; ratios of medians, never one absolute."""

    name: str
    baseline: str
    work: int | None = None  # items each measurement processed: reported as a rate too
    seconds: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, variant: str, value: float) -> None:
        self.seconds.setdefault(variant, []).append(value)

    def add_cpu(self, variant: str, before: dict[str, float], after: dict[str, float]) -> None:
        """CPU seconds each process spent during one measurement of ``variant`` (where the time goes)."""
        spent = self.cpu.setdefault(variant, {})
        for process, seconds in after.items():
            spent[process] = spent.get(process, 0.0) + seconds - before.get(process, 0.0)

    def median(self, variant: str) -> float:
        return statistics.median(self.seconds[variant])

    def ratio(self, variant: str, baseline: str | None = None) -> float:
        """Speed of ``variant`` relative to the baseline, or to ``baseline`` (1.0 = as fast; below 1 =
        slower)."""
        return self.median(baseline or self.baseline) / self.median(variant)

    def rate(self, variant: str) -> float:
        """Items per second at the median time (``work`` items per measurement)."""
        assert self.work is not None
        return self.work / self.median(variant)

    def _cpu_per_measurement(self, variant: str) -> dict[str, float]:
        count = len(self.seconds[variant])
        return {process: round(used / count, 2) for process, used in self.cpu[variant].items()}

    def report(self) -> dict[str, Any]:
        rows = {
            variant: {
                "median_s": round(self.median(variant), 4),
                "runs_s": [round(v, 4) for v in values],
                "ratio_to_baseline": round(self.ratio(variant), 4),
                **({"per_s": round(self.rate(variant), 2)} if self.work else {}),
                **({"cpu_s": self._cpu_per_measurement(variant)} if variant in self.cpu else {}),
            }
            for variant, values in self.seconds.items()
        }
        return {
            "benchmark": self.name,
            "baseline": self.baseline,
            "variants": rows,
            **self.notes,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "versions": versions(),
            },
        }

    def print_and_save(self) -> Path:
        report = self.report()
        width = max(len(v) for v in report["variants"])
        print(f"\n{self.name}: median of {len(next(iter(self.seconds.values())))} runs, interleaved")
        print(f"  {'variant':<{width}}  {'median s':>9}  {'per s':>8}  {'ratio':>6}")
        for variant, row in report["variants"].items():
            rate = f"{row['per_s']:>8.1f}" if "per_s" in row else f"{'':>8}"
            print(f"  {variant:<{width}}  {row['median_s']:>9.3f}  {rate}  {row['ratio_to_baseline']:>6.3f}")
        for variant, row in report["variants"].items():
            if "cpu_s" in row:
                used = ", ".join(f"{process} {seconds:.1f}" for process, seconds in row["cpu_s"].items())
                print(f"  CPU s per measurement, {variant}: {used}")
        for key, value in self.notes.items():
            print(f"  {key}: {value}")
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2))
        print(f"  written to {path}")
        return path
