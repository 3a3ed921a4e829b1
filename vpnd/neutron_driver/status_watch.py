"""Following vpnd's status.json as it changes, not on a 60 s poll.

vpnd replaces status.json by rename whenever a status moves; an inotify
watch on its directory wakes this thread at once, and `changed` runs
(in this thread: the report is a blocking RPC call, which must not hold
the agent's RPC consumer). `every` seconds it runs anyway, as a backstop
for an event missed (a run dir made after the watch was tried).
"""
from __future__ import annotations

import os
import select
import threading

from vpnd.system import inotify

_EVENTS = (inotify.IN_MOVED_TO | inotify.IN_CLOSE_WRITE | inotify.IN_CREATE
           | inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF)


class StatusWatch(threading.Thread):
    def __init__(self, status_file: str, changed, every: float = 30.0, log=None):
        super().__init__(name="vpnd-neutron-status", daemon=True)
        self.status_file = status_file
        self.directory, self.file_name = os.path.split(status_file)
        self.changed = changed
        self.every = every
        self.log = log
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._stopped = threading.Event()

    def run(self) -> None:
        watcher = inotify.Inotify()
        watching = False
        try:
            while not self._stopped.is_set():
                if not watching:
                    try:
                        watcher.watch(self.directory, _EVENTS)
                        watching = True
                    except OSError:
                        pass  # vpnd has not made its run dir yet: the backstop looks
                self._call()
                while True:
                    ready, _, _ = select.select([watcher.fd, self._stop_r], [], [],
                                                self.every if watching else 1.0)
                    if self._stop_r in ready or not ready:
                        break
                    events = watcher.read()
                    if any(mask & (inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF)
                           for _, _, mask in events):
                        watching = False  # the run dir went: watched again once back
                        break
                    if any(name == self.file_name or mask & inotify.IN_Q_OVERFLOW
                           for _, name, mask in events):
                        break
        finally:
            watcher.close()

    def _call(self) -> None:
        if self._stopped.is_set():
            return
        try:
            self.changed()
        except Exception:  # noqa: BLE001 - reported by the caller; the watch goes on
            if self.log is not None:
                self.log.exception("vpnd status not reported")

    def stop(self, timeout: float = 5.0) -> None:
        """No report after this returns (a driver replaced stops reporting)."""
        if self._stop_w is None:
            return  # stopped and closed already
        self._stopped.set()
        os.write(self._stop_w, b"!")
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
        if not self.is_alive():  # run() no longer selects on the pipe
            os.close(self._stop_r)
            os.close(self._stop_w)
            self._stop_r = self._stop_w = None
