"""SA upkeep's timing: duplicates ended only after the grace period,
connections without an SA initiated again with back-off."""
from __future__ import annotations

import pytest

from vpnd import upkeep
from vpnd.errors import DriverError
from vpnd.live import IkeSa, LiveState
from vpnd.plan import Initiate, TerminateDuplicate
from vpnd.upkeep import DUPLICATE_GRACE, REINITIATE_FIRST, REINITIATE_MAX, SaUpkeep

NS = "qrouter-1"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Driver:
    def __init__(self, fail=False):
        self.sent = []
        self.fail = fail

    def execute(self, ns, action):
        self.sent.append((ns, action))
        if self.fail:
            raise DriverError("charon said no")


class Log:
    def __init__(self):
        self.lines = []

    def info(self, event, **kw):
        self.lines.append(("info", event, kw))

    def warning(self, event, **kw):
        self.lines.append(("warning", event, kw))


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(upkeep.time, "monotonic", c)
    return c


def sa(uid, spi_i, spi_r, name="c1", state="ESTABLISHED", age=0):
    return IkeSa(name, uid, state, (), spi_i=spi_i, spi_r=spi_r, age=age)


def live(*sas, conns=("c1",)):
    return LiveState(frozenset(conns), frozenset(), tuple(sas))


def test_a_duplicate_is_ended_only_once_it_has_lasted_the_grace_period(clock):
    driver = Driver()
    keeper = SaUpkeep(driver, Log())
    racing = live(sa("1", "bb", "01"), sa("2", "aa", "02"))
    assert keeper.tend(NS, racing, ["c1"], set(), {}) is False
    assert driver.sent == [] and keeper.due() == {NS: clock.now + DUPLICATE_GRACE}
    clock.now += DUPLICATE_GRACE - 0.1
    assert keeper.tend(NS, racing, ["c1"], set(), {}) is False
    clock.now += 0.1
    assert keeper.tend(NS, racing, ["c1"], set(), {}) is True
    # The lower SPIs are kept, as the peer's vpnd keeps them.
    assert driver.sent == [(NS, TerminateDuplicate("c1", "ike", "1"))]
    assert keeper.due() == {}


def test_a_duplicate_that_resolves_itself_in_the_grace_period_is_left_alone(clock):
    driver = Driver()
    keeper = SaUpkeep(driver, Log())
    keeper.tend(NS, live(sa("1", "bb", "01"), sa("2", "aa", "02")), ["c1"], set(), {})
    clock.now += DUPLICATE_GRACE
    assert keeper.tend(NS, live(sa("2", "aa", "02")), ["c1"], set(), {}) is False
    assert driver.sent == [] and keeper.due() == {}


def test_a_bi_directional_connection_without_sa_is_initiated_with_back_off(clock):
    driver = Driver()
    keeper = SaUpkeep(driver, Log())
    initiators, children = {(NS, "c1")}, {(NS, "c1"): ("c1-a", "c1-b")}
    empty = live()
    assert keeper.tend(NS, empty, ["c1"], initiators, children) is False
    assert keeper.due() == {NS: clock.now + REINITIATE_FIRST}
    sent_at = []
    for _ in range(8):
        clock.now = keeper.due()[NS]
        assert keeper.tend(NS, empty, ["c1"], initiators, children) is True
        sent_at.append(clock.now)
    assert driver.sent[0] == (NS, Initiate("c1", ("c1-a", "c1-b")))
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert gaps[:3] == [2 * REINITIATE_FIRST, 4 * REINITIATE_FIRST, 8 * REINITIATE_FIRST]
    assert max(gaps) == REINITIATE_MAX
    # An SA appears: the schedule is dropped, and starts afresh next time.
    assert keeper.tend(NS, live(sa("1", "aa", "01")), ["c1"], initiators, children) is False
    assert keeper.due() == {}


def test_response_only_and_connections_not_loaded_are_never_initiated(clock):
    driver = Driver()
    keeper = SaUpkeep(driver, Log())
    for _ in range(3):
        keeper.tend(NS, live(), ["c1"], {(NS, "c2")}, {})
        clock.now += REINITIATE_MAX
    assert driver.sent == [] and keeper.due() == {}


def test_a_failed_initiate_is_logged_and_backed_off_like_a_sent_one(clock):
    driver, log = Driver(fail=True), Log()
    keeper = SaUpkeep(driver, log)
    keeper.tend(NS, live(), ["c1"], {(NS, "c1")}, {})
    clock.now += REINITIATE_FIRST
    assert keeper.tend(NS, live(), ["c1"], {(NS, "c1")}, {}) is False
    assert ("warning", "initiate failed",
            {"netns": NS, "connection": "c1", "error": "charon said no"}) in log.lines
    assert keeper.due() == {NS: clock.now + 2 * REINITIATE_FIRST}
