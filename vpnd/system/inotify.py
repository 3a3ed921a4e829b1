"""Just enough inotify (via libc) to learn that a directory changed.

An event only means "look again": the reconciler re-reads the directory,
so event details beyond the file name are not needed. What must never
happen is an event lost without a word: the kernel's queue holds
`fs.inotify.max_queued_events` (16,384 by default) and an agent's full
sync of 10,000 files makes about 40,000. So a thread of its own empties
the queue as events come (`Reader`), whatever the loop is busy with, and
an overflow (the kernel's, or the reader's own bound) is an event of its
own that means "every file may have changed".
"""
from __future__ import annotations

import ctypes
import os
import select
import struct
import threading

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

DIR_CHANGES = (IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
               | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

# One read takes up to this much: about 5,000 events of a 20-character name.
READ_BYTES = 256 * 1024
# Events the reader holds for the loop at most; past that they are one
# overflow (a full scan costs less than 100,000 names to look at one by one).
HELD_MAX = 100_000

_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)


class Inotify:
    def __init__(self):
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd
        self.watches: dict[int, str] = {}

    def watch(self, path: str, mask: int = DIR_CHANGES) -> None:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        self.watches[wd] = path

    def read(self) -> list[tuple[str, str, int]]:
        """Every pending event as (watched directory, file name, mask); an
        overflow comes as ("", "", IN_Q_OVERFLOW)."""
        events = []
        while True:
            try:
                data = os.read(self.fd, READ_BYTES)
            except BlockingIOError:
                return events
            events += self._parse(data)

    def _parse(self, data: bytes) -> list[tuple[str, str, int]]:
        events, offset = [], 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            # Names as the kernel gives them: a name that is not UTF-8 is
            # kept byte for byte (surrogateescape), so it names its file.
            name = os.fsdecode(data[offset:offset + length].rstrip(b"\0"))
            offset += length
            if mask & IN_Q_OVERFLOW:
                events.append(("", "", IN_Q_OVERFLOW))
            else:
                events.append((self.watches.get(wd, ""), name, mask))
        return events

    def close(self) -> None:
        os.close(self.fd)


class Reader(threading.Thread):
    """Empties an Inotify's queue into a list of our own as events come,
    so that a loop busy for seconds (a cold start of 10,000 files) loses
    none; `wake` tells the loop there is something to take."""

    def __init__(self, inotify: Inotify, wake=lambda: None, held_max: int = HELD_MAX):
        super().__init__(name="vpnd-inotify", daemon=True)
        self.inotify = inotify
        self.wake = wake
        self.held_max = held_max
        self._lock = threading.Lock()
        self._held: list[tuple[str, str, int]] = []
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)

    def run(self) -> None:
        while True:
            ready, _, _ = select.select([self.inotify.fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            events = self.inotify.read()
            if not events:
                continue
            with self._lock:
                if len(self._held) + len(events) > self.held_max:
                    self._held = [("", "", IN_Q_OVERFLOW)]
                else:
                    self._held += events
            self.wake()

    def take(self) -> list[tuple[str, str, int]]:
        """The events read since the last take."""
        with self._lock:
            events, self._held = self._held, []
        return events

    def stop(self) -> None:
        os.write(self._stop_w, b"!")
        if self.is_alive():
            self.join(timeout=2)
        os.close(self._stop_r)
        os.close(self._stop_w)
