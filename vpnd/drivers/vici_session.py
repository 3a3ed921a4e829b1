"""One connection to one charon, and the one place where what goes wrong
on it becomes vpnd's errors.

Every request, whether one call, a batch of reads or a pipeline of
writes, runs inside `bounded`: connected on first use, held to a deadline
so that a hung charon never hangs vpnd, and after any transport error
thrown away (a timeout mid-message leaves it out of sync), so that the
next request reconnects. `sessions` counts connections made: a new one may
be a new charon.
"""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import vici
import vici.exception

from vpnd.base.errors import CharonNotAnswering, DriverError, DriverUnavailable
from vpnd.drivers.vici_socket import DeadlineSocket, connect


class ViciSession:
    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self.writes = 0  # VICI commands that change charon's state
        self.sessions = 0  # connections made: a new one may be a new charon
        self._sock: DeadlineSocket | None = None
        self._session: vici.Session | None = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._session = None

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
        close the session. Yields the binding's session."""
        session = self._connect()
        self.arm(timeout)
        try:
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

    def call(self, what: str, fn, write: bool = False, timeout: float | None = None):
        """fn(the binding's session), bounded: one deadline for the whole
        request and answer (a streamed one too)."""
        with self.bounded(what, timeout) as session:
            if write:
                self.writes += 1
            return fn(session)
