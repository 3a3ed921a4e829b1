"""The end of a round of looks: status written when it is due, and a round
that is over closed.

The loop calls `settle` after booking finished looks. Status is written
when a round ends, as a long round goes on (its progress), and while the
applied record could not be saved (each write tries the save again); a
round that is over brings the last valid copies of what it applied, is
counted and logged, and confirms a reload (READY) only now that it has
been applied. Here so that each of these jobs has its own name.
"""
from __future__ import annotations

import time

from vpnd.loop.reconciler import Reconciler
from vpnd.loop.workers import Workers
from vpnd.observe.metric_families import Rounds
from vpnd.system import log
from vpnd.system.notify import Notifier

# While looks are under way, status.json is rewritten at most this often.
STATUS_EVERY = 0.1


class RoundEnd:
    def __init__(self, reconciler: Reconciler, workers: Workers, rounds: Rounds, notifier: Notifier,
                 clock=time.monotonic):
        self.rec = reconciler
        self.workers = workers
        self.rounds = rounds
        self.notifier = notifier
        self.clock = clock
        self.log = log.get()
        self.metrics = None  # metrics.Metrics, once the daemon starts it
        self._textfile_error: str | None = None
        self._status_at = 0.0
        self._status_cost = 0.0  # how long the last status write took

    def settle(self, force: bool = False) -> None:
        """Once looks have been booked: status written if due (see
        _status_due), with the kept copies of a round that is over; that
        round closed (logged, counted, a reload confirmed)."""
        done = self.workers.end_round()
        if not (force or done or self._status_due()):
            return
        if done:
            self.rec.reloads += done["reloads"]
        self._write_status(flush_kept=bool(done or force))
        if done:
            self._close_round(done)

    def _status_due(self) -> bool:
        """A long round (a cold start) shows its progress; a short one (a
        change) is not slowed by writing status before it has landed. At
        most every STATUS_EVERY, and never more than a tenth of the time
        (status.json of 10,000 connections is tens of ms to write). A
        record that could not be saved is tried again every second."""
        now = self.clock()
        every = max(STATUS_EVERY, 10 * self._status_cost)
        progress = self.workers.running and self.workers.round is not None and \
            now - self.workers.round["started"] >= every and now - self._status_at >= every
        return bool(progress or (self.rec.record.problem and now - self._status_at >= 1.0))

    def _write_status(self, flush_kept: bool) -> None:
        """The record saved again if it could not be (space may be back),
        status.json, then (`flush_kept`) the last valid copies, and the
        metrics textfile."""
        now = self.clock()
        if self.rec.record.problem:
            self.rec.record.save()
        extra = {"failing": self.workers.failing()}
        if self.workers.errors:
            extra["errors"] = sorted(set(self.workers.errors.values()))
        if self.metrics is not None:
            # A port held by another process is said here (and in `vpnd
            # health`), never by vpnd's exit: tunnels do not wait for it.
            extra["metrics"] = self.metrics.status(self._textfile_error)
        self.rec.write_status(extra)
        if flush_kept:
            # The last valid copies of what this round applied: after it has
            # landed and status says so, never beside a burst still under
            # way (10,000 file creations would share the cores with it).
            self.rec.statedir.flush_kept()
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

    def _close_round(self, done: dict) -> None:
        """A round that is over: counted, logged, and a reload confirmed
        (READY) only now that it has been applied."""
        self.rounds.add(done["ms"] / 1000, bool(done["failed"]),
                        done["trigger"] in ("resync", "start", "SIGHUP"), time.time())
        if done["changed"] or done["trigger"] not in ("resync", "look"):
            self.log.info("reconciled", trigger=done["trigger"], keys=done["keys"],
                          changed=done["changed"], failed=done["failed"], ms=done["ms"])
        if done["reloads"]:
            self.notifier.ready()
