"""A real HTTP webhook receiver on loopback, in a thread, that can be down and then up.

Optionally over TLS (``tls``: a server context; the SNI names it was asked for are recorded), answering
with extra headers (a redirect's Location), and reachable under a host name (``host``) that a test
resolves to 127.0.0.1."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, port: int, status: int = 204, *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.port, self.status, self.host, self.tls = port, status, host, tls
        self.headers = headers or {}
        self.received: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/hooks/pds"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                              "path": self.path, "body": body, "json": json.loads(body)})
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls is not None:
            def record_sni(sock: Any, server_name: str | None, context: Any) -> None:
                with receiver._lock:
                    receiver.server_names.append(server_name)

            self.tls.sni_callback = record_sni
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(r["json"]["request"]["id"], r["json"]["event"]) for r in self.received]
