"""Child processes that cannot outlive their parent (the dev stack's children, FFmpeg under a worker)."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

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
