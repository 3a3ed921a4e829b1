"""Working the keys that are due: the files in the loop's own thread (they
are quick, and they replace the desired state), each namespace in a thread
of a small pool, never two looks at one key at once.

A charon that stops answering holds only the worker looking at it, until
that call's deadline: the other namespaces go on in the other workers, so
a change elsewhere lands as fast as ever. The queue is touched only from
the loop's thread; a worker hands its result back through `finished` and
wakes the loop.
"""
from __future__ import annotations

import queue as queue_mod
import time
from concurrent.futures import ThreadPoolExecutor

from vpnd.system import log
from vpnd.observe.status import NamespaceView
from vpnd.loop.workqueue import Done, Retry, WorkQueue

FILES = ("files",)
WORKERS = 4
# One look stops between steps after this long and lets the keys due
# before it run first; every VICI call is bounded by its own deadline.
KEY_BUDGET = 2.0
# The files inotify named are read at most this many at a time (25-100 ms
# here), the rest queued again: a flood of 10,000 files does not hold the
# loop for seconds, the namespaces the first ones touch start their looks
# while the rest are read, and another namespace's change waits for one
# such pass at most. Measured against 1,000: a shared policy change in
# 10,000 files landed in 7.0 s instead of ~10 s, because charon loads the
# first passes while the later ones are still being read.
FILES_PER_PASS = 250
# At a start read in passes, a namespace is looked at between passes only
# once this many of its connections are read: its full look after the
# passes repeats the charon start and the whole read of the scoped one,
# which pays for a namespace with thousands of loads to overlap with the
# reading, not for 500 routers of two connections each.
PASS_LOOK_MIN = 250


def ns_key(namespace: str) -> tuple[str, str]:
    return ("netns", namespace)


