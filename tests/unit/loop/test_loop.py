"""The daemon's loop over the work queue, with a recording driver and an
injected clock: an exception stays with its key, and a slow key yields to
the others once it is over its budget."""
from __future__ import annotations

import json


from lab.fakes import Clock

from lab.fakes import RecordingDriver, service_file
from vpnd.apply import applier as apply_mod
from vpnd.loop import workers as workers_mod
from vpnd.base.config import CharonConfig, Config
from vpnd.loop.daemon import Daemon, ns_key
from vpnd.drivers.base import Driver
from vpnd.base.live import LiveState
from vpnd.base.conns import AppliedConn
from vpnd.plan.actions import LoadConn
from vpnd.loop.reconciler import Reconciler


def make(tmp_path, driver, clock, workers=4):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    rec = Reconciler(config, driver, namespace_exists=lambda ns: True, clock=clock)
    return state, Daemon(config, rec, clock=clock, workers=workers)


class BrokenIn(RecordingDriver):
    def __init__(self, broken):
        super().__init__()
        self.broken = broken

    def live_state(self, namespace, start=True):
        if namespace == self.broken:
            raise RuntimeError("a bug met only here")
        return super().live_state(namespace, start)


def test_an_exception_in_one_key_stays_there(tmp_path, logs):
    clock = Clock()
    state, d = make(tmp_path, BrokenIn("qr-bad"), clock)
    service_file(state, "qr-bad", 2)
    service_file(state, "qr-good", 2)
    d._everything(urgent=True)
    d._round("start")
    # The good namespace was applied in full ...
    assert [c for c in d.reconciler.driver.calls if c[0] == "load"] == [("load", "qr-good")] * 2
    # ... the bad one says why, in status and in the log with its traceback,
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    bad = next(s for s in status["services"] if s["namespace"] == "qr-bad")
    reason = "vpnd failed on qr-bad: RuntimeError: a bug met only here"
    assert all(c["reason"] == reason for c in bad["ipsec_site_connections"].values())
    assert status["errors"] == [reason]
    failed = [json.loads(line) for line in logs.getvalue().splitlines()
              if '"key failed"' in line]
    assert len(failed) == 1 and "Traceback" in failed[0]["exception"]
    # ... and it is retried with back-off, not dropped.
    assert d.queue.failing() == {ns_key("qr-bad"): reason}
    assert d.queue.next_due() == clock.now + 1


class Slow(RecordingDriver):
    """Each load-conn takes a second of the injected clock; a batch is
    worked action by action (the driver's plain apply_many)."""

    apply_many = Driver.apply_many

    def __init__(self, clock, loaded):
        super().__init__()
        self.clock, self.loaded = clock, loaded

    def live_state(self, namespace, start=True):
        super().live_state(namespace, start)
        names = self.loaded.get(namespace, ())
        return LiveState(frozenset(names), frozenset(f"vpnd-{n}" for n in names), ())

    def execute(self, namespace, action):
        super().execute(namespace, action)
        if isinstance(action, LoadConn):
            self.clock.now += 1.0


def test_a_key_over_its_budget_lets_the_others_run_before_it_goes_on(tmp_path, monkeypatch, logs):
    """A batch is pipelined in chunks; the budget is looked at between two."""
    monkeypatch.setattr(workers_mod, "KEY_BUDGET", 2.0)
    monkeypatch.setattr(apply_mod, "PIPELINE_STEPS", 1)
    clock = Clock()
    driver = Slow(clock, {"qr-slow": ["c0", "c1", "c2"]})
    state, d = make(tmp_path, driver, clock, workers=1)  # one at a time: the order shows
    service_file(state, "qr-slow", 3)
    service_file(state, "qr-other", 1)
    # What the slow namespace has loaded is on record with an older
    # configuration: each of its three is changed, one step at a time.
    for i in range(3):
        d.reconciler.record.set("qr-slow", f"c{i}", AppliedConn(
            f"c{i}", "svc-qr-slow", str(state / "qr-slow.json"), "old", f"vpnd-c{i}"))
    d._everything(urgent=True)
    d._round("start")
    order = [(c[1], c[2]) for c in driver.calls
             if c[0] == "execute" and c[2].startswith("load-conn")]
    assert order == [("qr-slow", "load-conn c0"), ("qr-slow", "load-conn c1"),
                     ("qr-other", "load-conn c0"), ("qr-slow", "load-conn c2")]
    assert d.queue.failing() == {}
