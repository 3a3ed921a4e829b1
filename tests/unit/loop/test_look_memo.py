"""What a full look keeps from the last one (look_memo): reused while
its inputs stand, made again as soon as one moves. Each test moves one
input (a file, the record, charon, the addresses, charon's algorithms)
and checks the next full look sees it."""
from __future__ import annotations

import json

from lab.factory import connection_doc, service_doc
from lab.fakes import HoldingDriver
from vpnd.base.config import CharonConfig, Config
from vpnd.loop import looks, namespace_reads
from vpnd.loop.look_memo import LookMemo
from vpnd.loop.reconciler import Reconciler
from vpnd.loop.workers import Workers
from vpnd.loop.workqueue import WorkQueue

NS = "qr-memo"


class StandIn(HoldingDriver):
    """charon's loaded state, kept as the actions leave it; what it cannot
    negotiate is set by the test; the driver's reads are counted."""

    def __init__(self):
        super().__init__()
        self.cannot: str | None = None
        self.asked = {"unsupported": 0, "configure": 0}

    def unsupported(self, namespace, conn):
        self.asked["unsupported"] += 1
        return self.cannot

    def configure(self, namespace, conns):
        self.asked["configure"] += 1



def files(state, n: int, peer_cidr: str = "198.51.100.0/24") -> None:
    """n one-connection files sharing their policies, as agents write them."""
    for i in range(n):
        conn = connection_doc(f"c{i}", f"memo-psk-{i}", peer_address=f"203.0.113.{i + 10}",
                              peer_id=f"203.0.113.{i + 10}",
                              peer_cidrs=[peer_cidr if i == 0 else f"198.51.100.{i}/32"])
        path = state / f"s{i}.json"
        path.write_text(json.dumps(service_doc(f"s{i}", [conn], namespace=NS,
                                               external_ip="203.0.113.1")))
        path.chmod(0o600)


def make(tmp_path, n=5):
    state = tmp_path / "state"
    state.mkdir()
    files(state, n)
    config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    driver = StandIn()
    Reconciler(config, driver, namespace_exists=lambda ns: True).reconcile()
    # Restarted: its first look finds everything applied (what it keeps
    # is then made from a whole record, not an empty one).
    rec = Reconciler(config, driver, namespace_exists=lambda ns: True)
    rec.reconcile()
    return state, rec, driver


def acted(rec):
    """The steps with actions of one full look at NS."""
    steps, _ = rec.reconcile_namespace(NS)
    return [(s.name, s.reason) for s in steps if s.actions]


def addresses(monkeypatch, *present):
    monkeypatch.setattr(namespace_reads.addresses, "read", lambda ns: frozenset(present))


def test_a_result_stands_while_its_inputs_do_and_is_made_again_when_one_moves():
    memo, made = LookMemo(), []

    def make(value):
        made.append(value)
        return value

    desired = {"c1": object()}
    assert memo.get("ns", "x", (1, desired, frozenset({"a"})), lambda: make("one")) == "one"
    assert memo.get("ns", "x", (1, desired, frozenset({"a"})), lambda: make("two")) == "one"
    assert memo.get("ns", "x", (2, desired, frozenset({"a"})), lambda: make("three")) == "three"
    # An equal dict is not the same object: its values may be other objects.
    assert memo.get("ns", "x", (2, dict(desired), frozenset({"a"})),
                    lambda: make("four")) == "four"
    assert memo.get("ns", "y", (2,), lambda: make("five")) == "five"  # one result per what
    memo.forget("ns")
    assert memo.get("ns", "y", (2,), lambda: make("six")) == "six"
    assert made == ["one", "three", "four", "five", "six"]


def test_a_resync_that_finds_nothing_moved_walks_no_connection_again(tmp_path, monkeypatch):
    addresses(monkeypatch, "203.0.113.1")
    state, rec, driver = make(tmp_path)
    assert acted(rec) == []
    walked = []
    monkeypatch.setattr(looks, "settled", lambda d, a: walked.append(len(d)) or None)
    asked = driver.asked["unsupported"]
    rec.read_files()
    assert acted(rec) == [] and acted(rec) == []
    assert walked == []  # the plan's per-connection check: kept
    assert driver.asked["unsupported"] == asked + 2  # once a look for the one policy pair
    assert driver.asked["configure"] >= 3  # charon's settings are still checked each look


def test_a_file_that_changed_is_planned_at_the_next_full_look(tmp_path, monkeypatch):
    addresses(monkeypatch, "203.0.113.1")
    state, rec, driver = make(tmp_path)
    acted(rec)
    doc = json.loads((state / "s0.json").read_text())
    doc["ipsec_site_connections"][0]["peer_cidrs"] = ["198.51.100.128/25"]
    (state / "s0.json").write_text(json.dumps(doc))
    rec.read_files()
    assert acted(rec) == [("c0", "changed")]
    assert acted(rec) == []


def test_what_charon_lost_is_loaded_again_though_no_file_moved(tmp_path, monkeypatch):
    addresses(monkeypatch, "203.0.113.1")
    state, rec, driver = make(tmp_path)
    acted(rec)
    driver.conns.discard("c3")
    assert acted(rec) == [("c3", "reload")]
    driver.shared.discard("vpnd-c2")
    driver.shared = {s for s in driver.shared if "c2" not in s}
    assert acted(rec) == [("c2", "reload")]


def test_a_record_that_moved_is_planned_against(tmp_path, monkeypatch):
    addresses(monkeypatch, "203.0.113.1")
    state, rec, driver = make(tmp_path)
    acted(rec)
    rec.record.set(NS, "c1", None)  # as if its change was never recorded
    assert acted(rec) == [("c1", "adopt")]
    assert acted(rec) == []


def test_standby_follows_the_addresses_read_at_each_look(tmp_path, monkeypatch):
    addresses(monkeypatch, "203.0.113.1")
    state, rec, driver = make(tmp_path, n=2)
    acted(rec)
    assert rec.observed.standby.get(NS, {}) == {}
    addresses(monkeypatch, "203.0.113.99")  # the VIP went to another node
    acted(rec)
    assert set(rec.observed.standby[NS]) == {"c0", "c1"}
    addresses(monkeypatch, "203.0.113.1", "203.0.113.99")
    acted(rec)
    assert rec.observed.standby.get(NS, {}) == {}


def test_what_charon_can_negotiate_is_asked_again_at_each_look(tmp_path, monkeypatch):
    addresses(monkeypatch, "203.0.113.1")
    state, rec, driver = make(tmp_path, n=3)
    acted(rec)
    driver.cannot = "charon cannot do ikepolicy.pfs group14"  # a charon of other plugins
    acted(rec)
    errors = {k for k in rec.observed.capability_errors if k[0] == NS}
    assert errors == {(NS, "c0"), (NS, "c1"), (NS, "c2")}
    driver.cannot = None
    acted(rec)
    assert not [k for k in rec.observed.capability_errors if k[0] == NS]


def test_a_namespace_no_file_names_any_more_keeps_nothing_here(tmp_path):
    """Its connections (PSKs among them) go with it, at the next read of
    the files once its look has unloaded them (a resync at the latest)."""
    state, rec, _ = make(tmp_path)
    workers = Workers(rec, WorkQueue())
    workers._files(None)
    assert any(k[0] == NS for k in rec.memo._held) and rec.checks._memo._held
    for path in state.glob("*.json"):
        path.unlink()
    _, changed = rec.read_files()
    rec.reconcile_namespace(NS, scope=changed)
    assert rec.namespaces() == set()
    workers._files(None)
    assert rec.memo._held == {} and rec.checks._memo._held == {}
    workers.close()
