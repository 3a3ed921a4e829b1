"""Prometheus metrics: served over HTTP (metrics.listen) and/or written
for node_exporter's textfile collector (metrics.textfile). What is
exported is metric_families.py's; here only the serving and the writing.
A scrape reads what the daemon already holds and never calls charon."""
from __future__ import annotations

import socket
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from .files import write_atomically
from .metric_families import connection_exposition, families


class _Daemon(Collector):
    """The daemon's and charons' families, from the snapshot being served."""

    def __init__(self):
        self.snap = None
        self.now = 0.0

    def collect(self):
        return families(self.snap, self.now)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # a scrape is not news
        pass


class Metrics:
    def __init__(self, snapshot, listen: str | None, textfile: str | None):
        self.snapshot = snapshot  # () -> metric_families.Snapshot
        self.textfile = textfile
        self._daemon = _Daemon()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._daemon)
        self._lock = threading.Lock()  # scrapes come in threads of their own
        self.server = None
        if listen:
            host, _, port = listen.rpartition(":")
            host = host.strip("[]")
            server_class = _Server
            if ":" in host:
                server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
            self.server = make_server(host, int(port), self._app, server_class, _Quiet)
            threading.Thread(target=self.server.serve_forever, name="vpnd-metrics",
                             daemon=True).start()

    def exposition(self) -> bytes:
        with self._lock:
            snap, now = self.snapshot(), time.time()
            self._daemon.snap, self._daemon.now = snap, now
            return connection_exposition(snap.report, now).encode() + \
                generate_latest(self._registry)

    def _app(self, environ, start_response):
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"metrics are at /metrics\n"]
        body = self.exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def write_textfile(self) -> None:
        """Atomically: node_exporter never reads half a file."""
        if self.textfile:
            write_atomically(self.textfile, self.exposition(), 0o644)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
