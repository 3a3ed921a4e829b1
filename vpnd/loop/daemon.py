"""`vpnd run`: the loop. Everything that happens only adds keys to the work
queue; workers.py works the keys that are due.

Keys: FILES (re-read the state files that changed; its work adds the
namespaces they touch) and ("netns", name) (look at one namespace). The
wake-ups: inotify on the state directory and on /run/netns, charon's
events (from the watcher threads, through a pipe), finished looks (from
the worker threads, through the same pipe), signals (through the wakeup
fd), and three timers: the status poll, the full resync (the backstop for
anything missed) and the watchdog.
"""
from __future__ import annotations

import ctypes
import gc
import ipaddress
import os
import queue as queue_mod
import select
import signal
import sys
import time

from vpnd import __version__
from vpnd.system import log, netns, own_dirs
from vpnd.base.config import Config
from vpnd.drivers import compose
from vpnd.system.inotify import IN_Q_OVERFLOW, Inotify, Reader
from vpnd.observe.metric_families import Rounds, Snapshot
from vpnd.system.notify import Notifier
from vpnd.loop.reconciler import Reconciler
from vpnd.state.statefiles import is_state_file
from vpnd.loop.workers import FILES, WORKERS, Workers, ns_key
from vpnd.loop.workqueue import WorkQueue

# charon's events come in bursts (log lines, up/down, rekeys): one look.
EVENT_DELAY = 0.05
# While looks are under way, status.json is rewritten at most this often.
STATUS_EVERY = 0.1

__all__ = ["Daemon", "FILES", "ns_key"]

