"""The signals vpnd handles (SIGHUP: reload; SIGTERM, SIGINT: stop), taken
by the loop. A handler only books the signal; the wakeup fd makes the
loop's select() return, and the loop acts on it between two looks. Here
so that installing and restoring the handlers is one thing to call.
"""
from __future__ import annotations

import signal

HANDLED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
STOPPING = (signal.SIGTERM, signal.SIGINT)


class Signals:
    def __init__(self):
        self._pending: list[int] = []
        self._old_wakeup: int | None = None
        self._old_handlers: dict = {}

    def install(self, wakeup_fd: int) -> None:
        self._old_wakeup = signal.set_wakeup_fd(wakeup_fd)
        self._old_handlers = {s: signal.signal(s, self._on_signal) for s in HANDLED}

    def restore(self) -> None:
        if self._old_wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup)
        for s, h in self._old_handlers.items():
            signal.signal(s, h)

    def take(self) -> list[int]:
        """The signals received since the last take, in order."""
        taken = []
        while self._pending:  # a handler may append meanwhile: pop, not clear
            taken.append(self._pending.pop(0))
        return taken

    def _on_signal(self, signum, frame) -> None:
        self._pending.append(signum)
