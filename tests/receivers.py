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


@contextmanager
def receiver(path: str = "/hook", status: int = 204) -> Iterator[Received]:
    """Answers every POST to ``url`` with ``status`` and keeps its headers and JSON body."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            received.posts.append((dict(self.headers.items()), body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
