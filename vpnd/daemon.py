"""`vpnd run`: the loop. Everything that happens only adds keys to the work
queue; the loop takes the keys that are due and works them one at a time.

Keys: FILES (re-read the state files that changed; its work adds the
namespaces they touch) and ("netns", name) (look at one namespace). The
wake-ups: inotify on the state directory and on /run/netns, charon's
events (from the watcher threads, through a pipe), signals (through the
wakeup fd), and three timers: the status poll, the full resync (the
backstop for anything missed) and the watchdog. An exception in one key's
work stays with that key: it is logged with its traceback, becomes the
key's outcome and, for a namespace, its status reason; the others go on.
"""
from __future__ import annotations

import os
import queue as queue_mod
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
from .status import NamespaceView
from .workqueue import Done, Retry, WorkQueue

FILES = ("files",)
# charon's events come in bursts (log lines, up/down, rekeys): one look.
EVENT_DELAY = 0.05
# One key's work stops between steps after this long and lets the others
# run before it goes on; every VICI call is bounded by its own timeout.
KEY_BUDGET = 2.0


def ns_key(namespace: str) -> tuple[str, str]:
    return ("netns", namespace)


class Daemon:
    def __init__(self, config: Config, reconciler: Reconciler | None = None,
                 clock=time.monotonic):
        self.config = config
        self.log = log.get()
        self.reconciler = reconciler or Reconciler(config, compose.driver(config))
        self.clock = clock
        self.queue = WorkQueue(clock)
        self.events: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self.notifier = Notifier()
        self._signals: list[int] = []
        self._errors: dict[tuple, str] = {}  # key -> an exception in its work

    def run(self) -> int:
        os.makedirs(self.config.state_dir, exist_ok=True)
        os.makedirs(self.config.run_dir, exist_ok=True)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        efd, ewfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.reconciler.on_event = lambda ns, label, event: self._on_event(ewfd, ns, label, event)
        old_wakeup = signal.set_wakeup_fd(wfd)
        handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
        old_handlers = {s: signal.signal(s, self._on_signal) for s in handled}
        watcher = Inotify()
        try:
            watcher.watch(self.config.state_dir)
            netns_watched = self._watch_netns(watcher)
            self.log.info("vpnd started", state_dir=self.config.state_dir,
                          charon_mode=self.config.charon.mode, pid=os.getpid())
            self._everything(urgent=True)
            self._round("start")
            # Ready means: the first look at everything has been applied.
            self.notifier.ready()
            return self._loop(watcher, rfd, efd, netns_watched)
        finally:
            watcher.close()
            signal.set_wakeup_fd(old_wakeup)
            for s, h in old_handlers.items():
                signal.signal(s, h)
            self.reconciler.on_event = lambda ns, label, event: None
            self.reconciler.driver.close()
            for fd in (rfd, wfd, efd, ewfd):
                os.close(fd)

    def _on_signal(self, signum, frame):
        self._signals.append(signum)

    def _on_event(self, wake_fd: int, ns: str, label: str, event: dict) -> None:
        """On a watcher thread: hand the event to the loop."""
        self.events.put((ns, label, event))
        try:
            os.write(wake_fd, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the loop will wake anyway

    def _watch_netns(self, watcher: Inotify) -> bool:
        if os.path.isdir(netns.NETNS_DIR):
            watcher.watch(netns.NETNS_DIR)
            return True
        return False

    def _everything(self, urgent: bool) -> None:
        """Queue a look at the files and at every namespace."""
        self.queue.add(FILES, scope=None, urgent=urgent)
        for ns in self.reconciler.namespaces():
            self.queue.add(ns_key(ns), scope=None, urgent=urgent)

    def _loop(self, watcher: Inotify, rfd: int, efd: int, netns_watched: bool) -> int:
        now = self.clock()
        next_resync = now + self.config.resync_interval
        next_status = now + self.config.status_interval
        watchdog = self.notifier.watchdog_interval()
        next_watchdog = now
        reported = None  # the report last summarised for STATUS=
        while True:
            deadlines = [next_resync, next_status]
            if (due := self.queue.next_due()) is not None:
                deadlines.append(due)
            if watchdog is not None:
                deadlines.append(next_watchdog)
            timeout = max(0.0, min(deadlines) - self.clock())
            readable, _, _ = select.select([watcher.fd, rfd, efd], [], [], timeout)
            for fd in (rfd, efd):
                if fd in readable:
                    _drain(fd)
            self._take_events()
            trigger = None
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
                    self._everything(urgent=True)
                    trigger = "SIGHUP"
            if watcher.fd in readable:
                state_changed, netns_changed = self._classify(watcher.read())
                if state_changed is None or state_changed:
                    self.queue.add(FILES, scope=state_changed, urgent=True)
                    trigger = trigger or "state change"
                if netns_changed:
                    self._everything(urgent=True)
                    trigger = trigger or "namespace change"
            now = self.clock()
            if now >= next_resync:
                if not netns_watched:
                    netns_watched = self._watch_netns(watcher)
                self._everything(urgent=False)
                trigger = trigger or "resync"
                next_resync = now + self.config.resync_interval
                next_status = now + self.config.status_interval
            elif now >= next_status:
                for ns in self.reconciler.namespaces():
                    self.queue.add(ns_key(ns), scope=None)
                next_status = now + self.config.status_interval
            self._round(trigger)
            if trigger == "SIGHUP":
                self.notifier.ready()
            if self.reconciler.last_report is not reported:
                # Only for a new report: summing 1000 connections on every
                # wake-up is work the loop need not do.
                reported = self.reconciler.last_report
                self.notifier.status(summary(reported))
            if watchdog is not None and self.clock() >= next_watchdog:
                # Only from the loop itself, and only while it is healthy: a
                # wedged loop, or a dead event session, gets vpnd restarted.
                if self.healthy():
                    self.notifier.watchdog()
                next_watchdog = self.clock() + watchdog

    def _take_events(self) -> None:
        """charon's events: into observed state, and a look at their
        namespace soon (a burst is one look)."""
        while True:
            try:
                ns, label, event = self.events.get_nowait()
            except queue_mod.Empty:
                return
            touched, failure = self.reconciler.observed.take(ns, label, event)
            if failure:
                name, reason, message = failure
                self.log.info("charon reports", netns=ns, connection=name, reason=reason,
                              message=message)
            if touched:
                # Urgent: status follows SAs at once; a key backing off
                # keeps its retry time for what it backs off from.
                self.queue.add(ns_key(ns), scope=None, at=self.clock() + EVENT_DELAY,
                               urgent=True)

    def _round(self, trigger: str | None) -> None:
        """Work every key that is due now (and those its work makes due),
        then publish status once."""
        started, worked, changed, failed = self.clock(), 0, 0, 0
        prestarted: set = set()
        while due := self.queue.due():
            # The charons of every namespace due start together; each
            # namespace's look then waits for its own.
            self.reconciler.prestart([k[1] for k in due if k != FILES and k not in prestarted])
            prestarted.update(due)
            # One key at a time: what one key's work queues (the files
            # queue their namespaces) and a key that yields over its
            # budget take their turn by due time.
            [(key, scope)] = self.queue.pop_due(limit=1)
            steps = self._work(key, scope)
            worked += 1
            changed += sum(1 for s in steps if s.actions and not s.upkeep)
            failed += bool(self.queue.failing().get(key))
        if not worked:
            return
        extra = {"failing": {"/".join(k): why for k, why in sorted(self.queue.failing().items())}}
        if self._errors:
            extra["errors"] = sorted(set(self._errors.values()))
        self.reconciler.write_status(extra)
        if trigger is not None and (changed or trigger != "resync"):
            self.log.info("reconciled", trigger=trigger, keys=worked, changed=changed,
                          failed=failed, ms=round((self.clock() - started) * 1000, 1))

    def _work(self, key, scope) -> tuple:
        """One key's work, and its outcome booked; an exception stays here."""
        rec = self.reconciler
        try:
            if key == FILES:
                touched, changed = rec.read_files()
                served = rec.namespaces()
                for gone in [k for k in self.queue.keys() if k != FILES and k[1] not in served]:
                    self.queue.forget(gone)  # nothing left to do or report there
                rec.observed.forget_namespaces(served)
                for ns in touched:
                    # A file's change is looked at in its namespaces, only
                    # for that file's connections (a resync: for all).
                    self.queue.add(ns_key(ns), scope=None if scope is None else changed,
                                   urgent=True)
                steps, outcome = (), Done()
            else:
                steps, outcome = rec.reconcile_namespace(
                    key[1], scope, retrying=self.queue.retrying(key),
                    deadline=self.clock() + KEY_BUDGET)
            self._errors.pop(key, None)
        except Exception as e:  # noqa: BLE001 - contained to this key
            reason = f"vpnd failed on {key[-1]}: {type(e).__name__}: {e}"
            self.log.exception("key failed", key="/".join(key), error=reason)
            self._errors[key] = reason
            if key != FILES:
                rec.observed.views[key[1]] = NamespaceView(None, reason)
            steps, outcome = (), Retry(reason)
        self.queue.finish(key, outcome)
        return steps

    def healthy(self) -> bool:
        """The event sessions of every reachable charon are alive."""
        reachable = [ns for ns, view in self.reconciler.observed.views.items()
                     if view.live is not None]
        return self.reconciler.driver.watching(reachable)

    def _classify(self, events) -> tuple[set[str] | None, bool]:
        """(the state files that changed: a set, None for "look at all",
        or an empty set; a namespace came or went)."""
        state: set[str] | None = set()
        netns_ = False
        for directory, name, _mask in events:
            if directory == netns.NETNS_DIR:
                netns_ = True
            elif not name:
                state = None  # the directory itself, or a queue overflow
            elif is_state_file(name) and state is not None:
                state.add(os.path.join(directory, name))
        return state, netns_


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
