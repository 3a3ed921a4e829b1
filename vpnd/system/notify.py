"""sd_notify: readiness and a one-line status for systemd (no-op elsewhere)."""
from __future__ import annotations

import os
import time

import sdnotify


class Notifier:
    def __init__(self):
        # sdnotify stays silent when NOTIFY_SOCKET is not set.
        self._n = sdnotify.SystemdNotifier()
        self._status = None

    def ready(self) -> None:
        self._n.notify("READY=1")

    def reloading(self) -> None:
        # MONOTONIC_USEC is what systemd >= 253 wants with RELOADING=1;
        # 252 (Debian 12) ignores it.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._n.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog(self) -> None:
        self._n.notify("WATCHDOG=1")

    @staticmethod
    def watchdog_interval() -> float | None:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec), if asked."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 2e6

    def stopping(self) -> None:
        self._n.notify("STOPPING=1")

    def status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self._n.notify(f"STATUS={text}")
