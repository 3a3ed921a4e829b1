"""`vpnd run`: the loop. Everything that happens only adds keys to the work
queue; workers.py works the keys that are due.

Keys: FILES (re-read the state files that changed; its work adds the
namespaces they touch) and ("netns", name) (look at one namespace). The
wake-ups: inotify on the state directory and on /run/netns, charon's
events (from the watcher threads, through a pipe), finished looks (from
the worker threads, through the same pipe), signals (through the wakeup
fd), and three timers: the status poll, the full resync (the backstop for
anything missed) and the watchdog.

The inotify plumbing is watches.py, the signal handlers signals.py, and
what follows a round of looks (status, the round closed) round_end.py:
this module is the loop that ties them together.
"""
from __future__ import annotations

import ipaddress
import os
import queue as queue_mod
import select
import signal
import sys
import time
from dataclasses import dataclass

from vpnd import __version__
from vpnd.system import log, own_dirs
from vpnd.base.config import Config
from vpnd.drivers import compose
from vpnd.observe.metric_families import Rounds, Snapshot
from vpnd.system.notify import Notifier
from vpnd.loop import memory
from vpnd.loop.reconciler import Reconciler
from vpnd.loop.round_end import RoundEnd
from vpnd.loop.signals import STOPPING, Signals
from vpnd.loop.watches import Watches
from vpnd.loop.workers import FILES, WORKERS, Workers, ns_key
from vpnd.loop.workqueue import WorkQueue

# charon's events come in bursts (log lines, up/down, rekeys): one look.
EVENT_DELAY = 0.05

__all__ = ["Daemon", "FILES", "ns_key"]


@dataclass
class _Timers:
    """When the loop's timers are next due (monotonic seconds)."""
    resync: float
    status: float
    watchdog: float
    watchdog_every: float | None  # None: systemd asks for no watchdog


