"""The wire to charon: a socket bounded by one deadline per call, and VICI's
framing (a 4-byte length, then the packet) read in large reads.

Apart from the commands because both the one-call methods and the batches
(vici_query, vici_pipeline) stand on it, and because a hung charon is
bounded here or nowhere.
"""
from __future__ import annotations

import socket
import time

from vpnd.base.errors import DriverUnavailable

# How much one read of answers takes.
RECV_BYTES = 256 * 1024


class DeadlineSocket:
    """A socket whose every send and receive counts against one deadline
    for the whole call. The vici binding clears the socket's timeout after
    a message's first byte (Transport._recvall), so a charon stopped mid-
    answer would otherwise hold vpnd forever; here its settimeout() does
    nothing and the deadline decides."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.deadline: float | None = None

    def _arm(self) -> None:
        if self.deadline is None:
            self._sock.settimeout(None)
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self._sock.settimeout(left)

    def recv(self, n: int) -> bytes:
        self._arm()
        return self._sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self._arm()
        self._sock.sendall(data)

    def settimeout(self, value) -> None:
        pass  # the binding's, ignored: the deadline rules

    def gettimeout(self):
        return None

    def shutdown(self, how) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()


def connect(socket_path: str, timeout: float) -> DeadlineSocket:
    """A connected socket to the charon at `socket_path`; DriverUnavailable
    when nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
    except OSError as e:
        sock.close()
        raise DriverUnavailable(f"cannot reach charon at {socket_path}: "
                                f"{e.strerror or e}") from None
    return DeadlineSocket(sock)


def framed(packets) -> bytes:
    """Packets as one write: each after its 4-byte length."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in packets)


class Frames:
    """VICI packets read from a socket in large reads: a pipeline's
    thousands of answers are a few reads, not two reads each."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.at = 0

    def next(self) -> bytes:
        while True:
            if len(self.buf) - self.at >= 4:
                length = int.from_bytes(self.buf[self.at:self.at + 4], "big")
                end = self.at + 4 + length
                if len(self.buf) >= end:
                    packet = self.buf[self.at + 4:end]
                    self.at = end
                    return packet
            chunk = self.sock.recv(RECV_BYTES)
            if not chunk:
                raise ConnectionError("charon closed the connection")
            self.buf = self.buf[self.at:] + chunk
            self.at = 0

    def left(self) -> int:
        return len(self.buf) - self.at
