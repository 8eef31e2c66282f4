"""The ``longhaul`` command as a subprocess: exit statuses must be the command's, never a teardown crash.

The Temporal SDK can crash while the interpreter finalizes (sdk-python #300); measured here: a bare
script using a client crashed in 1 of 16 runs, one starting a test server in 4 to 6 of 16. ``main``
leaves with ``os._exit`` after shutting everything down; these tests run commands that use a client
many times and demand the command's own status every time.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress
from temporalio.client import Client

from longhaul.cli.common import progress_columns
from tests.processes import LONGHAUL, Process, clean_env, free_port

RUNS = 10


@pytest.fixture
def worker_env(dev_client: Client) -> dict[str, str]:
    return clean_env(
        TEMPORAL_ADDRESS=dev_client.service_client.config.target_host,
        LONGHAUL_TASK_QUEUE="cli-checks",
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="1",
    )


def test_worker_command_exits_zero_on_sigterm_every_time(tmp_path: Path, worker_env: dict[str, str]) -> None:
    statuses = []
    for attempt in range(RUNS):
        worker = Process(["worker"], tmp_path, worker_env, tmp_path / f"worker-{attempt}.log")
        try:
            worker.wait_for_output("worker polling task queues 'cli-checks'", 60)
            statuses.append(worker.stop())
        finally:
            worker.kill()
        assert "worker stopped" in worker.output
    assert statuses == [0] * RUNS


@pytest.fixture
def api_url(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    api = Process(["api", f"--port={port}"], tmp_path, worker_env, tmp_path / "api.log")
    try:
        api.wait_for_output("Application startup complete", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        api.stop()


def _status(tmp_path: Path, env: dict[str, str], api_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LONGHAUL, "status", f"--url={api_url}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_exits_zero_every_time_when_all_parts_are_healthy(
    tmp_path: Path, worker_env: dict[str, str], api_url: str
) -> None:
    results = [_status(tmp_path, worker_env, api_url) for _ in range(RUNS)]
    assert [r.returncode for r in results] == [0] * RUNS, [r.stdout + r.stderr for r in results]
    assert results[0].stdout.split() == ["temporal", "ok", "app", "storage", "ok", "api", "ok"]


def test_status_names_the_unreachable_part_and_exits_1(tmp_path: Path, worker_env: dict[str, str]) -> None:
    result = _status(tmp_path, worker_env, "http://127.0.0.1:1")
    assert result.returncode == 1
    lines = dict(
        line.split(maxsplit=1) for line in result.stdout.replace("app storage", "storage").splitlines()
    )
    assert lines["temporal"] == "ok"
    assert lines["storage"] == "ok"
    assert lines["api"].startswith("unreachable at http://127.0.0.1:1")


def test_invalid_setting_is_one_clear_error_with_status_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [LONGHAUL, "status"],
        cwd=tmp_path,
        env=clean_env(LONGHAUL_API_PORT="not-a-port"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("longhaul: invalid settings:")
    assert "api_port" in result.stderr
    assert "Traceback" not in result.stderr


def test_schedules_sync_is_idempotent_and_list_shows_next_runs(
    tmp_path: Path, worker_env: dict[str, str]
) -> None:
    def cli(*args: str) -> str:
        result = subprocess.run(
            [LONGHAUL, "schedules", *args],
            cwd=tmp_path,
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    planned = cli("sync", "--dry-run").splitlines()
    assert "would create    longhaul.cleanup-old-videos" in planned
    assert "would create    longhaul.reconcile-runs" in planned
    assert "create    longhaul.cleanup-old-videos" in cli("sync").splitlines()
    assert cli("sync").splitlines() == [
        "unchanged longhaul.cleanup-old-videos",
        "unchanged longhaul.reconcile-runs",
    ]
    assert cli("pause", "cleanup-old-videos") == "paused cleanup-old-videos\n"
    listed = {line.split()[0]: line for line in cli("list").splitlines()}
    assert "cron 0 3 * * * (UTC)  paused  next:" in listed["longhaul.cleanup-old-videos"]
    assert (
        "every 0:10:00  active  next: 20" in listed["longhaul.reconcile-runs"]
    )  # left for the session's end


def _longhaul(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LONGHAUL, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_admin_lists_and_redelivers_dead_letters_from_the_cli(
    tmp_path: Path, worker_env: dict[str, str], api_url: str
) -> None:
    import json
    import time

    import httpx

    from longhaul.webhooks import SIGNATURE_HEADER, sign

    created = _longhaul(tmp_path, worker_env, "keys", "create", "--tenant", "ops", "--role", "admin")
    assert created.returncode == 0 and "admin key" in created.stderr
    env = {**worker_env, "LONGHAUL_API_KEY": created.stdout.strip(), "LONGHAUL_URL": api_url}
    assert " ops  admin  active" in _longhaul(tmp_path, env, "keys", "list").stdout
    body = json.dumps({"id": "evt_cli", "type": "charge.succeeded", "data": "oops"}).encode()
    secret = "whsec_longhaul_dev"  # the default setting, which the API subprocess uses
    headers = {SIGNATURE_HEADER: sign(secret, int(time.time()), body), "content-type": "application/json"}
    kept = httpx.post(f"{api_url}/api/webhooks/payments", content=body, headers=headers).json()
    listed = _longhaul(tmp_path, env, "webhooks", "dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)["dead_letters"]
    assert letter["id"] == kept["dead_letter"] and letter["event_id"] == "evt_cli"
    table = _longhaul(tmp_path, env, "webhooks", "dead-letters")
    assert kept["dead_letter"] in table.stdout and "is not an object" in table.stdout
    again = _longhaul(tmp_path, env, "webhooks", "redeliver", kept["dead_letter"])
    assert again.returncode == 1 and '"received": false' in again.stdout  # still unprocessable
    as_tenant = {
        **env,
        "LONGHAUL_API_KEY": _longhaul(tmp_path, env, "keys", "create", "--tenant", "t").stdout,
    }
    refused = _longhaul(tmp_path, as_tenant, "webhooks", "dead-letters")
    assert refused.returncode == 1 and "403" in refused.stderr and "admin key" in refused.stderr


def test_orders_seed_adds_demo_products_to_the_tenant_given(tmp_path: Path) -> None:
    env = clean_env()
    assert _longhaul(tmp_path, env, "orders", "seed", "--tenant", "acme").stdout == (
        "3 demo products added for tenant acme\n"
    )
    assert _longhaul(tmp_path, env, "orders", "seed", "--tenant", "acme").stdout.startswith("0 demo products")
    assert _longhaul(tmp_path, env, "orders", "seed").stdout == "3 demo products added for tenant default\n"


@pytest.mark.parametrize("width", [60, 80, 140])
def test_the_progress_bar_stays_whole_in_a_narrow_terminal_and_the_stage_is_cut_short(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    progress = Progress(*progress_columns(), console=console, expand=True, auto_refresh=False)
    stage = "running · transcoding 1080p, 720p and 480p in parallel (3 renditions)"
    progress.add_task("video-processing", total=100, completed=50, stage=stage)
    console.print(progress.make_tasks_table(progress.tasks))
    [line] = out.getvalue().rstrip().splitlines()
    assert len(line) <= width
    assert "━" * 12 in line and "50%" in line  # the whole bar (24 cells: 12 done) and the percent
    assert ("…" in line) == (width < 120) and line.startswith("video-processing")
