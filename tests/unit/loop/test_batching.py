"""Bursts are batches: many changes in one namespace are one look, with
one read of charon's state before and after and the writes pipelined in
plan order; a single change keeps its few round trips. A stand-in driver
keeps charon's loaded state and records every call."""
from __future__ import annotations

import json

import pytest

from lab.factory import connection_doc, service_doc
from lab.fakes import HoldingDriver, RecordingDriver, service_file
from vpnd.loop import workers as workers_mod
from vpnd.base.config import CharonConfig, Config
from vpnd.loop.daemon import Daemon
from vpnd.loop.live_reads import one_read_pays
from vpnd.loop.reconciler import Reconciler
from vpnd.loop.subscribing import EVENTS_BEFORE_LOADS_MAX
from vpnd.loop.workers import FILES, ns_key

NS = "qr-burst"


class CharonStandIn(HoldingDriver):
    """Keeps charon's loaded state and records every call."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def live_state(self, namespace, start=True):
        self.calls.append(("live_state",))
        return super().live_state(namespace, start)

    def sas_of(self, namespace, names):
        self.calls.append(("sas_of", tuple(names)))
        return ()

    def execute(self, namespace, action):
        self.calls.append(("execute", action.describe()))
        self.hold(action)

    def apply_many(self, namespace, steps):
        self.calls.append(("apply_many", [a.describe() for s in steps for a in s.actions]))
        for step in steps:
            for action in step.actions:
                self.hold(action)
            yield None

    def mute_log(self, namespace, muted):
        self.calls.append(("mute_log", muted))


def write_files(state, n: int, lifetime: int = 3600) -> list[str]:
    """n one-connection files sharing one ikepolicy, as an agent writes them."""
    paths = []
    for i in range(n):
        conn = connection_doc(f"c{i}", f"psk-{i}-xyz", peer_address=f"198.19.0.{i + 1}",
                              peer_id=f"198.19.0.{i + 1}", local_cidrs=["198.18.1.0/24"],
                              peer_cidrs=[f"198.19.1.{i + 1}/32"], initiator="response-only",
                              ikepolicy={"lifetime": {"units": "seconds", "value": lifetime}})
        path = state / f"s{i}.json"
        path.write_text(json.dumps(service_doc(f"s{i}", [conn], namespace=NS,
                                               external_ip="198.18.0.1")))
        path.chmod(0o600)
        paths.append(str(path))
    return paths


@pytest.fixture
def loaded(tmp_path):
    """A reconciler whose 60 connections are loaded, and its stand-in."""
    state = tmp_path / "state"
    state.mkdir()
    config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    driver = CharonStandIn()
    rec = Reconciler(config, driver, namespace_exists=lambda ns: True)
    write_files(state, 60)
    rec.reconcile()
    assert len(driver.conns) == 60
    driver.calls.clear()
    return state, rec, driver


def look(rec, paths):
    """What the loop does for the files inotify named: read, then one look."""
    touched, changed = rec.read_files(set(paths))
    assert touched == {NS}
    steps, _ = rec.reconcile_namespace(NS, scope=changed)
    return steps


def test_a_shared_policy_change_is_one_look_one_read_each_way_one_pipeline(loaded):
    state, rec, driver = loaded
    steps = look(rec, write_files(state, 60, lifetime=7200))
    assert [s.reason for s in steps] == ["changed"] * 60
    kinds = [c[0] for c in driver.calls]
    assert kinds == ["live_state", "apply_many", "live_state"]
    [sent] = [c[1] for c in driver.calls if c[0] == "apply_many"]
    # Break before make for each; the PSK is as charon holds it: not loaded again.
    assert sent == [a for s in sorted(steps, key=lambda s: s.name)
                    for a in (f"unload-conn {s.name}", f"load-conn {s.name}")]
    assert len(driver.conns) == 60
    # And what it applied is the record: the next look changes nothing.
    driver.calls.clear()
    steps, _ = rec.reconcile_namespace(NS)
    assert [s for s in steps if s.actions] == [] and \
        [c[0] for c in driver.calls if c[0] != "live_state"] == []


def test_charon_s_log_events_are_muted_for_a_large_batch_only(loaded):
    state, rec, driver = loaded
    look(rec, write_files(state, 60, lifetime=7200))  # 60: not large
    assert ("mute_log", True) not in driver.calls
    driver.calls.clear()
    look(rec, write_files(state, EVENTS_BEFORE_LOADS_MAX + 1, lifetime=5400))
    assert [c[0] if c[0] != "mute_log" else c for c in driver.calls] == [
        "live_state", ("mute_log", True), "apply_many", ("mute_log", False), "live_state"]


def test_one_change_keeps_its_own_few_round_trips(loaded):
    state, rec, driver = loaded
    paths = write_files(state, 60, lifetime=7200)
    steps = look(rec, [paths[7]])
    assert [(s.name, s.reason) for s in steps] == [("c7", "changed")]
    assert driver.calls == [("sas_of", ("c7",)), ("execute", "unload-conn c7"),
                            ("execute", "load-conn c7"), ("sas_of", ("c7",))]


@pytest.mark.parametrize("names, loaded, pays", [
    (1, 100, False), (3, 100, False), (4, 100, True), (4, 10_000, False),
    (99, 10_000, False), (100, 10_000, True), (10_000, 10_000, True)])
def test_one_whole_read_pays_past_a_share_of_what_is_loaded(names, loaded, pays):
    assert one_read_pays(names, loaded) is pays


def test_a_flood_of_files_is_read_in_passes_with_looks_between(tmp_path, monkeypatch):
    """The loop reads a bounded number of the files inotify named at a
    time: the namespace's look starts while the rest wait, and another
    namespace's change waits for one pass at most."""
    monkeypatch.setattr(workers_mod, "FILES_PER_PASS", 10)
    state = tmp_path / "state"
    state.mkdir()
    config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    driver = CharonStandIn()
    daemon = Daemon(config, Reconciler(config, driver, namespace_exists=lambda ns: True),
                    workers=1)
    daemon._round("start")  # nothing there yet
    paths = write_files(state, 35)
    daemon.queue.add(FILES, scope=paths, urgent=True)
    daemon.workers.dispatch()
    assert len(daemon.reconciler.desired_state.services) == 10
    assert ns_key(NS) in daemon.workers.running and FILES in daemon.queue.due()
    daemon.workers.work_until_idle()
    assert len(daemon.reconciler.desired_state.services) == 35 and len(driver.conns) == 35
    daemon.workers.close()


