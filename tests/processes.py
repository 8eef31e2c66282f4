"""Helpers for tests that run longhaul's commands as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from longhaul.ports import free_port as free_port
from longhaul.project import APP_DIR_VARIABLE

LONGHAUL = str(Path(sys.executable).parent / "longhaul")
ROOT = Path(__file__).resolve().parent.parent  # this repository: the application the tests run


# The shipped pipelines' settings (their env prefixes), which a developer's shell may set too.
PIPELINE_PREFIXES = ("ORDERS_", "VIDEO_", "CLEANUP_")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's TEMPORAL_*, LONGHAUL_* and pipelines' settings, plus
    ``extra``. The processes run in a temporary folder: ``LONGHAUL_APP_DIR`` tells them where the
    application is (this repository), as a service unit started outside the application's folder would."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "LONGHAUL_", *PIPELINE_PREFIXES))
    }
    return {**env, APP_DIR_VARIABLE: str(ROOT), **extra}


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def descendants(pid: int) -> set[int]:
    """All live descendant pids of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Process:
    """A longhaul command (or ``program``'s) running in the background, its output captured to a file."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str], log: Path, program: str = LONGHAUL
    ) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [program, *args], cwd=cwd, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if self.popen.poll() is not None:
                raise AssertionError(f"exited with {self.popen.returncode} before '{needle}':\n{self.output}")
            if time.monotonic() > deadline:
                what = f"timed out after {timeout}s waiting for '{needle}'"
                raise AssertionError(f"{what} in output:\n{self.output}")
            time.sleep(0.1)

    async def ready(self, needle: str, within: float) -> None:
        """:meth:`wait_for_output` for async tests. Waiting must not block their event loop: an in-process
        API's dispatcher frozen mid-transaction holds SQLite's write lock, and the process waits on it
        (a worker's schema check timed out that way in CI)."""
        await asyncio.to_thread(self.wait_for_output, needle, within)

    def stop(self, timeout: float = 60) -> int:
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._out.close()


def create_key(cwd: Path, env: dict[str, str], role: str = "tenant") -> str:
    """An API key (of ``role``) for the default tenant, made with the CLI as an operator would."""
    result = subprocess.run(
        [LONGHAUL, "keys", "create", "--tenant", "default", "--name", "tests", "--role", role],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    notice = result.stderr.splitlines()[-1]  # after the log line of the schema upgrade on first use
    assert notice.startswith(f"{role} key ") and "for tenant default (shown once" in notice
    return result.stdout.strip()
