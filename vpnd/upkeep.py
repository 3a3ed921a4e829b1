"""Keeping the SAs of loaded connections in shape between changes.

Two things charon leaves undone, which vpnd does on each status refresh:
- both ends initiating at once leave two IKE_SAs (or CHILD_SAs) for one
  connection (charon runs with unique=never): vpnd ends the surplus ones,
  keeping the same SA as the peer's vpnd does (plan.duplicates decides);
- a bi-directional connection whose SA is gone (a failed first attempt, a
  peer that deleted it) is not initiated again by charon: vpnd does it,
  backing off.

Both are timed (a grace period, a back-off), so this keeps their clocks;
`due()` tells the daemon when to look again.
"""
from __future__ import annotations

import time

from .errors import DriverError
from .plan import Initiate, TerminateDuplicate, duplicates

# How long a duplicate SA must persist before vpnd ends it (seconds): a
# reauthentication overlaps old and new SAs for a moment, and that is no
# duplicate.
DUPLICATE_GRACE = 1.5
# A bi-directional connection with no SA is initiated again after this
# long, then after twice as long each time, up to REINITIATE_MAX.
REINITIATE_FIRST = 3.0
REINITIATE_MAX = 60.0


class SaUpkeep:
    def __init__(self, driver, log):
        self.driver = driver
        self.log = log
        # namespace -> {surplus SA: monotonic time first seen}
        self._surplus_seen: dict[str, dict[TerminateDuplicate, float]] = {}
        # (namespace, connection) -> (monotonic time of the next initiate, delay)
        self._reinitiate: dict[tuple[str, str], tuple[float, float]] = {}

    def due(self) -> dict[str, float]:
        """Namespace -> when (monotonic) a duplicate is to be confirmed or
        a connection initiated."""
        due: dict[str, float] = {}
        for (ns, _), (at, _) in self._reinitiate.items():
            due[ns] = min(at, due.get(ns, at))
        for ns, seen in self._surplus_seen.items():
            if seen:
                at = min(seen.values()) + DUPLICATE_GRACE
                due[ns] = min(at, due.get(ns, at))
        return due

    def tend(self, ns: str, live, loaded, initiators, children) -> bool:
        """End confirmed duplicates, initiate what has no SA; True when
        anything was sent (the caller re-reads the live state).
        `loaded`: vpnd's connections in this charon; `initiators`: the
        (namespace, connection) keys that are bi-directional; `children`:
        (namespace, connection) -> CHILD_SA names."""
        ended = self._deduplicate(ns, live, loaded)
        return self._keep_initiating(ns, live, loaded, initiators, children) | ended

    def _deduplicate(self, ns: str, live, loaded) -> bool:
        now = time.monotonic()
        seen = self._surplus_seen.get(ns, {})
        surplus = {a: seen.get(a, now) for name in loaded for a in duplicates(live, name)}
        confirmed = [a for a, first in surplus.items() if now - first >= DUPLICATE_GRACE]
        self._surplus_seen[ns] = {a: t for a, t in surplus.items() if a not in confirmed}
        for action in sorted(confirmed, key=lambda a: (a.name, a.kind, a.uniqueid)):
            try:
                self.driver.execute(ns, action)
                self.log.info("duplicate SA ended", netns=ns, connection=action.name,
                              sa=action.kind, uniqueid=action.uniqueid)
            except DriverError as e:
                self.log.warning("ending a duplicate SA failed", netns=ns,
                                 connection=action.name, error=str(e))
        return bool(confirmed)

    def _keep_initiating(self, ns: str, live, loaded, initiators, children) -> bool:
        now, sent = time.monotonic(), False
        have_sa = live.ike_sas
        for name in loaded:
            key = (ns, name)
            if key not in initiators or name in have_sa:
                self._reinitiate.pop(key, None)
                continue
            at, delay = self._reinitiate.get(key, (now + REINITIATE_FIRST, REINITIATE_FIRST))
            if now < at:
                self._reinitiate[key] = (at, delay)
                continue
            try:
                self.driver.execute(ns, Initiate(name, children.get(key, (name,))))
                self.log.info("initiating", netns=ns, connection=name,
                              reason="bi-directional connection has no SA")
                sent = True
            except DriverError as e:
                self.log.warning("initiate failed", netns=ns, connection=name, error=str(e))
            delay = min(delay * 2, REINITIATE_MAX)
            self._reinitiate[key] = (now + delay, delay)
        return sent
