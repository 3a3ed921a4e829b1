"""Processes that vpnd signals or trusts: read through /proc, judged by
identity.py, and held by a pidfd while they are signalled.

A pidfd refers to one process, not to a number: once it is open, and the
process it refers to has been checked to be the right one, a signal sent
through it reaches that process or, if it has ended meanwhile, nobody;
never one that took its pid later.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import time

from vpnd.system import identity


def _read(pid: int, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:  # gone, or not ours to read
        return None


def start_time(pid: int) -> int | None:
    raw = _read(pid, "stat")
    return identity.parse_start_time(raw.decode(errors="replace")) if raw else None


def runs(pid: int, program: str, start: int | None = None) -> bool:
    """Process `pid` runs `program`, and started at `start` if given."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:  # gone, a zombie, or a kernel thread
        return False
    if not identity.runs(exe, os.path.realpath(program)):
        return False
    return start is None or start_time(pid) == start


def vpnd_refusal(pid: int, trusted: frozenset[int]) -> str | None:
    """Why `pid` is not a vpnd daemon to believe and signal, or None."""
    argv = identity.parse_cmdline(_read(pid, "cmdline") or b"")
    status = _read(pid, "status")
    uids = identity.parse_uids(status.decode(errors="replace")) if status else ()
    return identity.vpnd_refusal(pid, argv, uids, trusted)


class Held:
    """A process held by a pidfd (or, on a kernel without pidfds, by its
    pid, checked again before each signal)."""

    def __init__(self, pid: int, fd: int | None, is_it):
        self.pid, self.fd, self._is_it = pid, fd, is_it

    @classmethod
    def take(cls, pid: int, is_it) -> "Held | None":
        """Hold `pid` if `is_it(pid)` says it is the process meant. Checked
        after the pidfd is open: had the process ended and its pid been
        taken in between, the check sees the newcomer, and refuses it."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter
                raise
            fd = None
        if not is_it(pid):
            if fd is not None:
                os.close(fd)
            return None
        return cls(pid, fd, is_it)

    def signal(self, signum: int) -> None:
        try:
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, signum)
            elif self._is_it(self.pid):
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass  # it ended by itself meanwhile

    def ended(self) -> bool:
        if self.fd is not None:
            return _readable([self.fd], 0) == {self.fd}  # readable once it exits
        return not self._is_it(self.pid)

    def reap(self) -> None:
        """Collect its exit if it is vpnd's own child (else a zombie stays)."""
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass  # not our child: its parent (or init) reaps it

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def wait_ended(held, timeout: float) -> bool:
    """Until each of these has ended, or `timeout` seconds; True if all did."""
    deadline = time.monotonic() + timeout
    while True:
        left = [h for h in held if not h.ended()]
        remaining = deadline - time.monotonic()
        if not left or remaining <= 0:
            return not left
        fds = [h.fd for h in left if h.fd is not None]
        if len(fds) == len(left):
            _readable(fds, remaining)  # wakes at the first exit
        else:
            time.sleep(min(0.05, remaining))


def _readable(fds: list[int], timeout: float) -> set[int]:
    # poll, not select: a vpnd of 500 charons has fds past select's 1024.
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _ in poller.poll(timeout * 1000)}
