"""Prometheus metrics: served over HTTP (metrics.listen) and/or written
for node_exporter's textfile collector (metrics.textfile). What is
exported is metric_families.py's; here only the exporter: binding the
port and keeping it bound, the exposition each scrape and the textfile
get, and what status says of them. A scrape reads what the daemon
already holds and never calls charon.

Whatever clients do, serving costs a bounded amount: one thread, a cap on
connections, and deadlines (metrics_server.py; the deadlines are set
here).

A port that cannot be bound (another process holds it) is not the end of
vpnd: tunnels do not wait for metrics. It is said once in the log, in
status (and so in `vpnd health`), and tried again with backoff until it
can be bound.
"""
from __future__ import annotations

import threading
import time

from vpnd.system import log as log_mod
from vpnd.system.files import write_atomically
from vpnd.observe.metric_families import connection_parts, daemon_exposition
from vpnd.observe.metrics_server import Server, bound

# A scraper sends its request at once (Prometheus: a few hundred bytes).
HEAD_TIMEOUT = 5.0
# The exposition of 10,000 connections is megabytes; a reader takes them
# in well under Prometheus's own 10 s scrape timeout.
SEND_TIMEOUT = 10.0
# Binding again: 1, 2, 4, 8, then every 10 s (a bind is one system call).
RETRY_FIRST = 1.0
RETRY_MAX = 10.0


# --- pure: binding's bookkeeping, and what status says --------------------------------

class Listening:
    """Where binding metrics.listen stands: when to try again, what is news
    for the log, and what status says. Not thread-safe: Metrics locks."""

    def __init__(self, listen: str):
        self.listen = listen
        self.serving = False
        self.error: str | None = None  # why the last try failed
        self.failures = 0  # in a row
        self._said: str | None = None  # the last error logged

    def failed(self, why: str) -> str | None:
        """A try failed: the error, if the log has not had it yet."""
        self.serving, self.failures = False, self.failures + 1
        self.error = f"cannot listen on {self.listen}: {why}"
        if self.error == self._said:
            return None
        self._said = self.error
        return self.error

    def bound(self) -> None:
        self.serving, self.error, self.failures, self._said = True, None, 0, None

    def retry_in(self) -> float:
        return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, self.failures - 1))


def status_of(listening: Listening | None, textfile: str | None,
              textfile_error: str | None) -> dict:
    """status.json's "metrics": what was asked, whether it is served, and
    why not (health.py reads "errors")."""
    doc: dict = {}
    errors = []
    if listening is not None:
        doc.update(listen=listening.listen, serving=listening.serving)
        if listening.error:
            errors.append(listening.error)
    if textfile:
        doc["textfile"] = textfile
        if textfile_error:
            errors.append(f"textfile {textfile} not written: {textfile_error}")
    if errors:
        doc["errors"] = errors
    return doc



# --- side effects: the exporter ------------------------------------------------------

class Metrics:
    def __init__(self, snapshot, listen: str | None, textfile: str | None, log=None):
        self.snapshot = snapshot  # () -> metric_families.Snapshot
        self.textfile = textfile
        self.log = log or log_mod.get()
        self._lock = threading.Lock()  # scrapes (the metrics thread) and the textfile (the loop)
        self._state = threading.Lock()  # listening and server, between the threads
        self._stop = threading.Event()
        self.listening = Listening(listen) if listen else None
        self.server: Server | None = None
        self._thread = None
        if listen:
            self._bind()  # at once: the first status says whether it worked
            self._thread = threading.Thread(target=self._serve, name="vpnd-metrics",
                                            daemon=True)
            self._thread.start()

    def _bind(self) -> None:
        try:
            sock = bound(self.listening.listen)
        except OSError as e:
            with self._state:
                news = self.listening.failed(e.strerror or str(e))
            if news:
                self.log.error("metrics not served", listen=self.listening.listen, error=news)
            return
        with self._state:
            if self._stop.is_set():
                sock.close()
                return
            self.server = Server(sock, self.exposition, HEAD_TIMEOUT, SEND_TIMEOUT)
            self.listening.bound()
        self.log.info("metrics served", listen=self.listening.listen)

    def _serve(self) -> None:
        """The metrics thread: bind until it works, then serve until close()."""
        while not self._stop.is_set():
            if self.server is None:
                if self._stop.wait(self.listening.retry_in()):
                    return
                self._bind()
                continue
            try:
                self.server.serve()
            except Exception as e:  # a bug of ours: said, and bound afresh
                with self._state:
                    self.server = None
                    news = self.listening.failed(f"server failed: {e!r}")
                if news:
                    self.log.error("metrics not served", listen=self.listening.listen,
                                   error=news)

    def status(self, textfile_error: str | None = None) -> dict:
        with self._state:
            return status_of(self.listening, self.textfile, textfile_error)

    def exposition(self) -> bytes:
        with self._lock:
            snap, now = self.snapshot(), time.time()
            return b"".join([*connection_parts(snap.report, now), daemon_exposition(snap, now)])

    def write_textfile(self) -> None:
        """Atomically: node_exporter never reads half a file."""
        if self.textfile:
            write_atomically(self.textfile, self.exposition(), 0o644)

    def close(self) -> None:
        with self._state:
            self._stop.set()
            server = self.server
        if server is not None:
            server.stop()
        if self._thread is not None:
            self._thread.join(5)
