"""Process-wide setup: child processes that cannot outlive their parent (the dev stack's children, FFmpeg
under a worker, ``longhaul dev`` under make), and the garbage collector of a long-lived server process."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the kernel sends ``sig`` to the child when its parent dies, however it dies
    (even SIGKILL), so no orphan keeps running or writing files (Linux; a no-op elsewhere)."""

    def _set() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig))
        except (OSError, AttributeError):
            pass

    return _set


FATAL_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


def caught_signals(pid: int) -> set[int]:
    """The signals process ``pid`` has handlers for (``SigCgt`` in /proc; empty where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                mask = int(line.split()[1], 16)
                return {number for number in range(1, 65) if mask & (1 << (number - 1))}
    except OSError:
        pass
    return set()


def stop_with_parent(sig: signal.Signals = signal.SIGINT) -> bool:
    """Have ``sig`` sent to this process when its parent dies, or when the parent starts handling a fatal
    signal it catches (it then drops its handler, as make does for SIGINT before it waits for its
    command, never passing the signal on). False if the parent is gone already."""
    parent = os.getppid()
    die_with_parent(sig)()
    if os.getppid() != parent:
        return False
    watched = caught_signals(parent) & {int(s) for s in FATAL_SIGNALS}

    def watch() -> None:
        while caught_signals(parent) & watched == watched and os.getppid() == parent:
            time.sleep(0.2)
        os.kill(os.getpid(), sig)

    if watched:
        threading.Thread(target=watch, name="longhaul-parent-watch", daemon=True).start()
    return True


YOUNG_GC_THRESHOLD = 20_000  # allocations between two collections of new objects (Python's default: 700)


def settle_heap() -> None:
    """Call once a server process has loaded what it keeps (modules, the catalog, the app's routes): that
    heap is moved out of the garbage collector's reach (``gc.freeze``), and young collections run less
    often. Measured on ``longhaul api`` under 50 connections (bench, 2 cores): 510-560 events/s with p99
    290-330 ms before, 720-755/s with p99 95-115 ms after; the collector's passes had been a fifth of its
    CPU."""
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, 20, 20)
