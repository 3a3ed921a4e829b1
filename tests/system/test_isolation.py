"""What vpnd must leave alone: other services, other owners' connections."""
from __future__ import annotations

import json
import signal

from conftest import connection, service, wait_converged
from vpnd.drivers.vici_client import ViciClient
from lab.testbed import wait_for

PSK4, PSK6 = "isolation-psk-v4-91a", "isolation-psk-v6-2be"


def two_services(lab, vpnd_factory):
    """svc4 (IPv4 in IPv4) and svc6 (IPv6 in IPv6) between the same gateways."""
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc4.json", service(f"svc4-{side}", me, [connection("c4", me, peer, PSK4)]))
        v.write("svc6.json", service(f"svc6-{side}", me,
                                     [connection("c6", me, peer, PSK6, v6=True)], v6=True))
        v.start()
    for v, side in ((a, "a"), (b, "b")):
        v.wait_conn(f"svc4-{side}", "c4"), v.wait_conn(f"svc6-{side}", "c6")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c4", "c6"])
    return a, b


def sa_ids(v, ns):
    return {sa.name: (sa.uniqueid, tuple(c.uniqueid for c in sa.children))
            for sa in v.vici(ns).live_state().sas}


def test_invalid_file_is_reported_and_nothing_running_is_lost(lab, vpnd_factory):
    a, b = two_services(lab, vpnd_factory)
    assert lab.ping(lab.a.host, lab.b.host6)
    before = sa_ids(a, lab.a.gw)

    bad = service("svc6-a", lab.a, [connection("c6", lab.a, lab.b, PSK6, v6=True)], v6=True)
    bad["ipsec_site_connections"][0]["ikepolicy"]["pfs"] = "group3"
    bad["ipsec_site_connections"][0]["mtu"] = 100
    a.write("svc6.json", bad)

    def reported():
        for s in a.status_document()["services"]:
            c6 = s["ipsec_site_connections"].get("c6", {})
            if s["file"].endswith("svc6.json") and c6.get("status") == "ERROR":
                return c6
    entry = wait_for(reported, 15, what="c6 in ERROR")
    # The bad values are c6's: c6 is ERROR, still running its last valid
    # version, with each problem and its JSON path.
    assert entry["reason"] == "invalid connection, still applying its last valid version"
    assert entry["applied_status"] == "ACTIVE", {k: v for k, v in entry.items() if k != "errors"}
    errors = "\n".join(entry["errors"])
    assert "svc6.json: $.ipsec_site_connections[0].ikepolicy.pfs: 'group3'" in errors
    assert "$.ipsec_site_connections[0].mtu: must be at least 1280 for IPv6" in errors
    # The broken service keeps its last valid tunnel; the other is untouched.
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    assert lab.ping(lab.a.host, lab.b.host6, count=2)
    assert sa_ids(a, lab.a.gw) == before
    log = a.log_path.read_text()
    assert "invalid connection" in log and "group3" in log

    # Even a vpnd restart (no last valid version in memory) keeps it up.
    a.stop()
    a.start()
    wait_for(lambda: a.cli("status").returncode == 0 and "svc4-a" in a.cli("status").stdout,
             15, what="status after restart")
    a.wait_conn("svc4-a", "c4")
    assert sa_ids(a, lab.a.gw) == before
    check = a.cli("check")
    assert check.returncode == 1 and "ikepolicy.pfs" in check.stdout
    for text in (a.log_path.read_text(), json.dumps(a.status_document()), check.stdout):
        assert PSK4 not in text and PSK6 not in text