def daemon_state_files(state) -> list[str]:
    return sorted(str(p) for p in state.glob("*.json"))


def _daemon(tmp_path, driver):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    return state, Daemon(config, Reconciler(config, driver, namespace_exists=lambda ns: True),
                         workers=1)


class CountingStandIn(CharonStandIn):
    """Notes how many services were read when each batch was applied."""

    def __init__(self):
        super().__init__()
        self.read_at_apply: list[int] = []
        self.daemon = None

    def apply_many(self, namespace, steps):
        self.read_at_apply.append(len(self.daemon.reconciler.desired_state.services))
        return super().apply_many(namespace, steps)


def test_a_start_of_many_files_reads_them_in_passes_with_looks_between(tmp_path, monkeypatch):
    """charon loads the first connections while the rest are still read."""
    monkeypatch.setattr(workers_mod, "FILES_PER_PASS", 10)
    monkeypatch.setattr(workers_mod, "PASS_LOOK_MIN", 10)
    driver = CountingStandIn()
    state, daemon = _daemon(tmp_path, driver)
    driver.daemon = daemon
    write_files(state, 35)
    daemon._first_round()
    assert driver.read_at_apply[0] < 35  # the first batch went out before the last pass
    assert len(driver.conns) == 35 and len(daemon.reconciler.desired_state.services) == 35
    daemon.workers.close()


def test_a_restart_in_passes_removes_nothing_until_every_file_is_read(tmp_path, monkeypatch):
    """At a restart the record holds every connection: a look before the
    last pass must not take the files not read yet for gone. The one file
    removed while vpnd was down goes, at the full look after the passes."""
    monkeypatch.setattr(workers_mod, "FILES_PER_PASS", 10)
    monkeypatch.setattr(workers_mod, "PASS_LOOK_MIN", 10)
    driver = CharonStandIn()
    state, daemon = _daemon(tmp_path, driver)
    write_files(state, 35)
    daemon._first_round()
    daemon.workers.close()
    assert len(driver.conns) == 35
    (state / "s20.json").unlink()
    driver.calls.clear()
    _, again = _daemon(tmp_path, driver)
    again.workers.read_in_passes(daemon_state_files(state))
    # Nothing looked at between passes where vpnd applied before: what
    # runs there (charon's settings too) was made from all of its files.
    assert driver.calls == []
    again._everything(urgent=True)
    again._round("start")
    again.workers.close()
    unloads = [a for c in driver.calls if c[0] in ("apply_many", "execute")
               for a in (c[1] if c[0] == "apply_many" else [c[1]]) if a.startswith("unload")]
    assert sorted(unloads) == ["unload-conn c20", "unload-shared vpnd-c20"]
    assert driver.conns == {f"c{i}" for i in range(35)} - {"c20"}


def test_a_start_in_passes_looks_once_at_each_small_namespace(tmp_path, monkeypatch):
    """500 routers of two connections each: a look between passes would be
    repeated by the full look after them (a whole read again, the checks,
    standby, upkeep), so a namespace is looked at between passes only once
    it has PASS_LOOK_MIN connections read."""
    monkeypatch.setattr(workers_mod, "FILES_PER_PASS", 10)
    monkeypatch.setattr(workers_mod, "PASS_LOOK_MIN", 10)

    class Reads(RecordingDriver):
        def live_state(self, namespace, start=True):
            self.calls.append(("read", namespace))
            return super().live_state(namespace, start)
    driver = Reads()
    state, daemon = _daemon(tmp_path, driver)
    for i in range(30):
        service_file(state, f"qr-small{i:02d}", 2)
    service_file(state, "qr-big", 12)
    daemon._first_round()
    daemon.workers.close()
    reads = [c[1] for c in driver.calls if c[0] == "read"]
    # A small one: one look that applied (its read, and the read after);
    # the big one is looked at between passes too.
    assert {ns: reads.count(ns) for ns in set(reads) if ns != "qr-big"} == {
        f"qr-small{i:02d}": 2 for i in range(30)}
    assert reads.count("qr-big") > 2
