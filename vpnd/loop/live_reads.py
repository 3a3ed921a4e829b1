"""What a look reads of a charon, and what it costs.

A scoped look asks charon for the SAs of just the connections that move,
or reads the whole namespace once when that is cheaper (`one_read_pays`);
after applying, the connections that moved are asked again and patched
into the view the last full look made. A charon that was answering and
stops is lost, and started again (LiveReader). Here so that the looks
name these reads instead of spelling out their cost model.
"""
from __future__ import annotations

from typing import Mapping

from vpnd.base.errors import CharonNotAnswering, DriverUnavailable
from vpnd.base.live import LiveState
from vpnd.drivers.base import Driver
from vpnd.loop.charon_checks import unreachable
from vpnd.observe.observed import Observed
from vpnd.observe.status import NamespaceView

# A scoped look asks charon for the SAs of each name that moves (list-sas
# filtered by name: 0.3-0.45 ms each, at 100 to 10,000 connections loaded),
# or reads the namespace once (get-conns, get-shared, list-sas: 1.2 ms at
# 100, 3.2 ms at 1,000, 18 ms at 10,000, measured without SAs: about
# 1 ms + 1.7 us a connection, so the whole read pays from 3 + N/200 names).
# SAs make the whole read dearer (each is listed), hence N/100.
ONE_READ_PER_NAME = 100
ONE_READ_MIN = 4


class LiveReader:
    """A look's read of a charon. One that was answering and stops is
    lost (said in status, its restart counted); a charon vpnd runs is
    then started again by the read. A wedged one (CharonNotAnswering)
    raises: starting another beside it would not help."""

    def __init__(self, driver: Driver, observed: Observed, log, runs_charons: bool):
        self.driver = driver
        self.observed = observed
        self.log = log
        self.runs_charons = runs_charons  # not an external charon

    def whole(self, ns: str, running: bool) -> LiveState:
        """The namespace's whole live state (`running`: its charon was
        answering at the last look)."""
        if running:
            try:
                return self.driver.live_state(ns, start=False)
            except CharonNotAnswering:
                raise
            except DriverUnavailable as e:
                self._lost(ns, e)
        return self.driver.live_state(ns, start=True)

    def scoped(self, ns: str, wanted: Mapping, recorded: Mapping,
               loaded: int) -> tuple[LiveState, bool]:
        """(What a scoped look needs of a charon that was answering,
        whether it is all of the namespace: live_of_changed); if it
        stopped answering, the whole state of a charon started again."""
        try:
            return live_of_changed(self.driver, ns, wanted, recorded, loaded)
        except CharonNotAnswering:
            raise
        except DriverUnavailable as e:
            self._lost(ns, e)
        return self.driver.live_state(ns, start=True), True

    def _lost(self, ns: str, e: DriverUnavailable) -> None:
        self.log.warning("charon lost", error=str(e))
        self.observed.set_view(ns, NamespaceView(None, unreachable(e)))
        if self.runs_charons:
            self.observed.restarted(ns)  # the read starts it again


def one_read_pays(names: int, loaded: int) -> bool:
    """Whether one read of the whole namespace costs less than asking for
    the SAs of `names` connections one by one, with `loaded` loaded."""
    return names >= ONE_READ_MIN and names * ONE_READ_PER_NAME >= loaded


def moving(wanted: Mapping, recorded: Mapping) -> set[str]:
    """The connections whose configuration moves: new, changed or gone."""
    names = {n for n, d in wanted.items()
             if n not in recorded or recorded[n].fingerprint != d.fingerprint}
    return names | (recorded.keys() - wanted.keys())


def live_of_changed(driver: Driver, ns: str, wanted: Mapping, recorded: Mapping,
                    loaded: int) -> tuple[LiveState, bool]:
    """(What a scoped look needs of a charon that was answering, whether
    it is all of the namespace): what is loaded, from the record, and the
    SAs of just the connections whose configuration moved, asked fresh;
    or, for a batch of many, the whole namespace read once. A charon that
    lost what vpnd loaded is found by the next full look."""
    names = moving(wanted, recorded)
    if one_read_pays(len(names), loaded):
        return driver.live_state(ns, start=False), True
    return LiveState(conns=frozenset(recorded),
                     shared=frozenset(a.secret_id for a in recorded.values()),
                     sas=driver.sas_of(ns, sorted(names))), False


def patched(driver: Driver, ns: str, old: LiveState, recorded: Mapping,
            names: set[str]) -> LiveState:
    """The namespace's last view `old` with these connections as they are
    now: loaded as the record says, their SAs asked fresh."""
    loaded = {n for n in names if n in recorded}
    secrets = {recorded[n].secret_id for n in loaded}
    return old.patched(names, loaded, secrets, driver.sas_of(ns, sorted(names)))


def reread(driver: Driver, ns: str, whole: bool, old: LiveState, recorded: Mapping,
           acted: set[str]) -> LiveState:
    """The namespace's live state once the connections `acted` moved. A
    look that read only part of it, with few names, asks only what moved
    and patches it into `old`, the view the last full look made: the
    others' SAs are as they were."""
    if not whole and not one_read_pays(len(acted), len(recorded)):
        return patched(driver, ns, old, recorded, acted)
    return driver.live_state(ns, start=False)
