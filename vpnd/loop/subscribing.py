"""When a look subscribes to charon's events, relative to its loads.

Events (SA up/down, charon's log lines with failure reasons) should flow
from before the loads, so that the first attempt's outcome is seen; but
charon logs every load too, and for many new connections streaming those
lines costs it (and vpnd) more than the loads. So a small batch subscribes
first (and waits for it if a connection initiates as it loads); a large
one subscribes after, with charon's log muted meanwhile, and the
"subscribed" event brings a fresh look at what happened between.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Mapping

from vpnd.drivers.base import Driver

# A look that applies more connections than this to a charon vpnd is not
# yet listening to subscribes after applying them. At 1000 the log events
# cost 100-200 ms of a 0.5 s cold start; at 100, ~10 ms.
EVENTS_BEFORE_LOADS_MAX = 100
# How long a smaller look that loads connections which initiate waits for
# a new event session to be subscribed (a round trip or two, normally).
SUBSCRIBE_WAIT = 2.0


def subscribe_before(driver: Driver, ns: str, steps, wanted: Mapping, on_event) -> None:
    """Subscribe to the namespace's events before applying `steps`, unless
    they are a large batch (`wanted`: the namespace's desired connections)."""
    applying = [s for s in steps if s.actions]
    if len(applying) <= EVENTS_BEFORE_LOADS_MAX:
        # A bi-directional connection initiates as it loads, and its
        # first outcome comes within a few round trips: then the
        # subscription is waited for, or that outcome could be missed.
        initiates = any(s.name in wanted and wanted[s.name].initiates for s in applying)
        driver.watch(ns, on_event, wait=SUBSCRIBE_WAIT if initiates else 0.0)


@contextmanager
def log_muted_for(driver: Driver, ns: str, steps):
    """A large batch into a charon vpnd listens to: its log events muted
    meanwhile (charon spends more on sending them than on the loads)."""
    muted = sum(1 for s in steps if s.actions) > EVENTS_BEFORE_LOADS_MAX
    if muted:
        driver.mute_log(ns, True)
    try:
        yield
    finally:
        if muted:
            driver.mute_log(ns, False)
