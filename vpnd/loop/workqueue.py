"""A keyed work queue with outcomes, in the manner of controller-runtime.

Everything that wants work done (inotify, charon's events, timers, signals)
only adds a key: "look at K again". The loop takes the keys that are due,
one at a time, and each key's work ends in an outcome:

- Done: nothing pending; the key's back-off is reset.
- RequeueAfter(t): look again in t seconds (a timer, not a failure); the
  back-off is reset too.
- Retry(reason): it failed; look again after the key's back-off, which
  starts at `first` and doubles up to BACKOFF_MAX while it keeps failing.
- Terminal(reason): it cannot succeed until its input changes; not
  requeued until someone adds the key again.

A key is queued once however often it is added (the earliest time wins),
and adding a key that is backing off does not cut its back-off short
unless the add is `urgent` (its input really changed). Pure apart from the
clock, which is injected.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Hashable

BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class RequeueAfter:
    seconds: float


@dataclass(frozen=True)
class Retry:
    reason: str
    first: float = 1.0  # the first back-off delay, doubled while it fails
    recheck: float | None = None  # and look again this soon anyway (a timer)


@dataclass(frozen=True)
class Terminal:
    reason: str


Outcome = Done | RequeueAfter | Retry | Terminal


@dataclass
class _State:
    due: float | None = None  # queued for this time; None: not queued
    # What changed since the key last ran: a set of sources, or None for
    # "everything" (a full look). Merged across adds.
    scope: set | None = field(default_factory=set)
    retry_at: float | None = None  # backing off until then
    delay: float = 0.0  # the current back-off delay (0: not failing)
    reason: str = ""  # why it last failed (Retry or Terminal)


class WorkQueue:
    def __init__(self, clock=time.monotonic, backoff_max: float = BACKOFF_MAX):
        self.clock = clock
        self.backoff_max = backoff_max
        self._keys: dict[Hashable, _State] = {}

    def add(self, key: Hashable, scope=None, at: float | None = None,
            urgent: bool = False) -> None:
        """Look at `key` again at `at` (default: now). `scope`: the sources
        that changed (None: everything)."""
        state = self._keys.setdefault(key, _State())
        when = self.clock() if at is None else at
        if not urgent and state.retry_at is not None:
            when = max(when, state.retry_at)
        state.due = when if state.due is None else min(state.due, when)
        if scope is None or state.scope is None:
            state.scope = None
        else:
            state.scope |= set(scope)

    def next_due(self) -> float | None:
        return min((s.due for s in self._keys.values() if s.due is not None), default=None)

    def is_due(self, key: Hashable) -> bool:
        """`key` is due now (one look-up, not a sort of every key)."""
        state = self._keys.get(key)
        return state is not None and state.due is not None and state.due <= self.clock()

    def due(self) -> list[Hashable]:
        """The keys due now, earliest first (they stay queued)."""
        now = self.clock()
        return [k for _, _, k in sorted(
            (s.due, i, k) for i, (k, s) in enumerate(self._keys.items())
            if s.due is not None and s.due <= now)]

    def take(self, key: Hashable) -> set | None:
        """Take one due key off the queue; returns its scope."""
        state = self._keys[key]
        scope = state.scope
        state.due, state.scope = None, set()
        return scope

    def finish(self, key: Hashable, outcome: Outcome) -> None:
        """Book one run's outcome: reset, requeue, or back off."""
        state = self._keys.setdefault(key, _State())
        now = self.clock()
        match outcome:
            case Done():
                state.retry_at, state.delay, state.reason = None, 0.0, ""
            case RequeueAfter(seconds=seconds):
                state.retry_at, state.delay, state.reason = None, 0.0, ""
                self.add(key, scope=None, at=now + seconds)
            case Retry(reason=reason, first=first, recheck=recheck):
                # A run before the back-off ran out (an event, say) keeps
                # the schedule; only a due retry that fails again doubles it.
                if state.retry_at is None or now >= state.retry_at:
                    state.delay = first if not state.delay else min(
                        state.delay * 2, self.backoff_max)
                    state.retry_at = now + state.delay
                state.reason = reason
                self.add(key, scope=None, at=state.retry_at, urgent=True)
                if recheck is not None:
                    self.add(key, scope=None, at=now + recheck, urgent=True)
            case Terminal(reason=reason):
                state.retry_at, state.delay, state.reason = None, 0.0, reason
            case _:
                raise TypeError(f"not an outcome: {outcome!r}")

    def retrying(self, key: Hashable) -> bool:
        """Whether the key is backing off and its retry time has come: a
        run now is the retry (re-initiation waits for one)."""
        state = self._keys.get(key)
        return bool(state and state.retry_at is not None and self.clock() >= state.retry_at)

    def reason(self, key: Hashable) -> str:
        """Why the key's last run failed ("" if it did not)."""
        state = self._keys.get(key)
        return state.reason if state else ""

    def failing(self) -> dict[Hashable, str]:
        """Keys whose last run failed, with the reason."""
        return {k: s.reason for k, s in self._keys.items() if s.reason}

    def forget(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def keys(self) -> list[Hashable]:
        return list(self._keys)