class Workers:
    def __init__(self, reconciler, queue: WorkQueue, clock=time.monotonic,
                 wake=lambda: None, workers: int = WORKERS):
        self.rec = reconciler
        self.queue = queue
        self.clock = clock
        self.wake = wake
        self.log = log.get()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vpnd-look")
        self.running: dict[tuple, float] = {}  # key -> when its look started
        self.finished: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self.errors: dict[tuple, str] = {}  # key -> an exception in its work
        self._prestarted: set = set()
        self._served: set[str] | None = None  # the namespaces served, last seen
        # While a start is read in passes: each namespace's files read and
        # not yet looked at (PASS_LOOK_MIN), None once it has been; not
        # passing: None.
        self._passing: dict[str, set[str] | None] | None = None
        # The round under way: what started it, when, and what it did.
        self.round: dict | None = None

    def begin(self, trigger: str) -> None:
        if self.round is None:
            self.round = {"trigger": trigger, "started": self.clock(), "keys": 0,
                          "changed": 0, "failed": 0, "reloads": 0}
        if trigger == "SIGHUP":
            self.round["reloads"] += 1

    def dispatch(self) -> None:
        """Start every key that is due and not already being looked at."""
        files_read = False
        # The files once per call: a flood's next pass comes after the loop
        # has booked finished looks and taken events (a namespace's next
        # batch can start while the rest is read).
        while due := [k for k in self.queue.due()
                      if k not in self.running and not (files_read and k == FILES)]:
            if self.round is None:
                self.begin("look")
            # The charons of every namespace due start together; each
            # namespace's look then waits for its own.
            self.rec.prestart([k[1] for k in due if k != FILES and k not in self._prestarted])
            self._prestarted.update(due)
            if FILES in due and self._served is not None and len(due) > 1:
                # Files read before: the namespaces' looks (in the pool)
                # need not wait for every file's stat (in this thread);
                # a file that did change brings its namespace's look again.
                due.remove(FILES)
                due.append(FILES)
            key = due[0]
            scope = self.queue.take(key)
            if key == FILES:
                self._book(key, *self._work(key, scope, False))
                files_read = True
            else:
                self.running[key] = self.clock()
                self.pool.submit(self._run, key, scope, self.queue.retrying(key))

    def _run(self, key, scope, retrying) -> None:
        """In a worker thread."""
        self.finished.put((key, *self._work(key, scope, retrying)))
        self.wake()

    def collect(self) -> int:
        """Book the looks that finished; how many did."""
        count = 0
        while True:
            try:
                key, steps, outcome, error = self.finished.get_nowait()
            except queue_mod.Empty:
                return count
            self.running.pop(key, None)
            self._book(key, steps, outcome, error)
            count += 1

    def idle(self) -> bool:
        return not self.running and not self.queue.due()

    def end_round(self) -> dict | None:
        """The round just finished (the loop logs it), once idle."""
        if self.round is None or not self.idle():
            return None
        done, self.round = self.round, None
        self._prestarted.clear()
        done["ms"] = round((self.clock() - done["started"]) * 1000, 1)
        return done

    def work_until_idle(self) -> None:
        """Dispatch and wait for every look (the first round, and tests)."""
        while True:
            self.dispatch()
            if self.idle():
                return
            if not self.running or self.queue.is_due(FILES):
                # More files to read (one pass per dispatch), while the
                # looks at what was read run.
                self.collect()
                continue
            key, steps, outcome, error = self.finished.get()
            self.running.pop(key, None)
            self._book(key, steps, outcome, error)

    def read_in_passes(self, paths: list[str]) -> None:
        """Many files at a start: read in passes, each pass's namespaces
        looked at (scoped to what it read) while the next pass is read,
        so that charon loads the first connections while the rest are
        still being read and checked. The caller's full looks come after:
        one before every file was read would take the files not read yet
        for gone (at a restart, their tunnels)."""
        if len(paths) <= FILES_PER_PASS:
            return  # the full scan reads them at once
        self.queue.add(FILES, scope=paths, urgent=True)
        self.begin("start")
        self._passing = {}
        try:
            self.work_until_idle()
        finally:
            self._passing = None

    def failing(self) -> dict[str, str]:
        return {"/".join(k): why for k, why in sorted(self.queue.failing().items())}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- one key ----------------------------------------------------------------

    def _work(self, key, scope, retrying):
        """One key's work: (steps, outcome, error). An exception stays here."""
        rec = self.rec
        try:
            if key == FILES:
                self._files(scope)
                return (), Done(), None
            steps, outcome = rec.reconcile_namespace(key[1], scope, retrying=retrying,
                                                     deadline=self.clock() + KEY_BUDGET)
            return steps, outcome, None
        except Exception as e:  # noqa: BLE001 - contained to this key
            reason = f"vpnd failed on {key[-1]}: {type(e).__name__}: {e}"
            self.log.exception("key failed", key="/".join(key), error=reason)
            if key != FILES:
                rec.observed.set_view(key[1], NamespaceView(None, reason))
            return (), Retry(reason), reason

    def _files(self, scope) -> None:
        """Re-read the files; queue a look at the namespaces they touch, only
        for the files that changed (a look at everything: for all)."""
        if scope is not None and len(scope) > FILES_PER_PASS:
            ordered = sorted(scope)
            scope = set(ordered[:FILES_PER_PASS])
            self.queue.add(FILES, scope=ordered[FILES_PER_PASS:], urgent=True)
        touched, changed = self.rec.read_files(None if scope is None else set(scope))
        served = self.rec.namespaces()
        if served != self._served:
            # Only when the set of namespaces moved: a change within one
            # costs the same however many there are.
            busy = False
            for gone in [k for k in self.queue.keys() if k != FILES and k[1] not in served]:
                if gone in self.running:
                    busy = True  # forgotten at a later pass, once its look is over
                else:
                    self.queue.forget(gone)  # nothing left to do or report there
            self.rec.observed.forget_namespaces(served)
            # What full looks kept of a namespace no file names any more
            # (its connections, PSKs among them) goes with it.
            self.rec.memo.keep_only(served.__contains__)
            self.rec.checks.keep_only(served.__contains__)
            self._served = None if busy else served
        for ns in touched & served:  # a namespace no file names any more: nothing to do
            if self._passing is not None:
                self._look_between_passes(ns, changed)
            else:
                self.queue.add(ns_key(ns), scope=None if scope is None else changed,
                               urgent=True)

    def _look_between_passes(self, ns: str, changed: set[str]) -> None:
        """A start read in passes: a look at `ns`, a namespace new to vpnd,
        scoped to all of its files read so far, once it has PASS_LOOK_MIN
        connections (the full looks after the passes see to the others)."""
        if self.rec.record.namespaces.get(ns):
            # vpnd applied there before (a restart): what runs there was
            # made from all of its files, charon's settings too, and a look
            # at a part would set those from a part. Its full look comes
            # after the passes, as at any start.
            return
        by_source = self.rec.rendered.by_source
        mine = {p for p in changed if by_source.get(p, ("",))[0] == ns}
        waiting = self._passing.get(ns, set())
        if waiting is not None:  # not looked at yet
            mine |= waiting
            if len(self.rec.rendered.conns.get(ns, {})) < PASS_LOOK_MIN:
                self._passing[ns] = mine
                return
            self._passing[ns] = None
        self.queue.add(ns_key(ns), scope=mine, urgent=True)

    def _book(self, key, steps, outcome, error) -> None:
        self.queue.finish(key, outcome)
        if error:
            self.errors[key] = error
        else:
            self.errors.pop(key, None)
        if self.round is not None:
            self.round["keys"] += 1
            self.round["changed"] += sum(1 for s in steps if s.actions and not s.upkeep)
            self.round["failed"] += bool(self.queue.reason(key))
