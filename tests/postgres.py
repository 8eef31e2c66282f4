"""A real PostgreSQL server for the tests: a throwaway cluster from Debian's package (``make tools``
installs it), started once per test session on a free loopback port, one fresh database per test.

Runs as the ``postgres`` user when the tests run as root (PostgreSQL refuses root), with durability off
(``fsync=off``): the tests check behaviour, and a crashed test server is simply thrown away."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from longhaul.processes import die_with_parent
from tests.processes import free_port, wait_until

# A module marked with this runs each test on SQLite and on PostgreSQL (the ``app_database`` fixture).
both_databases = pytest.mark.parametrize("app_database", ["sqlite", "postgresql"], indirect=True)

INSTALL_HINT = "PostgreSQL's server is not installed: run `make tools` (Debian package postgresql)"


def server_binaries() -> Path:
    """The bin directory of the newest PostgreSQL server installed (Debian keeps each major apart)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise FileNotFoundError(INSTALL_HINT)
    return found[-1].parent


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        engine = create_async_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()
        return self.url(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a cluster in a temporary directory; stopped and removed on exit."""
    bin_dir = server_binaries()
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    root = Path(tempfile.mkdtemp(prefix="longhaul-pg-"))
    os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "longhaul",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        user=owner.pw_uid,
        group=owner.pw_gid,
    )
    settings = {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
    server = subprocess.Popen(
        [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root), *options],
        stdout=subprocess.DEVNULL,
        stderr=(root / "server.log").open("w"),
        preexec_fn=die_with_parent(),
        user=owner.pw_uid,
        group=owner.pw_gid,
    )
    try:
        wait_until(
            lambda: (
                server.poll() is not None
                or subprocess.run(
                    [bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
                ).returncode
                == 0
            ),
            30,
            "PostgreSQL to accept connections",
        )
        if server.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited: {(root / 'server.log').read_text()[-2000:]}")
        yield PostgresServer("127.0.0.1", port, "longhaul")
    finally:
        server.send_signal(signal.SIGINT)  # "fast" shutdown: ends any session still open
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)
