"""The metrics server: one thread, which never blocks on a client (a
selector reads requests and writes answers), at most OPEN connections (one
more closes the oldest), and deadlines (the request head within
head_timeout of connecting, the answer taken within send_timeout: metrics.py
says how long). The wsgiref server before gave each connection a thread
that half a request held forever; a pool of blocking workers would be held
by as many stalled clients as it has workers, and a scrape would queue
behind them. What is asked and answered is scrape_requests.py's.
"""
from __future__ import annotations

import selectors
import socket
import struct
import time

from vpnd.observe.scrape_requests import NOT_HERE, OK, head_end, response_head, route

# The text format's content type, as the official client names it (a test
# holds them alike; the client itself is not loaded: metric_families.py).
CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"

# Connections open at once: each is a file descriptor of vpnd's, which
# charons' sockets need more. Past it, a new connection closes the oldest
# (a stalled one first): a client cannot lock scrapes out by holding many.
OPEN = 64
# Connections not accepted yet wait in the kernel, not in vpnd's
# descriptors: room for a burst faster than one thread accepts (200 at
# once overflow 64 places, and each SYN dropped then costs a second).
BACKLOG = 256
# A scraper sends its request at once (Prometheus: a few hundred bytes).
HEAD_MAX = 8192
# accept() failing for want of descriptors leaves the listening socket
# readable: it is left alone this long, or the thread would spin.
ACCEPT_PAUSE = 0.5


def bound(listen: str) -> socket.socket:
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


class Server:
    """The selector loop on one listening socket, in the thread that calls
    serve(); stop() from any other."""

    def __init__(self, sock: socket.socket, render, head_timeout: float,
                 send_timeout: float, clock=time.monotonic):
        self.sock, self.render, self.clock = sock, render, clock  # render() -> bytes
        self.head_timeout, self.send_timeout = head_timeout, send_timeout
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
            conn = _Conn(sock, self.clock() + self.head_timeout)
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
            body, status, kind = self.render(), OK, CONTENT_TYPE
        except Exception as e:  # a bug in the exposition: the scraper's answer, not the end
            body, status, kind = f"metrics failed: {e}\n".encode(), \
                "500 Internal Server Error", "text/plain"
        for conn in asked:
            self._reply(conn, status, body, kind)

    def _reply(self, conn: _Conn, status: str, body: bytes, kind: str) -> None:
        conn.out = [memoryview(response_head(status, kind, len(body)))]
        if body and not conn.head_only:
            conn.out.append(memoryview(body))  # shared by all answered with it
        conn.deadline = self.clock() + self.send_timeout
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
