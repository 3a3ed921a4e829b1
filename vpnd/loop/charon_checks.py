"""Whether a namespace's charon fits what vpnd asks of it: the plugins it
loaded, the algorithms it can negotiate, its settings, and whether it
answers at all (one that stops answering is restarted). Problems go to
observed state (a charon's once, logged when they change; a connection's
as its ERROR reason)."""
from __future__ import annotations

import time

from vpnd.drivers.base import Driver
from vpnd.base.errors import CharonNotAnswering, DriverError, DriverUnavailable
from vpnd.observe.observed import Observed


def unreachable(e: DriverUnavailable) -> str:
    """The status reason for a charon that cannot be used right now."""
    if isinstance(e, CharonNotAnswering):
        return f"charon not answering: {e}"
    return f"charon not running: {e}"


class CharonChecks:
    def __init__(self, driver: Driver, observed: Observed, log, clock=time.monotonic,
                 restart_after: float = 30.0):
        self.driver = driver
        self.observed = observed
        self.log = log
        self.clock = clock
        self.restart_after = restart_after
        self._not_answering: dict[str, float] = {}  # namespace -> since when

    def recover(self, ns: str, e: DriverUnavailable) -> float:
        """A charon vpnd runs that has missed every call's deadline for
        restart_unanswering_after seconds is killed, to be started afresh
        by the next look; returns the first back-off for the retry."""
        if not isinstance(e, CharonNotAnswering):
            self._not_answering.pop(ns, None)
            return 1.0
        since = self._not_answering.setdefault(ns, self.clock())
        if self.clock() - since < self.restart_after:
            return 1.0
        if self.driver.restart(ns):
            self.log.warning("charon restarted", reason="not answering",
                             seconds=round(self.clock() - since, 1))
            self.observed.restarted(ns)
            del self._not_answering[ns]
            self.observed.views.pop(ns, None)  # the next look starts one
        return 0.2

    def answered(self, ns: str) -> None:
        self._not_answering.pop(ns, None)


    def check(self, ns: str) -> None:
        """Whether the charon that answers is what vpnd asked for (its
        plugins); the driver asks once per VICI session."""
        try:
            problem = self.driver.charon_problem(ns)
        except DriverError as e:
            self.log.warning("cannot ask charon for its plugins", error=str(e))
            return
        self.note(ns, problem, "charon incomplete")

    def note(self, ns: str, problem: str | None, event: str) -> None:
        if self.observed.note_charon(ns, problem):
            if problem:
                self.log.error(event, netns=ns, error=problem)
            else:
                self.log.info("charon problem cleared", netns=ns)

    def drop_unsupported(self, ns: str, ns_desired: dict, whole: bool) -> dict:
        """Leave out connections that charon cannot negotiate (an ERROR with
        the reason) rather than load them to fail at every attempt."""
        found, kept = {}, dict(ns_desired)
        for conn in ns_desired.values():
            try:
                reason = self.driver.unsupported(ns, conn.model)
            except DriverError as e:
                self.log.warning("cannot ask charon for its algorithms", error=str(e))
                return kept
            if reason:
                found[(ns, conn.name)] = reason
                kept.pop(conn.name, None)
        self.observed.replace(self.observed.capability_errors, ns, found,
                              None if whole else set(ns_desired))
        return kept

    def configure(self, ns: str, models) -> None:
        """Daemon-wide settings that follow from the namespace's connections."""
        try:
            self.driver.configure(ns, models)
        except DriverUnavailable:
            raise
        except DriverError as e:
            # Old settings stay in force; connections can still be applied.
            self.log.warning("charon settings not applied", netns=ns, error=str(e))
