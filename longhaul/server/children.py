"""The children a dev stack supervises: one process each, how a crashed one is started again, how one
is stopped, and the one-line failures the supervisor reports."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from longhaul.ports import port_in_use


class DevError(RuntimeError):
    """A failure to report as one line (port in use, a child that did not come up)."""


def check_ports_free(ports: list[tuple[str, int, str, str]]) -> None:
    """Fail with one clear line naming every port of ``ports`` (host, port, what, flag) that is taken,
    each with the flag that changes it (not one per attempt)."""
    busy = [(port, what, flag) for host, port, what, flag in ports if port_in_use(host, port)]
    if len(busy) == 1:
        [(port, what, flag)] = busy
        raise DevError(f"port {port} ({what}) is already in use; choose another with {flag}")
    if busy:
        named = ", ".join(f"{port} ({what}: {flag})" for port, what, flag in busy)
        raise DevError(f"ports already in use: {named}; choose others with those options")


@dataclass(frozen=True)
class RestartPolicy:
    """How a crashed child is started again: after ``first_delay`` seconds, doubling up to ``max_delay``,
    at most ``limit`` times within ``window`` seconds (then the stack gives up and stops)."""

    limit: int = 5
    window: float = 600.0
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, recent: int) -> float:
        return float(min(self.first_delay * 2**recent, self.max_delay))


@dataclass
class Child:
    name: str
    argv: list[str]
    log_file: Path | None
    stop_timeout: float
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)  # monotonic times of restarts
    restart_at: float | None = None  # a restart is due then (the child is down)

    def alive(self) -> bool:
        return self.process.poll() is None


async def ended(process: subprocess.Popen[bytes], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``process`` to exit (after a SIGTERM), then kill it."""
    deadline = time.monotonic() + grace
    while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a process
        await asyncio.sleep(0.1)
    if process.poll() is None:
        process.kill()
    process.wait()
