"""`vpnd run`: the reconcile loop, its wake-ups and its signals.

One thread, one select(): inotify on the state directory (and on
/run/netns, so that a namespace appearing is acted on at once), a
self-pipe for signals, and deadlines for the debounce, the status refresh
and the periodic full resync, which is the backstop for anything missed.
"""
from __future__ import annotations

import os
import select
import signal
import time

from . import log, netns
from .config import Config
from .drivers import compose
from .inotify import Inotify
from .notify import Notifier, summary
from .reconciler import Reconciler
from .statefiles import is_state_file

# A burst of writes (a config-management run, an editor's save dance)
# becomes one pass: wait until the directory is quiet this long, and files
# that change while a pass runs are picked up together by the next one ...
DEBOUNCE = 0.0
# ... but never longer than this after the first event.
DEBOUNCE_MAX = 0.1
# charon's events come in bursts (log lines, up/down, rekeys): one refresh.
EVENT_DELAY = 0.05


class Daemon:
    def __init__(self, config: Config, reconciler: Reconciler | None = None):
        self.config = config
        self.log = log.get()
        if reconciler is None:
            reconciler = Reconciler(config, compose.driver(config))
        self.reconciler = reconciler
        self.notifier = Notifier()
        self._signals: list[int] = []

    def run(self) -> int:
        os.makedirs(self.config.state_dir, exist_ok=True)
        os.makedirs(self.config.run_dir, exist_ok=True)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        efd, ewfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.reconciler.wake = lambda: _poke(ewfd)
        old_wakeup = signal.set_wakeup_fd(wfd)
        handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
        old_handlers = {s: signal.signal(s, self._on_signal) for s in handled}
        watcher = Inotify()
        try:
            watcher.watch(self.config.state_dir)
            netns_watched = self._watch_netns(watcher)
            self.log.info("vpnd started", state_dir=self.config.state_dir,
                          charon_mode=self.config.charon.mode, pid=os.getpid())
            self._full_pass("start")
            # Ready means: the first full reconcile has been applied.
            self.notifier.ready()
            return self._loop(watcher, rfd, efd, netns_watched)
        finally:
            watcher.close()
            signal.set_wakeup_fd(old_wakeup)
            for s, h in old_handlers.items():
                signal.signal(s, h)
            self.reconciler.wake = lambda: None
            self.reconciler.driver.close()
            for fd in (rfd, wfd, efd, ewfd):
                os.close(fd)

    def _on_signal(self, signum, frame):
        self._signals.append(signum)

    def _watch_netns(self, watcher: Inotify) -> bool:
        if os.path.isdir(netns.NETNS_DIR):
            watcher.watch(netns.NETNS_DIR)
            return True
        return False

    def _loop(self, watcher: Inotify, rfd: int, efd: int, netns_watched: bool) -> int:
        now = time.monotonic()
        next_resync = now + self.config.resync_interval
        next_status = now + self.config.status_interval
        watchdog = self.notifier.watchdog_interval()
        next_watchdog = now
        first_event = last_event = None
        full_pending = False  # a namespace came or went: every scope may move
        touched: set[str] = set()  # namespaces charon sent events about
        touched_at = None
        reported = None  # the report last summarised for STATUS=
        while True:
            deadlines = [next_resync, next_status]
            if last_event is not None:
                deadlines.append(min(last_event + DEBOUNCE, first_event + DEBOUNCE_MAX))
            if touched_at is not None:
                deadlines.append(touched_at + EVENT_DELAY)
            checks = self.reconciler.checks_due()
            deadlines.extend(checks.values())
            if watchdog is not None:
                deadlines.append(next_watchdog)
            timeout = max(0.0, min(deadlines) - time.monotonic())
            readable, _, _ = select.select([watcher.fd, rfd, efd], [], [], timeout)
            for fd in (rfd, efd):
                if fd in readable:
                    _drain(fd)
            if efd in readable:
                touched |= self.reconciler.handle_events()
                if touched and touched_at is None:
                    touched_at = time.monotonic()
            while self._signals:
                signum = self._signals.pop(0)
                if signum in (signal.SIGTERM, signal.SIGINT):
                    # Tunnels stay up: charons run on without vpnd.
                    self.log.info("vpnd stopping", signal=signal.Signals(signum).name)
                    self.notifier.stopping()
                    return 0
                if signum == signal.SIGHUP:
                    self.notifier.reloading()
                    self.reconciler.reloads += 1
                    self._full_pass("SIGHUP")
                    self.notifier.ready()
                    next_resync = time.monotonic() + self.config.resync_interval
            if watcher.fd in readable:
                state_changed, netns_changed = self._classify(watcher.read())
                if state_changed or netns_changed:
                    last_event = time.monotonic()
                    first_event = first_event or last_event
                    full_pending = full_pending or netns_changed
            now = time.monotonic()
            touched |= {ns for ns, at in checks.items() if now >= at}
            if touched and touched_at is None:
                touched_at = now - EVENT_DELAY
            if touched_at is not None and now >= touched_at + EVENT_DELAY:
                lost = self.reconciler.refresh_live(only=touched)
                touched, touched_at = set(), None
                if lost:
                    self._pass(full=False, why="charon check", namespaces=lost)
            if last_event is not None and now >= min(last_event + DEBOUNCE,
                                                     first_event + DEBOUNCE_MAX):
                first_event = last_event = None
                self._pass(full=full_pending,
                           why="namespace change" if full_pending else "state change")
                full_pending = False
            if now >= next_resync:
                if not netns_watched:
                    netns_watched = self._watch_netns(watcher)
                self._full_pass("resync")
                next_resync = time.monotonic() + self.config.resync_interval
                next_status = time.monotonic() + self.config.status_interval
            elif now >= next_status:
                lost = self.reconciler.refresh_live()
                if lost:
                    self._pass(full=False, why="charon check", namespaces=lost)
                next_status = time.monotonic() + self.config.status_interval
            if self.reconciler.last_report is not reported:
                # Only for a new report: summing 1000 connections on every
                # wake-up is work the loop need not do.
                reported = self.reconciler.last_report
                self.notifier.status(summary(reported))
            if watchdog is not None and time.monotonic() >= next_watchdog:
                # Only from the loop itself, and only while it is healthy: a
                # wedged loop, or a dead event session, gets vpnd restarted.
                if self.reconciler.healthy():
                    self.notifier.watchdog()
                next_watchdog = time.monotonic() + watchdog

    def _classify(self, events) -> tuple[bool, bool]:
        """(a state file changed, a namespace came or went)."""
        state = netns_ = False
        for directory, name, _mask in events:
            if directory == netns.NETNS_DIR:
                netns_ = True
            elif not name or is_state_file(name):
                # No name: the directory itself, or a queue overflow.
                state = True
        return state, netns_

    def _full_pass(self, why: str) -> None:
        self._pass(full=True, why=why)

    def _pass(self, full: bool, why: str, namespaces: set[str] = frozenset()) -> None:
        started = time.monotonic()
        try:
            result = self.reconciler.reconcile(full=full, namespaces=namespaces)
        except Exception:
            # One bad pass must not end the daemon; the next one retries.
            self.log.exception("reconcile failed", trigger=why)
            return
        changed = sum(1 for s in result.steps if s.actions)
        if changed or why != "resync":
            self.log.info("reconciled", trigger=why, full=full,
                          namespaces=len(result.namespaces), changed=changed,
                          failed=len(result.failed),
                          ms=round((time.monotonic() - started) * 1000, 1))


def _poke(fd: int) -> None:
    try:
        os.write(fd, b"!")
    except BlockingIOError:
        pass  # the pipe is full: the loop will wake anyway


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