class Daemon:
    def __init__(self, config: Config, reconciler: Reconciler | None = None,
                 clock=time.monotonic, workers: int = WORKERS):
        self.config = config
        self.log = log.get()
        self.reconciler = reconciler or Reconciler(config, compose.driver(config))
        self.clock = clock
        self.queue = WorkQueue(clock)
        self.events: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self._wake_fd: int | None = None
        self.workers = Workers(self.reconciler, self.queue, clock, self._wake, workers)
        self.notifier = Notifier()
        self.rounds = Rounds()
        self.metrics = None  # metrics.Metrics, once run() starts it
        self.signals = Signals()
        self.round_end = RoundEnd(self.reconciler, self.workers, self.rounds, self.notifier,
                                  clock)

    def run(self) -> int:
        # Before anything is written there: a directory others could write
        # would let them redirect vpnd's writes, or plant its pid files and
        # sockets. Refused like a bad config: the error, and exit 1.
        refused = own_dirs.refusal(self.config)
        if refused:
            print(f"vpnd: {refused}", file=sys.stderr)
            return 1
        memory.one_arena()  # before any thread of vpnd's starts
        os.makedirs(self.config.state_dir, exist_ok=True)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        efd, self._wake_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.reconciler.on_event = self._on_event
        self.signals.install(wfd)
        watches = Watches(self.config.state_dir, self._wake, self.log)
        try:
            self._start_metrics()
            watches.start()
            self.log.info("vpnd started", state_dir=self.config.state_dir,
                          charon_mode=self.config.charon.mode, pid=os.getpid())
            self._first_round()
            memory.after_first_round()
            # Ready means: the first look at everything has been applied.
            self.notifier.ready()
            return self._loop(watches, rfd, efd)
        finally:
            watches.close()
            self.signals.restore()
            self.reconciler.on_event = lambda ns, label, event: None
            if self.metrics is not None:
                self.metrics.close()
            self.workers.close()
            self.reconciler.driver.close()
            self.reconciler.statedir.close()  # the last valid copies it owes
            for fd in (rfd, wfd, efd, self._wake_fd):
                os.close(fd)

    def _start_metrics(self) -> None:
        wanted = self.config.metrics
        if not (wanted.listen or wanted.textfile):
            return
        from vpnd.observe.metrics import Metrics  # its server thread only when metrics are on
        self.metrics = self.round_end.metrics = Metrics(self._snapshot, wanted.listen,
                                                        wanted.textfile)
        host = (wanted.listen or "").rpartition(":")[0].strip("[]")
        if host and not ipaddress.ip_address(host).is_loopback:
            self.log.warning("metrics served beyond loopback", listen=wanted.listen)

    def _snapshot(self) -> Snapshot:
        """What a scrape reads (from the metrics thread): what the loop
        already holds, never a call to charon."""
        rec = self.reconciler
        return Snapshot(
            report=rec.last_report,
            charons={ns: v.answering for ns, v in dict(rec.observed.views).items()},
            charon_restarts=dict(rec.observed.charon_restarts),
            vici_writes=rec.driver.writes(),
            invalid_files=rec.status.counts["problems"],
            rounds=self.rounds, version=__version__)

    def _wake(self) -> None:
        """From any thread: make the loop's select() return."""
        if self._wake_fd is None:
            return
        try:
            os.write(self._wake_fd, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the loop will wake anyway

    def _on_event(self, ns: str, label: str, event: dict) -> None:
        """On a watcher thread: hand the event to the loop."""
        self.events.put((ns, label, event))
        self._wake()

    def _everything(self, urgent: bool) -> None:
        """Queue a look at the files and at every namespace."""
        self.queue.add(FILES, scope=None, urgent=urgent)
        for ns in self.reconciler.namespaces():
            self.queue.add(ns_key(ns), scope=None, urgent=urgent)

    def _first_round(self) -> None:
        """The first look at everything: the files read in passes first if
        there are many (Workers.read_in_passes), then the full looks."""
        self.workers.read_in_passes(self.reconciler.statedir.listing())
        self._everything(urgent=True)
        self._round("start")

    def _round(self, trigger: str) -> None:
        """Work every key due now, and what that makes due, to the end
        (the first round, and tests)."""
        self.workers.begin(trigger)
        self.workers.work_until_idle()
        self.round_end.settle(force=True)

    # --- the loop ------------------------------------------------------------------

    def _loop(self, watches: Watches, rfd: int, efd: int) -> int:
        now = self.clock()
        timers = _Timers(resync=now + self.config.resync_interval,
                         status=now + self.config.status_interval, watchdog=now,
                         watchdog_every=self.notifier.watchdog_interval())
        reported = None  # the status version last summarised for STATUS=
        while True:
            readable = self._wait(timers, (rfd, efd, watches.fd))
            for fd in (rfd, efd):
                if fd in readable:
                    _drain(fd)
            file_events = watches.take(readable)
            self._take_events()
            if self._take_signals():
                return 0
            if file_events:
                self._queue_file_events(watches, file_events)
            self._queue_timers(timers, watches)
            self.workers.collect()
            self.workers.dispatch()
            self.round_end.settle()
            if self.reconciler.status.version != reported:
                # Only when an entry moved (the book keeps the counts).
                reported = self.reconciler.status.version
                self.notifier.status(self.reconciler.status.summary())
            if timers.watchdog_every is not None and self.clock() >= timers.watchdog:
                # Only from the loop itself, and only while it is healthy: a
                # wedged loop, or a dead event session, gets vpnd restarted.
                if self.healthy():
                    self.notifier.watchdog()
                timers.watchdog = self.clock() + timers.watchdog_every

    def _wait(self, timers: _Timers, fds) -> list[int]:
        """Sleep until an fd is readable or the next timer or key is due."""
        deadlines = [timers.resync, timers.status]
        if (due := self.queue.next_due()) is not None:
            deadlines.append(due)
        if timers.watchdog_every is not None:
            deadlines.append(timers.watchdog)
        timeout = max(0.0, min(deadlines) - self.clock())
        readable, _, _ = select.select(list(fds), [], [], timeout)
        return readable

    def _take_signals(self) -> bool:
        """Act on the signals received; True: stop (tunnels stay up:
        charons run on without vpnd)."""
        for signum in self.signals.take():
            if signum in STOPPING:
                self.log.info("vpnd stopping", signal=signal.Signals(signum).name)
                self.notifier.stopping()
                return True
            if signum == signal.SIGHUP:
                self.notifier.reloading()
                self._everything(urgent=True)
                self.workers.begin("SIGHUP")
        return False

    def _queue_file_events(self, watches: Watches, file_events) -> None:
        """A look at the state files and namespaces that changed."""
        state_changed, netns_changed = watches.classify(file_events)
        if state_changed is None or state_changed:
            self.queue.add(FILES, scope=state_changed, urgent=True)
            self.workers.begin("state change")
        if netns_changed is None:
            self._everything(urgent=True)
            self.workers.begin("namespace change")
        elif served := netns_changed & self.reconciler.namespaces():
            # A router's namespace came or went: a look at it alone
            # (a node with 500 routers makes and removes them all day).
            for ns in served:
                self.queue.add(ns_key(ns), scope=None, urgent=True)
            self.workers.begin("namespace change")

    def _queue_timers(self, timers: _Timers, watches: Watches) -> None:
        """The full resync (the backstop for anything missed), or else the
        status poll (a look at every namespace, not hurrying a back-off)."""
        now = self.clock()
        if now >= timers.resync:
            watches.watch_netns()
            self._everything(urgent=False)
            self.workers.begin("resync")
            timers.resync = now + self.config.resync_interval
            timers.status = now + self.config.status_interval
        elif now >= timers.status:
            for ns in self.reconciler.namespaces():
                self.queue.add(ns_key(ns), scope=None)
            timers.status = now + self.config.status_interval

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

    def healthy(self) -> bool:
        """The event sessions of every reachable charon are alive."""
        reachable = [ns for ns, view in list(self.reconciler.observed.views.items())
                     if view.answering]
        return self.reconciler.driver.watching(reachable)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
