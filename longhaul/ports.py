"""Listening ports: whether one is taken, and a free one for a test's or a benchmark's stack."""

from __future__ import annotations

import errno
import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 15000
_given: set[int] = set()
_random = random.SystemRandom()


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` (a bind with ``SO_REUSEADDR`` fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, not handed out before by this process, and below the kernel's
    ephemeral range. A port bound to 0 comes from that range, and so do the source ports of outgoing
    connections and the internal services of a Temporal dev server: any of them could take such a port
    between this check and the stack's bind (CI lost an API's port so, twice)."""
    top = _ephemeral_start()
    while True:
        port = _random.randrange(_LOWEST, top)
        if port not in _given and not port_in_use(host, port):
            _given.add(port)
            return port