# kubelet's atomic writer (ConfigMap, Secret volumes): each visible file is
# a link into `..data/`, itself a link to a timestamped directory; an update
# writes a new directory, points `..data_tmp` at it and renames that over
# `..data`. That rename (IN_MOVED_TO "..data") is the moment to read: the
# new directory is complete by then, so a half-written one is never read.
KUBERNETES_DATA = "..data"


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
        self._textfile_error: str | None = None
        self._signals: list[int] = []
        self._status_at = 0.0
        self._status_cost = 0.0  # how long the last status write took

    def run(self) -> int:
        # Before anything is written there: a directory others could write
        # would let them redirect vpnd's writes, or plant its pid files and
        # sockets. Refused like a bad config: the error, and exit 1.
        refused = own_dirs.refusal(self.config)
        if refused:
            print(f"vpnd: {refused}", file=sys.stderr)
            return 1
        os.makedirs(self.config.state_dir, exist_ok=True)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        efd, self._wake_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.reconciler.on_event = self._on_event
        old_wakeup = signal.set_wakeup_fd(wfd)
        handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
        old_handlers = {s: signal.signal(s, self._on_signal) for s in handled}
        watcher = Inotify()
        reader = Reader(watcher, self._wake)
        try:
            self._start_metrics()
            watcher.watch(self.config.state_dir)
            # Its parent too: a state dir removed and made again (or renamed
            # into place) is watched again at once.
            watcher.watch(os.path.dirname(self.config.state_dir) or "/")
            netns_watched = self._watch_netns(watcher)
            # From now on: what is written during the first round (seconds
            # at 10,000 files) is held for the loop, not lost in the kernel.
            reader.start()
            self.log.info("vpnd started", state_dir=self.config.state_dir,
                          charon_mode=self.config.charon.mode, pid=os.getpid())
            self._everything(urgent=True)
            self._round("start")
            _give_back_memory()
            # Ready means: the first look at everything has been applied.
            self.notifier.ready()
            return self._loop(watcher, reader, rfd, efd, netns_watched)
        finally:
            reader.stop()
            watcher.close()
            signal.set_wakeup_fd(old_wakeup)
            for s, h in old_handlers.items():
                signal.signal(s, h)
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
        from vpnd.observe.metrics import Metrics  # prometheus_client only when metrics are on
        self.metrics = Metrics(self._snapshot, wanted.listen, wanted.textfile)
        host = (wanted.listen or "").rpartition(":")[0].strip("[]")
        if host and not ipaddress.ip_address(host).is_loopback:
            self.log.warning("metrics served beyond loopback", listen=wanted.listen)

    def _snapshot(self) -> Snapshot:
        """What a scrape reads (from the metrics thread): what the loop
        already holds, never a call to charon."""
        rec = self.reconciler
        return Snapshot(
            report=rec.last_report,
            charons={ns: v.live is not None for ns, v in dict(rec.observed.views).items()},
            charon_restarts=dict(rec.observed.charon_restarts),
            vici_writes=rec.driver.writes(),
            invalid_files=rec.status.counts["problems"],
            rounds=self.rounds, version=__version__)

    def _on_signal(self, signum, frame):
        self._signals.append(signum)

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

    def _round(self, trigger: str) -> None:
        """Work every key due now, and what that makes due, to the end
        (the first round, and tests)."""
        self.workers.begin(trigger)
        self.workers.work_until_idle()
        self._publish(force=True)

    def _loop(self, watcher: Inotify, reader: Reader, rfd: int, efd: int,
              netns_watched: bool) -> int:
        now = self.clock()
        next_resync = now + self.config.resync_interval
        next_status = now + self.config.status_interval
        watchdog = self.notifier.watchdog_interval()
        next_watchdog = now
        reported = None  # the status version last summarised for STATUS=
        while True:
            deadlines = [next_resync, next_status]
            if (due := self.queue.next_due()) is not None:
                deadlines.append(due)
            if watchdog is not None:
                deadlines.append(next_watchdog)
            timeout = max(0.0, min(deadlines) - self.clock())
            readable, _, _ = select.select([rfd, efd, watcher.fd], [], [], timeout)
            for fd in (rfd, efd):
                if fd in readable:
                    _drain(fd)
            # What the reader holds (it wakes us through efd), then what is
            # pending now: a loop that was idle reads a change itself, with
            # no hand-over between threads. The order between the two does
            # not matter: an event only says "look at this file again".
            file_events = reader.take()
            if watcher.fd in readable:
                file_events += watcher.read()
            self._take_events()
            while self._signals:
                signum = self._signals.pop(0)
                if signum in (signal.SIGTERM, signal.SIGINT):
                    # Tunnels stay up: charons run on without vpnd.
                    self.log.info("vpnd stopping", signal=signal.Signals(signum).name)
                    self.notifier.stopping()
                    return 0
                if signum == signal.SIGHUP:
                    self.notifier.reloading()
                    self._everything(urgent=True)
                    self.workers.begin("SIGHUP")
            if file_events:
                state_changed, netns_changed = self._classify(watcher, file_events)
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
            now = self.clock()
            if now >= next_resync:
                if not netns_watched:
                    netns_watched = self._watch_netns(watcher)
                self._everything(urgent=False)
                self.workers.begin("resync")
                next_resync = now + self.config.resync_interval
                next_status = now + self.config.status_interval
            elif now >= next_status:
                for ns in self.reconciler.namespaces():
                    self.queue.add(ns_key(ns), scope=None)
                next_status = now + self.config.status_interval
            self.workers.collect()
            self.workers.dispatch()
            self._publish()
            if self.reconciler.status.version != reported:
                # Only when an entry moved (the book keeps the counts).
                reported = self.reconciler.status.version
                self.notifier.status(self.reconciler.status.summary())
            if watchdog is not None and self.clock() >= next_watchdog:
                # Only from the loop itself, and only while it is healthy: a
                # wedged loop, or a dead event session, gets vpnd restarted.
                if self.healthy():
                    self.notifier.watchdog()
                next_watchdog = self.clock() + watchdog

    def _publish(self, force: bool = False) -> None:
        """Write status when looks finished (at most every STATUS_EVERY while
        they go on), and close a round that is over: log it, and confirm a
        reload only now that it has been applied."""
        done = self.workers.end_round()
        now = self.clock()
        # A long round (a cold start) shows its progress; a short one (a
        # change) is not slowed by writing status before it has landed.
        # At most every STATUS_EVERY, and never more than a tenth of the
        # time (status.json of 10,000 connections is tens of ms to write).
        every = max(STATUS_EVERY, 10 * self._status_cost)
        progress = self.workers.running and self.workers.round is not None and \
            now - self.workers.round["started"] >= every and now - self._status_at >= every
        if not (force or done or progress
                or (self.reconciler.record.problem and now - self._status_at >= 1.0)):
            return
        if done:
            self.reconciler.reloads += done["reloads"]
        if self.reconciler.record.problem:
            self.reconciler.record.save()  # space may be back
        extra = {"failing": self.workers.failing()}
        if self.workers.errors:
            extra["errors"] = sorted(set(self.workers.errors.values()))
        if self.metrics is not None:
            # A port held by another process is said here (and in `vpnd
            # health`), never by vpnd's exit: tunnels do not wait for it.
            extra["metrics"] = self.metrics.status(self._textfile_error)
        self.reconciler.write_status(extra)
        if done or force:
            # The last valid copies of what this round applied: after it has
            # landed and status says so, never beside a burst still under
            # way (10,000 file creations would share the cores with it).
            self.reconciler.statedir.flush_kept()
        self._status_at = now
        self._status_cost = self.clock() - now
        if self.metrics is not None:
            try:
                self.metrics.write_textfile()
                self._textfile_error = None
            except OSError as e:
                if str(e) != self._textfile_error:  # once, not at every status
                    self.log.warning("metrics textfile not written", error=str(e))
                    self._textfile_error = str(e)
        if done:
            self.rounds.add(done["ms"] / 1000, bool(done["failed"]),
                            done["trigger"] in ("resync", "start", "SIGHUP"), time.time())
            if done["changed"] or done["trigger"] not in ("resync", "look"):
                self.log.info("reconciled", trigger=done["trigger"], keys=done["keys"],
                              changed=done["changed"], failed=done["failed"], ms=done["ms"])
            if done["reloads"]:
                self.notifier.ready()

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
                     if view.live is not None]
        return self.reconciler.driver.watching(reachable)

    def _classify(self, watcher: Inotify, events) -> tuple[set[str] | None, set[str] | None]:
        """(the state files that changed, the namespaces that came or went:
        each a set, maybe empty, or None for "look at all")."""
        state: set[str] | None = set()
        netns_: set[str] | None = set()
        state_dir = self.config.state_dir
        for directory, name, mask in events:
            if mask & IN_Q_OVERFLOW:
                # Events were dropped (by the kernel, or past what the
                # reader holds): any file, or namespace, may have changed.
                if state is not None or netns_ is not None:
                    self.log.warning("inotify queue overflowed",
                                     meaning="events were lost: every state file and "
                                             "namespace is looked at now",
                                     limit="fs.inotify.max_queued_events")
                state, netns_ = None, None
                continue
            if directory == netns.NETNS_DIR:
                if not name:
                    netns_ = None  # /run/netns itself moved: any namespace may have
                elif netns_ is not None:
                    netns_.add(name)
            elif directory != state_dir:  # its parent
                if os.path.join(directory, name) == state_dir:
                    state = None  # the state dir came or went
                    if os.path.isdir(state_dir):
                        watcher.watch(state_dir)
            elif not name or name == KUBERNETES_DATA:
                # The directory itself, or a Kubernetes volume's atomic
                # swap: every file may have changed.
                state = None
            elif is_state_file(name) and state is not None:
                state.add(os.path.join(directory, name))
        return state, netns_


def _give_back_memory() -> None:
    """After the first round: the plan and the messages of every load are
    garbage now; glibc keeps freed heap for reuse unless asked to return
    it (at 10,000 connections, tens of MB a daemon would hold for nothing)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to ask
    # What the first round made lives as long as vpnd (models, records,
    # status): out of the collector's sight, so that a full collection
    # does not walk millions of objects at 10,000 connections (seen: a
    # change delayed by a second).
    gc.freeze()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
