"""The order in which a pass talks to the driver: when it starts listening
to charon's events relative to the loads, and that charons of several
namespaces are started before any is waited for. A recording driver
stands in for charon; what it records is the order of calls."""
from __future__ import annotations


import pytest

from lab.fakes import RecordingDriver, service_file
from vpnd.base.config import CharonConfig, Config
from vpnd.loop.reconciler import Reconciler
from vpnd.loop.subscribing import EVENTS_BEFORE_LOADS_MAX


@pytest.fixture
def make(tmp_path):
    state = tmp_path / "state"
    state.mkdir()

    def reconciler():
        config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                        data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
        driver = RecordingDriver()
        return Reconciler(config, driver, namespace_exists=lambda ns: True), driver
    return state, reconciler


def kinds(calls, namespace):
    return [c[0] for c in calls if c[1] == namespace and c[0] in ("watch", "load")]


def test_a_small_first_load_is_listened_to_from_before_it(make):
    state, reconciler = make
    service_file(state, "qr-small", EVENTS_BEFORE_LOADS_MAX)
    rec, driver = reconciler()
    rec.reconcile()
    order = kinds(driver.calls, "qr-small")
    assert order[0] == "watch" and order.count("load") == EVENTS_BEFORE_LOADS_MAX


@pytest.mark.parametrize("initiator, waits", [("bi-directional", True),
                                              ("response-only", False)])
def test_only_loads_that_initiate_wait_for_the_subscription(make, initiator, waits):
    """They initiate as they load: their first outcome (a wrong PSK, say)
    comes within round trips, before a subscription still under way."""
    state, reconciler = make
    service_file(state, "qr-init", 2, initiator)
    rec, driver = reconciler()
    rec.reconcile()
    first_watch = next(c for c in driver.calls if c[0] == "watch")
    assert (first_watch[2] > 0) is waits


def test_a_large_first_load_is_listened_to_only_after_it(make):
    state, reconciler = make
    service_file(state, "qr-large", EVENTS_BEFORE_LOADS_MAX + 1)
    rec, driver = reconciler()
    rec.reconcile()
    order = kinds(driver.calls, "qr-large")
    assert order == ["load"] * (EVENTS_BEFORE_LOADS_MAX + 1) + ["watch"]


def test_charons_of_a_pass_are_all_started_before_any_is_waited_for(make):
    state, reconciler = make
    for ns in ("qr-1", "qr-2", "qr-3"):
        service_file(state, ns, 2)
    rec, driver = reconciler()
    rec.reconcile()
    steps = [c[:2] for c in driver.calls if c[0] in ("configure", "start", "wait-started")]
    # Settings first (a charon reads them at start), then launch; waits last.
    assert steps[:6] == [("configure", "qr-1"), ("start", "qr-1"), ("configure", "qr-2"),
                         ("start", "qr-2"), ("configure", "qr-3"), ("start", "qr-3")]
    assert [c for c in steps[6:] if c[0] == "wait-started"] == [
        ("wait-started", "qr-1"), ("wait-started", "qr-2"), ("wait-started", "qr-3")]
