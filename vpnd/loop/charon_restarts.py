"""Restarting a charon that stops answering.

A charon vpnd runs that has missed every call's deadline for
`restart_unanswering_after` seconds is killed, to be started afresh by
the next look. Separate from the checks on what a charon can do
(charon_checks.py): this one acts, it does not only report.
"""
from __future__ import annotations

import time

from vpnd.base.errors import CharonNotAnswering, DriverUnavailable
from vpnd.drivers.base import Driver
from vpnd.observe.observed import Observed


class UnansweringCharons:
    def __init__(self, driver: Driver, observed: Observed, log, clock=time.monotonic,
                 restart_after: float = 30.0):
        self.driver = driver
        self.observed = observed
        self.log = log
        self.clock = clock
        self.restart_after = restart_after
        self._not_answering: dict[str, float] = {}  # namespace -> since when

    def restart_if_wedged(self, ns: str, e: DriverUnavailable) -> bool:
        """Book that the namespace's charon could not be used (`e`); kill
        it if it has not answered for restart_after seconds. Returns
        whether it is past that (restarted, if the driver runs it): the
        next look then starts one."""
        if not isinstance(e, CharonNotAnswering):
            self._not_answering.pop(ns, None)
            return False
        since = self._not_answering.setdefault(ns, self.clock())
        if self.clock() - since < self.restart_after:
            return False
        if self.driver.restart(ns):
            self.log.warning("charon restarted", reason="not answering",
                             seconds=round(self.clock() - since, 1))
            self.observed.restarted(ns)
            del self._not_answering[ns]
            self.observed.drop_view(ns)  # the next look starts one
        return True

    def answered(self, ns: str) -> None:
        self._not_answering.pop(ns, None)
