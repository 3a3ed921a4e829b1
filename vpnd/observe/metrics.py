"""Prometheus metrics: served over HTTP (metrics.listen) and/or written
for node_exporter's textfile collector (metrics.textfile). What is
exported is metric_families.py's; here only the serving and the writing.
A scrape reads what the daemon already holds and never calls charon.

Whatever clients do, serving costs a bounded amount: one thread, which
never blocks on a client (a selector reads requests and writes answers),
at most OPEN connections (one more closes the oldest), and deadlines (the
request head within HEAD_TIMEOUT of connecting, the answer taken within
SEND_TIMEOUT). The wsgiref server before gave each connection a thread
that half a request held forever; a pool of blocking workers would be held
by as many stalled clients as it has workers, and a scrape would queue
behind them.

A port that cannot be bound (another process holds it) is not the end of
vpnd: tunnels do not wait for metrics. It is said once in the log, in
status (and so in `vpnd health`), and tried again with backoff until it
can be bound.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from typing import NamedTuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from vpnd.system import log as log_mod
from vpnd.system.files import write_atomically
from vpnd.observe.metric_families import connection_exposition, families

# Connections open at once: each is a file descriptor of vpnd's, which
# charons' sockets need more. Past it, a new connection closes the oldest
# (a stalled one first): a client cannot lock scrapes out by holding many.
OPEN = 64
# Connections not accepted yet wait in the kernel, not in vpnd's
# descriptors: room for a burst faster than one thread accepts (200 at
# once overflow 64 places, and each SYN dropped then costs a second).
BACKLOG = 256
# A scraper sends its request at once (Prometheus: a few hundred bytes).
HEAD_TIMEOUT = 5.0
HEAD_MAX = 8192
# The exposition of 10,000 connections is megabytes; a reader takes them
# in well under Prometheus's own 10 s scrape timeout.
SEND_TIMEOUT = 10.0
# Binding again: 1, 2, 4, 8, then every 10 s (a bind is one system call).
RETRY_FIRST = 1.0
RETRY_MAX = 10.0
# accept() failing for want of descriptors leaves the listening socket
# readable: it is left alone this long, or the thread would spin.
ACCEPT_PAUSE = 0.5


# --- pure: requests, answers, binding's bookkeeping ---------------------------------

class Answer(NamedTuple):
    status: str  # "200 OK": the metrics
    head_only: bool = False  # HEAD


OK = "200 OK"
NOT_HERE = b"metrics are at /metrics\n"


def head_end(data: bytes) -> int:
    """Where the request head ends (after its blank line), or -1."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return min(ends, default=-1)


def route(head: bytes) -> Answer:
    """What to answer a request head (only its request line matters)."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return Answer("400 Bad Request")
    method, target, _ = parts
    head_only = method == b"HEAD"
    if method not in (b"GET", b"HEAD"):
        return Answer("405 Method Not Allowed")
    if target.split(b"?", 1)[0] not in (b"/", b"/metrics"):
        return Answer("404 Not Found", head_only)
    return Answer(OK, head_only)


def response_head(status: str, content_type: str, length: int) -> bytes:
    """One answer a connection: a scraper connects for each scrape."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


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


# --- side effects: the socket, the server, the textfile -------------------------------