def test_one_bad_connection_of_three_is_an_error_and_the_other_two_run(lab, vpnd_factory):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    good = connection("c1", lab.a, lab.b, PSK4)
    bad = connection("c2", lab.a, lab.b, PSK4, local_cidrs=["192.0.2.0/25"])
    bad["dpd_timeout"] = "soon"
    # A third to a benchmark peer that never answers: loaded, waiting.
    third = connection("c3", lab.a, lab.b, PSK4, initiator="response-only",
                       peer_address="198.18.0.9", peer_id="198.18.0.9",
                       peer_cidrs=["198.18.9.0/24"])
    a.write("svc.json", service("svc-a", lab.a, [good, bad, third]))
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK4)]))
    a.start(), b.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    a.wait_conn("svc-a", "c3", "DOWN", reason="waiting for the peer to initiate")
    entry = a.wait_conn("svc-a", "c2", "ERROR", reason="invalid connection")
    assert entry["errors"] == [f"{a.state_dir / 'svc.json'}: $.ipsec_site_connections[1]."
                               f"dpd_timeout: must be an integer, not a string"]
    assert set(a.vici(lab.a.gw).live_state().conns) == {"c1", "c3"}
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    check = a.cli("check")
    assert check.returncode == 1 and "[1].dpd_timeout" in check.stdout

    # A file invalid from its first version is reported under its ids.
    broken = service("svc-new", lab.a, [connection("n1", lab.a, lab.b, PSK4),
                                         connection("n2", lab.a, lab.b, PSK4)])
    broken["admin_state_up"] = "maybe"
    a.write("new.json", broken)

    def by_id():
        return next((s for s in a.status_document()["services"]
                     if s.get("id") == "svc-new"), None)
    entry = wait_for(by_id, 10, what="svc-new in status")
    assert (entry["status"], entry["reason"]) == ("ERROR", "invalid file")
    assert set(entry["ipsec_site_connections"]) == {"n1", "n2"}
    assert all(c["status"] == "ERROR" for c in entry["ipsec_site_connections"].values())


def test_a_change_to_one_file_touches_only_its_service(lab, vpnd_factory):
    a, b = two_services(lab, vpnd_factory)
    before = sa_ids(a, lab.a.gw)
    log_offset = len(a.log_path.read_text())
    new_psk = "isolation-psk-v4-rotated"
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc4.json", service(f"svc4-{side}", me, [connection("c4", me, peer, new_psk)]))
    wait_for(lambda: sa_ids(a, lab.a.gw).get("c4") not in (None, before["c4"]), 30,
             what="c4 re-established")
    a.wait_conn("svc4-a", "c4")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c4", "c6"])
    after = sa_ids(a, lab.a.gw)
    assert after["c6"] == before["c6"]  # same IKE_SA and CHILD_SA ids
    assert lab.ping(lab.a.host, lab.b.host6, count=2)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    # Every change vpnd applied since was to c4.
    applied = [json.loads(line) for line in a.log_path.read_text()[log_offset:].splitlines()
               if '"change applied"' in line]
    assert [(e["connection"], e["reason"]) for e in applied] == [("c4", "changed")]


def test_connection_loaded_by_someone_else_survives_every_reconcile(lab, vpnd_factory):
    a, b = two_services(lab, vpnd_factory)
    ns = lab.a.gw
    foreign = ViciClient(a.socket(ns))
    foreign.load_shared({"id": "ops-key", "type": "IKE", "data": "ops-secret-1234",
                         "owners": ["198.18.0.1"]})
    foreign.load_conn({"ops-conn": {
        "version": "2", "remote_addrs": ["198.18.0.1"],
        "local": {"auth": "psk"}, "remote": {"auth": "psk", "id": "198.18.0.1"},
        "children": {"ops-conn": {"local_ts": ["192.0.2.128/25"],
                                  "remote_ts": ["198.18.1.0/24"],
                                  "start_action": "none"}}}})
    foreign.close()

    def foreign_intact():
        live = a.vici(ns).live_state()
        return "ops-conn" in live.conns and "ops-key" in live.shared

    passes = a.reconcile_passes()
    a.signal(signal.SIGHUP)
    wait_for(lambda: a.reconcile_passes() > passes, 15, what="resync")
    assert foreign_intact()
    # A changed service, a removed service: vpnd unloads only its own.
    a.write("svc4.json", service("svc4-a", lab.a,
                                 [connection("c4", lab.a, lab.b, PSK4, mtu=1400)]))
    a.remove("svc6.json")
    wait_for(lambda: "c6" not in a.vici(ns).live_state().conns, 15, what="c6 unloaded")
    a.wait_conn("svc4-a", "c4")
    assert foreign_intact()
    plan = a.cli("plan", "--json")
    assert plan.returncode == 0 and json.loads(plan.stdout) == []


def test_plan_shows_pending_changes_without_applying_them(lab, vpnd_factory):
    a = vpnd_factory("a")
    a.write("svc4.json", service("svc4-a", lab.a, [connection("c4", lab.a, lab.b, PSK4)]))
    result = a.cli("plan", "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    steps = json.loads(result.stdout)
    assert [s["connection"] for s in steps] == ["c4"]
    assert steps[0]["actions"] == ["load-shared vpnd-c4", "load-conn c4"]
    assert PSK4 not in result.stdout + result.stderr
    # Nothing was started or loaded.
    assert not (a.run_dir / "charon").exists()
