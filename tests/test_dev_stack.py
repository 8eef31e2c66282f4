"""``longhaul dev`` as a user runs it: a real subprocess with its own server, worker and API."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from tests.processes import LONGHAUL, Process, alive, clean_env, descendants, free_port, wait_until

STARTUP = 120.0
ROOT = Path(__file__).resolve().parent.parent


class Stack:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.api_port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
        self.payments_port = free_port()
        self.env = {**env, "ORDERS_DEV_PAYMENTS_PORT": str(self.payments_port)}  # the order pipeline's
        self.runs = 0

    @property
    def args(self) -> list[str]:
        return [
            "dev",
            f"--api-port={self.api_port}",
            f"--temporal-port={self.temporal_port}",
            f"--ui-port={self.ui_port}",
        ]

    @property
    def auth(self) -> dict[str, str]:
        """The key ``longhaul dev`` made for the default tenant and left in the data dir."""
        return {"Authorization": f"Bearer {(self.cwd / '.longhaul' / 'api-key').read_text().strip()}"}

    @property
    def api(self) -> str:
        return f"http://localhost:{self.api_port}"

    def start(self) -> Process:
        self.runs += 1
        process = Process(self.args, self.cwd, self.env, self.cwd / f"dev-{self.runs}.log")
        try:
            process.wait_for_output("longhaul dev is up", STARTUP)
        except BaseException:
            process.kill()
            raise
        return process

    def send(self, event_id: str, **payload: Any) -> str:
        response = httpx.post(
            f"{self.api}/api/events/hello", json={"id": event_id, "payload": payload}, headers=self.auth
        )
        assert response.status_code == 202, response.text
        run_id: str = response.json()["runs"][0]["run_id"]
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.api}/api/runs/{run_id}", headers=self.auth).json()
        return body

    def wait_completed(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        wait_until(lambda: self.run(run_id)["status"] == "completed", timeout, f"run {run_id} to complete")
        return self.run(run_id)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield Stack(tmp_path, clean_env())


def test_dev_stack_runs_events_stops_cleanly_and_keeps_history_across_restart(stack: Stack) -> None:
    dev = stack.start()
    try:
        assert f"http://localhost:{stack.ui_port}" in dev.output
        assert f"API key      {stack.auth['Authorization'][7:]}  (tenant default" in dev.output
        assert httpx.get(f"{stack.api}/api/runs").status_code == 401  # no key, no runs
        assert httpx.get(f"http://localhost:{stack.ui_port}").status_code == 200
        first = stack.send("smoke-1", name="Ada")
        assert stack.wait_completed(first)["output"] == {"message": "Hello, Ada!"}
        # A durable timer in flight when the stack stops fires after the restart.
        sleeper = stack.send("smoke-sleeper", name="Bob", wait_seconds=4)
        children = descendants(dev.popen.pid)
        assert len(children) >= 3  # server, worker, API
    finally:
        status = dev.stop()
    assert status == 0, dev.output
    assert "longhaul dev: stopped" in dev.output
    assert not [pid for pid in children if alive(pid)], "children outlived longhaul dev"

    dev = stack.start()
    try:
        assert stack.run(first)["status"] == "completed"  # app storage kept the record
        assert stack.wait_completed(sleeper)["output"] == {"message": "Hello, Bob!"}
        assert stack.wait_completed(stack.send("smoke-2", name="Cy"))["output"] == {"message": "Hello, Cy!"}
        history = _describe(f"127.0.0.1:{stack.temporal_port}", "hello/default/smoke-1")
        assert history == WorkflowExecutionStatus.COMPLETED  # Temporal's SQLite kept the history
    finally:
        assert dev.stop() == 0, dev.output


def _describe(address: str, workflow_id: str) -> WorkflowExecutionStatus | None:
    import asyncio

    async def describe() -> WorkflowExecutionStatus | None:
        client = await Client.connect(address)
        return (await client.get_workflow_handle(workflow_id).describe()).status

    return asyncio.run(describe())


@pytest.mark.parametrize(
    ("taken", "message"),
    [
        (["api"], "port {api} (HTTP API) is already in use; choose another with --api-port"),
        (
            ["temporal"],
            "port {temporal} (Temporal server) is already in use; choose another with --temporal-port",
        ),
        (
            ["temporal", "ui", "api"],
            "ports already in use: {temporal} (Temporal server: --temporal-port), {ui} (Temporal Web UI: "
            "--ui-port), {api} (HTTP API: --api-port); choose others with those options",
        ),
    ],
)
def test_dev_names_every_port_in_use_at_once_with_its_flag_and_starts_nothing(
    stack: Stack, taken: list[str], message: str
) -> None:
    ports = {"api": stack.api_port, "temporal": stack.temporal_port, "ui": stack.ui_port}
    with contextlib.ExitStack() as held:
        for name in taken:
            blocker = held.enter_context(socket.socket())
            blocker.bind(("127.0.0.1", ports[name]))
            blocker.listen()
        result = subprocess.run(
            [LONGHAUL, *stack.args], cwd=stack.cwd, env=stack.env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"longhaul dev: error: {message.format(**ports)}"]
    assert not (stack.cwd / ".longhaul" / "temporal.db").exists()  # nothing was started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_make_dev_stops_the_whole_stack_when_make_is_signalled(stack: Stack, sig: signal.Signals) -> None:
    """A script's `kill -INT <make pid>`: make passes no SIGINT on (only SIGTERM), the stack stops all the
    same, cleanly."""
    arguments = " ".join(stack.args[1:])
    make = Process(
        ["-s", "-C", str(ROOT), "dev", f"DEV_ARGS={arguments} --data-dir {stack.cwd / '.longhaul'}"],
        stack.cwd, stack.env, stack.cwd / "make-dev.log", program="make",
    )  # fmt: skip
    try:
        make.wait_for_output("longhaul dev is up", STARTUP)
        stack_pids = descendants(make.popen.pid)
        assert len(stack_pids) >= 4  # longhaul dev, the server, the worker, the API, ...
        os.kill(make.popen.pid, sig)
        wait_until(lambda: not any(alive(pid) for pid in stack_pids), 60, "the stack to stop")
    finally:
        make.kill()
    assert "longhaul dev: stopped" in make.output  # stopped cleanly, as on Ctrl-C


def test_dev_uses_existing_server_when_temporal_address_is_set(tmp_path: Path, dev_client: Client) -> None:
    address = dev_client.service_client.config.target_host
    stack = Stack(tmp_path, clean_env(TEMPORAL_ADDRESS=address))
    dev = stack.start()
    try:
        assert f"Temporal     {address}" in dev.output
        assert not (tmp_path / ".longhaul" / "temporal.db").exists()
        assert stack.wait_completed(stack.send("existing-1", name="Di"))["output"] == {
            "message": "Hello, Di!"
        }
    finally:
        assert dev.stop() == 0, dev.output


def child_pid(dev: Process, command: str) -> int:
    """The pid of the dev stack's child running ``longhaul <command>``."""
    for pid in descendants(dev.popen.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"longhaul.cli" in argv and command.encode() in argv:
            return pid
    raise AssertionError(f"no {command} child:\n{dev.output}")


def test_a_crashed_worker_and_api_are_restarted_while_the_rest_keeps_running(stack: Stack) -> None:
    dev = stack.start()
    try:
        sleeper = stack.send("crash-sleeper", name="Eve", wait_seconds=5)
        for command in ("worker", "api"):
            pid = child_pid(dev, command)
            os.kill(pid, signal.SIGKILL)
            dev.wait_for_output(
                f"{command} exited (exit code -9); restarting in 1s (restart 1 of at most 5", 30
            )
            dev.wait_for_output(f"{command} restarted (pid ", 30)
            assert child_pid(dev, command) != pid
        wait_until(lambda: _api_up(stack), 60, "the restarted API")
        # The run in flight outlived its worker: the restarted one finishes it.
        assert stack.wait_completed(sleeper, 90)["output"] == {"message": "Hello, Eve!"}
        assert stack.wait_completed(stack.send("after-crash", name="Fay"))["output"] == {
            "message": "Hello, Fay!"
        }
    finally:
        assert dev.stop() == 0, dev.output


def _api_up(stack: Stack) -> bool:
    try:
        return httpx.get(f"{stack.api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_child_that_keeps_dying_stops_the_stack_after_the_restart_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import sys

    from longhaul.config import Settings
    from longhaul.server.children import RestartPolicy
    from longhaul.server.dev import DevStack

    stack = DevStack(Settings(data_dir=tmp_path), RestartPolicy(limit=2, first_delay=0.05, max_delay=0.1))
    crashing = stack._spawn("crasher", [sys.executable, "-c", "raise SystemExit(3)"], stop_timeout=1)
    steady = stack._spawn("steady", [sys.executable, "-c", "import time; time.sleep(60)"], stop_timeout=1)
    try:
        assert await asyncio.wait_for(stack.supervise(asyncio.Event()), 30) == 1
    finally:
        await stack.stop()
    said = capsys.readouterr().err
    assert "crasher exited (exit code 3); restarting in 0.05s (restart 1 of at most 2 within 600s)" in said
    assert "crasher exited (exit code 3); restarting in 0.1s (restart 2 of at most 2 within 600s)" in said
    assert "crasher exited (exit code 3) after 2 restarts within 600s; stopping" in said
    assert len(crashing.restarts) == 2 and not steady.restarts  # the steady one was left alone


def test_dev_gives_its_temporal_ui_the_signed_codec_url_when_payloads_are_encrypted(tmp_path: Path) -> None:
    """The dev server's UI sends no credentials to a codec endpoint: it gets the API's signed codec URL
    (tests/test_ui.py drives a real Temporal UI decoding through it)."""
    import base64

    from longhaul.api.codec import codec_url
    from longhaul.config import Settings
    from longhaul.server.children import RestartPolicy
    from longhaul.server.dev import DevStack
    from longhaul.signing import signing_key

    plain = Settings(data_dir=tmp_path)
    assert "--ui-codec-endpoint" not in DevStack(plain, RestartPolicy()).temporal_argv()
    encrypted = plain.model_copy(update={"payload_keys": {"k1": base64.b64encode(b"k" * 32).decode()}})
    argv = DevStack(encrypted, RestartPolicy()).temporal_argv()
    endpoint = argv[argv.index("--ui-codec-endpoint") + 1]
    assert endpoint == codec_url(encrypted.api_url, signing_key(encrypted))
    assert endpoint.startswith(f"{encrypted.api_url}/codec/signed/")
