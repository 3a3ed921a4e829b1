"""Keeping the SAs of loaded connections in shape between changes: steps
for the one apply path, so `vpnd plan` shows them too.

Two things charon leaves undone:
- both ends initiating at once leave two IKE_SAs (or CHILD_SAs) for one
  connection (charon runs with unique=never): vpnd ends the surplus ones,
  keeping the same SA as the peer's vpnd does (`duplicates` decides), once
  they have lasted DUPLICATE_GRACE;
- a bi-directional connection whose SA is gone (a failed first attempt, a
  peer that deleted it) is not initiated again by charon: vpnd does it
  when its namespace's key is retried, so it backs off with that key (from
  REINITIATE_FIRST up to the queue's maximum).

Pure apart from the first-seen times of surplus SAs, which it keeps.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Mapping

from vpnd.base.live import LiveState
from vpnd.base.conns import DesiredConn
from vpnd.plan.actions import Initiate, TerminateDuplicate, TerminateIke
from vpnd.plan.steps import Reason, Step, disruption, ike_ids
from vpnd.plan.standby import reason as standby_reason

# How long a duplicate SA must persist before vpnd ends it (seconds): a
# reauthentication overlaps old and new SAs for a moment, and that is no
# duplicate.
DUPLICATE_GRACE = 1.5
# A bi-directional connection with no SA is initiated again after this
# long, then after twice as long each time (the work queue's back-off).
REINITIATE_FIRST = 3.0


# Surplus SAs a namespace has not been looked at for this long past the
# grace are forgotten (its namespace went): one still there is looked at
# again once its grace is over (the recheck), long before.
FORGET_AFTER = 60.0


class Upkeep:
    def __init__(self, grace: float = DUPLICATE_GRACE):
        self.grace = grace
        # namespace -> {surplus SA: when first seen}; only namespaces that
        # have some. Looks run in parallel threads: changed under the lock.
        self._surplus_seen: dict[str, dict[TerminateDuplicate, float]] = {}
        self._lock = threading.Lock()

    def plan(self, ns: str, live: LiveState, loaded: Mapping[str, object],
             desired: Mapping[str, DesiredConn], now: float,
             may_initiate: bool, standby: Mapping[str, str] | None = None,
             initiate_now: frozenset[str] = frozenset(),
             initiators: tuple[str, ...] | None = None
             ) -> tuple[tuple[Step, ...], float | None, tuple[str, ...]]:
        """(upkeep steps due now, seconds until a duplicate is confirmed or
        None, the bi-directional connections that have no SA). `loaded`:
        vpnd's connections in this charon (the record); `standby`:
        connection -> its local address, absent from this node: its SAs
        are ended, it is never initiated; `initiate_now`: connections whose
        address has just come: initiated at once, not on a retry;
        `initiators`: initiators(desired), if known."""
        standby = standby or {}
        steps = []
        for name in sorted(n for n in standby if n in loaded and n in live.ike_sas):
            ids = ike_ids(live, name)
            steps.append(Step(ns, name, _service(loaded, name), Reason.STANDBY,
                              (TerminateIke(name, ids),), None,
                              disruption(live, ids, standby_reason(standby[name]))))
        duplicate_steps, recheck = self._duplicates(ns, live, loaded, now)
        steps += duplicate_steps
        have_sa = live.ike_sas
        if initiators is None:
            initiators = initiators_of(desired)
        missing = tuple(name for name in initiators
                        if name in loaded and name not in have_sa and name not in standby)
        for name in missing:
            if may_initiate or name in initiate_now:
                want = desired[name]
                steps.append(Step(ns, name, want.service_id, Reason.NO_SA,
                                  (Initiate(name, want.children or (name,)),), None))
        return tuple(steps), recheck, missing

    def _duplicates(self, ns: str, live: LiveState, loaded, now: float
                    ) -> tuple[list[Step], float | None]:
        """Steps that end the surplus SAs seen for the grace period, and
        when the next one will have been."""
        with self._lock:
            seen = self._surplus_seen.get(ns, {})
            # Only a connection with an SA can have a surplus one.
            surplus = {a: seen.get(a, now) for name in live.by_name if name in loaded
                       for a in duplicates(live, name)}
            confirmed = sorted((a for a, first in surplus.items() if now - first >= self.grace),
                               key=lambda a: (a.name, a.kind, a.uniqueid))
            pending = {a: t for a, t in surplus.items() if a not in confirmed}
            if pending:
                self._surplus_seen[ns] = pending
            else:
                self._surplus_seen.pop(ns, None)
            self._forget_unseen(now)
        steps = []
        for action in confirmed:
            kind = "IKE_SA" if action.kind == "ike" else "CHILD_SA"
            ending = disruption(live, [action.uniqueid] if action.kind == "ike" else [],
                                f"a duplicate {kind}: the other carries the traffic",
                                [action.uniqueid] if action.kind == "child" else [])
            # The kept SA carries the traffic: ending a duplicate interrupts none.
            ending = dataclasses.replace(ending, interrupts_traffic=False)
            steps.append(Step(ns, action.name, _service(loaded, action.name),
                              Reason.DUPLICATE, (action,), None, ending))
        recheck = (min(pending.values()) + self.grace - now) if pending else None
        return steps, recheck

    def _forget_unseen(self, now: float) -> None:
        """Drop the surplus SAs of namespaces no longer looked at (gone)."""
        stale = now - self.grace - FORGET_AFTER
        for ns in [ns for ns, seen in self._surplus_seen.items()
                   if max(seen.values()) < stale]:
            del self._surplus_seen[ns]


def initiators_of(desired: Mapping[str, DesiredConn]) -> tuple[str, ...]:
    """The bi-directional connections of `desired`, by name: the ones
    vpnd keeps initiated. Pure over `desired`, so a look may keep it."""
    return tuple(sorted(name for name, want in desired.items() if want.initiates))


def _service(loaded, name) -> str:
    return getattr(loaded.get(name), "service_id", "")


# SAs established this close together come from both ends initiating at
# once; an SA much older than the newest is a leftover (the peer restarted).
RACE_WINDOW = 10


def duplicates(live: LiveState, name: str) -> tuple[TerminateDuplicate, ...]:
    """Surplus SAs of one connection, to end so that one IKE_SA and one
    CHILD_SA per child name remain.

    Both ends initiating at once leaves two IKE_SAs (or two CHILD_SAs);
    the one kept is chosen by SPIs, which both ends see alike, so two vpnds
    (or vpnd and any peer) that both clean up end the same surplus SA and
    never both of them. An SA much older than the newest is stale (the
    peer restarted and no longer has it): the newer one is kept.
    """
    established = [sa for sa in live.by_name.get(name, ()) if sa.state == "ESTABLISHED"]
    ikes, keeper = _surplus(established, lambda sa: (sa.spi_i, sa.spi_r))
    actions = [TerminateDuplicate(name, "ike", sa.uniqueid) for sa in ikes]
    if keeper is None:
        return ()
    by_child: dict[str, list] = {}
    for child in keeper.children:
        if child.state == "INSTALLED":
            by_child.setdefault(child.name, []).append(child)
    for children in by_child.values():
        surplus, _ = _surplus(children, lambda c: c.spi_key)
        actions += [TerminateDuplicate(name, "child", c.uniqueid) for c in surplus]
    return tuple(actions)


def _surplus(sas: list, spi_key):
    """(surplus SAs, the one to keep) among SAs of the same name."""
    if not sas:
        return [], None
    newest = min(sa.age for sa in sas)
    stale = [sa for sa in sas if sa.age > newest + RACE_WINDOW]
    racing = sorted((sa for sa in sas if sa.age <= newest + RACE_WINDOW), key=spi_key)
    return stale + racing[1:], racing[0]
