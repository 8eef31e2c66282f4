"""A local HTTP endpoint that records what is POSTed to it (webhooks, notifications), for tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    url: str = ""
    posts: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)  # (headers, body)
    raw: list[bytes] = field(default_factory=list)  # the bodies as sent (to check signatures)


@contextmanager
def receiver(
    path: str = "/hook",
    status: int = 204,
    fail_first: int = 0,
    host: str = "127.0.0.1",
    location: str | None = None,
) -> Iterator[Received]:
    """Answers every POST to ``url`` with ``status`` (the first ``fail_first`` with 503; a redirect to
    ``location`` where given) and keeps its headers and JSON body."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            received.raw.append(raw)
            received.posts.append((dict(self.headers.items()), json.loads(raw)))
            self.send_response(503 if len(received.posts) <= fail_first else status)
            if location is not None:
                self.send_header("Location", location)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    received.url = f"http://{host}:{server.server_address[1]}{path}"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