def _bound(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        # A restart binds again while its old connections are in TIME_WAIT.
        # Not SO_REUSEPORT: once bound, no other process can share the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Conn:
    __slots__ = ("sock", "deadline", "head", "out", "head_only")

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline
        self.head = bytearray()
        self.out: list[memoryview] | None = None  # once answered: what is left to send
        self.head_only = False


class _Server:
    """The selector loop on one listening socket, in the thread that calls
    serve(); stop() from any other."""

    def __init__(self, sock: socket.socket, render, clock=time.monotonic):
        self.sock, self.render, self.clock = sock, render, clock  # render() -> bytes
        self.conns: dict[socket.socket, _Conn] = {}  # oldest first
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ)
        self.selector.register(sock, selectors.EVENT_READ)
        self._paused_until: float | None = None  # accept() lacked descriptors
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass  # full (it will wake) or closed (it is over)

    def serve(self) -> None:
        try:
            while not self.stopping:
                self._once()
        finally:
            for conn in list(self.conns.values()):
                self._close(conn, abort=True)
            self.selector.close()
            for s in (self.sock, self._wake_r, self._wake_w):
                s.close()

    def _once(self) -> None:
        deadlines = [c.deadline for c in self.conns.values()]
        if self._paused_until is not None:
            deadlines.append(self._paused_until)
        timeout = max(0.0, min(deadlines) - self.clock()) if deadlines else None
        asked, accept = [], False
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.sock:
                accept = True
            elif key.fileobj is self._wake_r:
                _drain(self._wake_r)
            elif key.data.out is None:
                if self._read(key.data):
                    asked.append(key.data)
            else:
                self._send(key.data)
        if asked:
            self._answer(asked)
        now = self.clock()
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            self._close(conn, abort=True)
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self.selector.register(self.sock, selectors.EVENT_READ)
        if accept:
            self._accept()

    def _accept(self) -> None:
        # At most OPEN at a time: the connections held get their turn too.
        for _ in range(OPEN):
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE, ENOBUFS: the backlog holds them meanwhile
                self.selector.unregister(self.sock)
                self._paused_until = self.clock() + ACCEPT_PAUSE
                return
            if len(self.conns) >= OPEN:
                stalled = next((c for c in self.conns.values() if c.out is None), None)
                self._close(stalled or next(iter(self.conns.values())), abort=True)
            sock.setblocking(False)
            conn = _Conn(sock, self.clock() + HEAD_TIMEOUT)
            self.conns[sock] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> bool:
        """Read what came; True once it is a complete request for the metrics."""
        try:
            data = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # gone before it asked
            self._close(conn, abort=True)
            return False
        conn.head += data
        end = head_end(conn.head)
        if end < 0:
            if len(conn.head) > HEAD_MAX:
                self._reply(conn, "431 Request Header Fields Too Large", b"", "text/plain")
            return False
        answer = route(bytes(conn.head[:end]))
        conn.head_only = answer.head_only
        if answer.status == OK:
            return True
        self._reply(conn, answer.status, NOT_HERE, "text/plain")
        return False

    def _answer(self, asked: list[_Conn]) -> None:
        """The requests that came together share one rendering: a flood
        of them costs renderings one after the other, never at once."""
        try:
            body, status, kind = self.render(), OK, CONTENT_TYPE_LATEST
        except Exception as e:  # a bug in the exposition: the scraper's answer, not the end
            body, status, kind = f"metrics failed: {e}\n".encode(), \
                "500 Internal Server Error", "text/plain"
        for conn in asked:
            self._reply(conn, status, body, kind)

    def _reply(self, conn: _Conn, status: str, body: bytes, kind: str) -> None:
        conn.out = [memoryview(response_head(status, kind, len(body)))]
        if body and not conn.head_only:
            conn.out.append(memoryview(body))  # shared by all answered with it
        conn.deadline = self.clock() + SEND_TIMEOUT
        self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        self._send(conn)

    def _send(self, conn: _Conn) -> None:
        try:
            while conn.out:
                sent = conn.sock.send(conn.out[0])
                conn.out[0] = conn.out[0][sent:]
                if not conn.out[0]:
                    conn.out.pop(0)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, abort=True)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: _Conn, abort: bool = False) -> None:
        self.conns.pop(conn.sock, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if abort:
            # A reset: the kernel keeps no unsent answer for a client that
            # reads nothing, and no orphaned socket for it.
            try:
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        conn.sock.close()


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


class _Daemon(Collector):
    """The daemon's and charons' families, from the snapshot being served."""

    def __init__(self):
        self.snap = None
        self.now = 0.0

    def collect(self):
        return families(self.snap, self.now)


class Metrics:
    def __init__(self, snapshot, listen: str | None, textfile: str | None, log=None):
        self.snapshot = snapshot  # () -> metric_families.Snapshot
        self.textfile = textfile
        self.log = log or log_mod.get()
        self._daemon = _Daemon()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._daemon)
        self._lock = threading.Lock()  # scrapes (the metrics thread) and the textfile (the loop)
        self._state = threading.Lock()  # listening and server, between the threads
        self._stop = threading.Event()
        self.listening = Listening(listen) if listen else None
        self.server: _Server | None = None
        self._thread = None
        if listen:
            self._bind()  # at once: the first status says whether it worked
            self._thread = threading.Thread(target=self._serve, name="vpnd-metrics",
                                            daemon=True)
            self._thread.start()

    def _bind(self) -> None:
        try:
            sock = _bound(self.listening.listen)
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
            self.server = _Server(sock, self.exposition)
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
            self._daemon.snap, self._daemon.now = snap, now
            return connection_exposition(snap.report, now).encode() + \
                generate_latest(self._registry)

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
