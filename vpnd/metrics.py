"""Prometheus metrics: served over HTTP (metrics.listen) and/or written
for node_exporter's textfile collector (metrics.textfile). What is
exported is metric_families.py's; here only the serving and the writing.
A scrape reads what the daemon already holds and never calls charon."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.registry import Collector

from .metric_families import families


class _Collector(Collector):
    def __init__(self, snapshot):
        self.snapshot = snapshot  # () -> metric_families.Snapshot

    def collect(self):
        return families(self.snapshot(), time.time())


class Metrics:
    def __init__(self, snapshot, listen: str | None, textfile: str | None):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(snapshot))
        self.textfile = textfile
        self.server = None
        if listen:
            host, _, port = listen.rpartition(":")
            self.server, _thread = start_http_server(int(port), addr=host.strip("[]"),
                                                     registry=self.registry)

    def write_textfile(self) -> None:
        """Atomically (prometheus_client writes a temporary file and renames it)."""
        if self.textfile:
            write_to_textfile(self.textfile, self.registry)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
