"""The core on real charons in real namespaces, with packets through the tunnel."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import connection, sa_shape, service, wait_converged
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.plan.upkeep import RACE_WINDOW
from lab.testbed import wait_for

PSK = "core-test-psk-8c1f"
WRITES = re.compile(r"requests: (load-|unload-|initiate|terminate)")


def both_sides(lab, vpnd_factory, psk=PSK, **conn_overrides):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, psk,
                                                            **conn_overrides)]))
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, psk,
                                                            **conn_overrides)]))
    a.start(), b.start()
    return a, b


def converged(lab, a, b):
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])


def ike_ids(v, ns, name="c1"):
    return sorted(sa.uniqueid for sa in v.vici(ns).live_state().sas if sa.name == name)


def test_tunnel_comes_up_and_passes_lan_traffic(lab, vpnd_factory):
    a, b = both_sides(lab, vpnd_factory)
    a.wait_conn("svc-a", "c1")
    b.wait_conn("svc-b", "c1")
    # Both ends initiate; whatever raced, one IKE_SA and one CHILD_SA remain.
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    assert lab.ping(lab.a.host, lab.b.host4, count=3)
    assert sa_shape(a, lab.a.gw) == sa_shape(b, lab.b.gw) == {"c1": (1, 1)}

    result = a.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report[0]["id"] == "svc-a" and report[0]["status"] == "ACTIVE"
    assert report[0]["ipsec_site_connections"]["c1"]["status"] == "ACTIVE"
    table = a.cli("status").stdout
    assert "svc-a" in table and "ACTIVE" in table

    plan = a.cli("plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    for text in (a.log_path.read_text(), result.stdout, table, plan.stdout,
                 (a.run_dir / "status.json").read_text()):
        assert PSK not in text


def test_psk_change_reestablishes_the_tunnel(lab, vpnd_factory):
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    before = ike_ids(a, lab.a.gw)

    new_psk = "rotated-psk-77ab"
    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, new_psk)]))
    # Only one side changed: the old SA must be gone and no new one can form.
    wait_for(lambda: ike_ids(a, lab.a.gw) != before, 30, what="old IKE_SA replaced")
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, new_psk)]))
    converged(lab, a, b)
    after = ike_ids(a, lab.a.gw)
    assert after and not set(after) & set(before)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    assert new_psk not in a.log_path.read_text()


def test_a_change_that_keeps_the_psk_loads_the_connection_alone(lab, vpnd_factory):
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    before = ike_ids(a, lab.a.gw)
    requests = len(re.findall(r"requests: load-shared", a.charon_log(lab.a.gw)))

    # A new IKE lifetime at both ends: the PSK and its owners stay.
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        conn = connection("c1", me, peer, PSK)
        conn["ikepolicy"]["lifetime_value"] = 3000
        v.write("svc.json", service(f"svc-{side}", me, [conn]))
    wait_for(lambda: [e for e in log_events(a, "change applied") if e["reason"] == "changed"],
             30, what="the change applied at gw-a")
    converged(lab, a, b)
    [change] = [e for e in log_events(a, "change applied") if e["reason"] == "changed"]
    assert change["actions"] == ["unload-conn c1", "terminate ike c1", "load-conn c1"]
    # charon was not asked to load the secret (its own log says so), still
    # holds it, and the new IKE_SA authenticated with it.
    assert len(re.findall(r"requests: load-shared", a.charon_log(lab.a.gw))) == requests
    assert "vpnd-c1" in a.vici(lab.a.gw).live_state().shared
    assert not set(ike_ids(a, lab.a.gw)) & set(before)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


def log_events(v, event: str) -> list[dict]:
    lines = (json.loads(line) for line in v.log_path.read_text().splitlines()
             if line.startswith("{"))
    return [line for line in lines if line.get("event") == event]


def test_deleted_file_takes_the_tunnel_down_and_traffic_stops(lab, vpnd_factory):
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    assert lab.ping(lab.a.host, lab.b.host4)

    a.remove("svc.json")
    def all_gone():
        live = a.vici(lab.a.gw).live_state()
        return not live.sas and "c1" not in live.conns and "vpnd-c1" not in live.shared
    wait_for(all_gone, 30, what="SAs, connection and secret gone on a")
    assert not lab.ping(lab.a.host, lab.b.host4, count=2)
    wait_for(lambda: a.status_document() and not a.status_document()["services"], 10,
             what="service gone from status")


def test_resync_without_changes_makes_no_vici_writes(lab, vpnd_factory):
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    ids = ike_ids(a, lab.a.gw)
    writes_in_log = len(WRITES.findall(a.charon_log(lab.a.gw)))
    writes_counted = a.status_document()["vici_writes"]
    passes = a.reconcile_passes()

    for i in range(1, 4):
        # One at a time: the kernel merges a signal sent while one is pending.
        a.signal(signal.SIGHUP)  # a full resync, now
        wait_for(lambda: a.reconcile_passes() >= passes + i, 30, what=f"resync {i}")
    # An unrelated file appearing and changing is a pass too.
    a.write("other.json", service("svc-x", lab.a, []))
    wait_for(lambda: any(s["id"] == "svc-x" for s in a.status_document()["services"]),
             10, what="other file seen")

    assert len(WRITES.findall(a.charon_log(lab.a.gw))) == writes_in_log
    assert a.status_document()["vici_writes"] == writes_counted
    assert ike_ids(a, lab.a.gw) == ids


def test_restarted_vpnd_adopts_running_tunnels_without_writes(lab, vpnd_factory):
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    ids = ike_ids(a, lab.a.gw)
    writes_in_log = len(WRITES.findall(a.charon_log(lab.a.gw)))
    passes = a.reconcile_passes()

    assert a.stop() == 0
    # SIGTERM leaves tunnels up.
    assert ike_ids(a, lab.a.gw) == ids
    assert lab.ping(lab.a.host, lab.b.host4)
    a.start()
    a.wait_conn("svc-a", "c1")
    wait_for(lambda: a.reconcile_passes() > passes, 10, what="first pass")
    assert ike_ids(a, lab.a.gw) == ids
    assert len(WRITES.findall(a.charon_log(lab.a.gw))) == writes_in_log


@pytest.mark.fault
def test_restarting_both_vpnds_under_traffic_loses_no_ping(lab, vpnd_factory, figure):
    """Spawn mode (test_systemd does the same with systemctl restart)."""
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    ids = ike_ids(a, lab.a.gw)
    pinger = subprocess.Popen(["ip", "netns", "exec", lab.a.host, "ping", "-n", "-i", "0.2",
                               "-c", "40", "-W", "1", lab.b.host4],
                              stdout=subprocess.PIPE, text=True)
    try:
        for v, svc in ((a, "svc-a"), (b, "svc-b")):
            passes = v.reconcile_passes()
            assert v.stop() == 0
            v.start()
            v.wait_conn(svc, "c1")
            wait_for(lambda: v.reconcile_passes() > passes, 30, what="a pass after the start")
        out, _ = pinger.communicate(timeout=60)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
    summary = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    sent, received = int(summary[1]), int(summary[2])
    figure("vpnd restart (both ends, spawn mode), pings at 5/s", f"{sent} sent, {sent - received} lost")
    assert (sent, received) == (40, 40), out
    assert ike_ids(a, lab.a.gw) == ids


@pytest.mark.fault
def test_a_charon_that_dies_is_restarted_and_reloaded(lab, vpnd_factory, figure):
    a, b = both_sides(lab, vpnd_factory)
    converged(lab, a, b)
    # Let the SAs age past the window in which two SAs count as racing
    # initiations rather than one stale and one new (upkeep.RACE_WINDOW).
    wait_for(lambda: all(sa.age > RACE_WINDOW for sa in b.vici(lab.b.gw).live_state().sas),
             RACE_WINDOW + 30, interval=0.5, what="SAs older than the race window")
    spawner = CharonSpawner(str(a.run_dir), True)
    old_pid = spawner.pid(lab.a.gw)
    os.kill(old_pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: spawner.pid(lab.a.gw) not in (None, old_pid), 30,
             what="a new charon in gw-a")
    a.wait_conn("svc-a", "c1", timeout=90)
    # b still held the SA the dead charon left; vpnd on b ends it as stale.
    converged(lab, a, b)
    figure("kill -9 of charon (vpnd at both ends): one SA at each end, held 1 s, after (s)",
           f"{time.monotonic() - t0:.1f}")
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    assert "charon lost" in a.log_path.read_text()
