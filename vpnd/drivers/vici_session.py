"""One connection to one charon, and the one place where what goes wrong
on it becomes vpnd's errors.

Every request, whether one call, a batch of reads or a pipeline of
writes, runs inside `bounded`: connected on first use, held to a deadline
so that a hung charon never hangs vpnd, and after any transport error
thrown away (a timeout mid-message leaves it out of sync), so that the
next request reconnects. `sessions` counts connections made: a new one may
be a new charon.

A read may be sent ahead (`send_ahead`): its request written at once by a
thread that must not wait (the loop's, while it reads a changed file),
its answer read by the look that follows (`take_ahead`), which so waits
for charon less. Requests go one at a time (a lock), and any other
request first reads that answer off the session and drops it: nothing
acts on an answer older than a request sent after it.
"""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable

import vici
import vici.exception

from vpnd.base.errors import CharonNotAnswering, DriverError, DriverUnavailable
from vpnd.drivers.vici_socket import DeadlineSocket, connect

# Writing a read sent ahead may take this long (it is a few hundred
# bytes into an idle socket: more means charon is not reading, and the
# loop's thread does not wait for it).
AHEAD_SEND_TIMEOUT = 0.05
# An answer sent ahead serves only a request made this soon after it.
AHEAD_FRESH = 0.5


class ViciSession:
    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self.writes = 0  # VICI commands that change charon's state
        self.sessions = 0  # connections made: a new one may be a new charon
        self._sock: DeadlineSocket | None = None
        self._session: vici.Session | None = None
        self._lock = threading.RLock()  # one request at a time
        # A read sent ahead: (what it is, when sent, reads its answer)
        self._ahead: tuple[object, float, Callable[[], object]] | None = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._session = None
        self._ahead = None  # its answer is lost with the connection

    @property
    def sock(self) -> DeadlineSocket:
        """The connected socket (inside `bounded` only)."""
        return self._sock

    def arm(self, timeout: float | None = None) -> None:
        """The deadline: `timeout` (else the session's) from now."""
        self._sock.deadline = time.monotonic() + (timeout or self.timeout)

    def _connect(self) -> vici.Session:
        if self._session is None:
            self._sock = connect(self.socket_path, self.timeout)
            self._session = vici.Session(self._sock)
            self.sessions += 1
        return self._session

    @contextmanager
    def bounded(self, what: str, timeout: float | None = None):
        """Connect, arm one deadline, and map every failure inside to
        DriverError (charon refused), CharonNotAnswering (the deadline
        passed) or DriverUnavailable (charon went away); the last two
        close the session. Yields the binding's session. A read sent
        ahead is read first and dropped (its answer is older than this)."""
        with self._lock:
            session = self._connect()
            self.arm(timeout)
            try:
                if self._ahead is not None:
                    _, _, read = self._ahead
                    self._ahead = None
                    read()
                yield session
            except vici.exception.CommandException as e:
                raise DriverError(f"{what}: {e}") from None
            except socket.timeout:
                self.close()  # a half-read answer leaves the session out of step
                raise CharonNotAnswering(f"{what}: charon at {self.socket_path} did not "
                                         f"answer within {timeout or self.timeout:g}s") from None
            except (OSError, vici.exception.SessionException, ValueError) as e:
                # A charon that went away.
                self.close()
                raise DriverUnavailable(f"{what}: charon at {self.socket_path} "
                                        f"did not answer ({e or type(e).__name__})") from None
            finally:
                if self._sock is not None:
                    self._sock.deadline = None

    def send_ahead(self, key, data: bytes, read: Callable[[], object]) -> bool:
        """Write a read's request now; `read()` (inside `bounded`) reads
        its answer off the session. For a thread that must not wait:
        nothing is sent (False) unless the session is connected, idle,
        and takes the bytes within AHEAD_SEND_TIMEOUT."""
        if not self._lock.acquire(blocking=False):
            return False  # a request under way
        try:
            if self._session is None or self._ahead is not None:
                return False  # connecting is the look's to do, and to wait for
            self._sock.deadline = time.monotonic() + AHEAD_SEND_TIMEOUT
            try:
                self._sock.sendall(data)
            except OSError:  # the deadline too: the session is out of step
                self.close()
                return False
            finally:
                if self._sock is not None:
                    self._sock.deadline = None
            self._ahead = (key, time.monotonic(), read)
            return True
        finally:
            self._lock.release()

    def take_ahead(self, what: str, fits: Callable[[object], bool]):
        """The answer to the read sent ahead if `fits(its key)` and it is
        fresh (AHEAD_FRESH), else None; read off the session either way.
        Errors as `bounded` maps them."""
        with self._lock:
            if self._ahead is None:
                return None
            key, sent, read = self._ahead
            self._ahead = None
            with self.bounded(what):
                answer = read()
            return answer if fits(key) and time.monotonic() - sent <= AHEAD_FRESH else None

    def call(self, what: str, fn, write: bool = False, timeout: float | None = None):
        """fn(the binding's session), bounded: one deadline for the whole
        request and answer (a streamed one too)."""
        with self.bounded(what, timeout) as session:
            if write:
                self.writes += 1
            return fn(session)
