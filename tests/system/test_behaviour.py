"""Every Neutron field does what it says, shown on the wire."""
from __future__ import annotations

import os
import re
import signal
import time

from conftest import connection, service, wait_converged
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.observe.reasons import AUTH_FAILED, NO_PROPOSAL, PEER_UNREACHABLE
from vpnd.plan.upkeep import REINITIATE_FIRST
from lab.testbed import in_ns, wait_for

PSK = "behaviour-psk-3e7"


def start_pair(lab, vpnd_factory, a_conn: dict | None = None, b_conn: dict | None = None,
               start_b=True):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side, overrides in ((a, lab.a, lab.b, "a", a_conn or {}),
                                         (b, lab.b, lab.a, "b", b_conn or {})):
        overrides = dict(overrides)
        psk = overrides.pop("psk", PSK)
        v.write("svc.json", service(f"svc-{side}", me,
                                    [connection("c1", me, peer, psk, **overrides)]))
    a.start()
    if start_b:
        b.start()
    return a, b


def initiations(v, ns) -> int:
    return len(re.findall(r"initiating (IKE_SA|Main Mode|Aggressive Mode)", v.charon_log(ns)))


def test_admin_state_down_takes_both_sides_down_and_up_brings_it_back(lab, vpnd_factory):
    a, b = start_pair(lab, vpnd_factory)
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    assert lab.ping(lab.a.host, lab.b.host4)

    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK,
                                                            admin_state_up=False)]))
    a.wait_conn("svc-a", "c1", "DOWN", reason="admin-down", timeout=15)
    b.wait_conn("svc-b", "c1", "DOWN", timeout=15)  # the peer sees it go
    live = a.vici(lab.a.gw).live_state()
    assert "c1" not in live.conns and "vpnd-c1" not in live.shared  # nothing half-loaded
    assert not lab.ping(lab.a.host, lab.b.host4, count=2)

    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)]))
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    assert wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 30, what="ping after admin up")

    # The service's own admin_state_up does the same for all its connections.
    down = service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)])
    down["admin_state_up"] = False
    a.write("svc.json", down)
    a.wait_conn("svc-a", "c1", "DOWN", reason="admin-down", timeout=15)
    entry = a.status_document()["services"][0]
    assert (entry["status"], entry["reason"]) == ("DOWN", "admin-down")


def test_response_only_never_initiates(lab, vpnd_factory):
    a, b = start_pair(lab, vpnd_factory, a_conn={"initiator": "response-only"}, start_b=False)
    a.wait_conn("svc-a", "c1", "DOWN", reason="waiting for the peer", timeout=15)
    b.start()  # bi-directional: it initiates
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    assert lab.ping(lab.a.host, lab.b.host4)

    b.cleanup()  # peer gone: its charon deletes the SA on the way out
    a.wait_conn("svc-a", "c1", "DOWN", timeout=15)
    # A negative needs a window: long enough for vpnd's re-initiation of a
    # bi-directional connection to have fired twice.
    window_end = time.monotonic() + 3 * REINITIATE_FIRST
    wait_for(lambda: time.monotonic() >= window_end, 4 * REINITIATE_FIRST,
             what="the observation window")
    assert initiations(a, lab.a.gw) == 0
    assert initiations(b, lab.b.gw) >= 1


def test_bidirectional_recovers_after_the_peer_charon_restarts(lab, vpnd_factory):
    fast_dpd = {"dpd_action": "restart", "dpd_interval": 2, "dpd_timeout": 10}
    a, b = start_pair(lab, vpnd_factory, a_conn=fast_dpd,
                      b_conn={**fast_dpd, "initiator": "response-only"})
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    spawner = CharonSpawner(str(b.run_dir), True)
    old = spawner.pid(lab.b.gw)
    os.kill(old, signal.SIGKILL)  # b's vpnd restarts it; b never initiates
    wait_for(lambda: spawner.pid(lab.b.gw) not in (None, old), 30, what="b's new charon")
    # a still holds the SA the dead charon left; its DPD finds out and a,
    # being bi-directional, initiates again.
    b.wait_conn("svc-b", "c1", timeout=60)
    a.wait_conn("svc-a", "c1", timeout=60)
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    assert wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 30, what="ping after recovery")


def test_peer_that_disappears_shows_down_within_the_dpd_timeout(lab, vpnd_factory):
    dpd = {"dpd_action": "restart", "dpd_interval": 2, "dpd_timeout": 10}
    a, b = start_pair(lab, vpnd_factory, a_conn=dpd, b_conn=dpd)
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])

    in_ns(lab.b.gw, "ip", "link", "set", "wan", "down")  # b vanishes from the WAN
    try:
        status = a.wait_conn("svc-a", "c1", "DOWN", timeout=10 + 2)
        assert status["reason"] in (PEER_UNREACHABLE, "IKE_SA connecting", "no SA established")
    finally:
        in_ns(lab.b.gw, "ip", "link", "set", "wan", "up")
    a.wait_conn("svc-a", "c1", timeout=60)
    assert wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 30, what="ping after return")
    assert PEER_UNREACHABLE in a.log_path.read_text()


def test_psk_mismatch_shows_an_authentication_reason(lab, vpnd_factory):
    a, b = start_pair(lab, vpnd_factory, b_conn={"psk": "not-the-same-psk-91"})
    a.wait_conn("svc-a", "c1", "DOWN", reason=AUTH_FAILED, timeout=30)
    b.wait_conn("svc-b", "c1", "DOWN", reason=AUTH_FAILED, timeout=30)
    # From the first attempt, the one made at start (vpnd listens to
    # charon's log from before it loads), not from a retry seconds later.
    assert initiations(a, lab.a.gw) == 1 and initiations(b, lab.b.gw) == 1
    for v in (a, b):
        text = v.log_path.read_text() + (v.run_dir / "status.json").read_text()
        assert PSK not in text and "not-the-same-psk-91" not in text


def test_proposal_mismatch_shows_a_proposal_reason(lab, vpnd_factory):
    a, b = start_pair(lab, vpnd_factory,
                      a_conn={"ikepolicy": {"ike_version": "v2", "encryption_algorithm": "aes-256"}},
                      b_conn={"ikepolicy": {"ike_version": "v2", "encryption_algorithm": "aes-128"}})
    a.wait_conn("svc-a", "c1", "DOWN", reason=NO_PROPOSAL, timeout=30)
    b.wait_conn("svc-b", "c1", "DOWN", reason=NO_PROPOSAL, timeout=30)


def test_what_the_data_plane_cannot_carry_is_an_error_with_the_reason(lab, vpnd_factory):
    a = vpnd_factory("a")
    svc = service("svc-a", lab.a, [
        connection("esp", lab.a, lab.b, PSK, initiator="response-only"),
        connection("ah", lab.a, lab.b, PSK, local_cidrs=["192.0.2.0/25"],
                   ipsecpolicy={"transform_protocol": "ah"}),
        connection("transport", lab.a, lab.b, PSK, local_cidrs=["192.0.2.128/25"],
                   ipsecpolicy={"encapsulation_mode": "transport"})])
    a.write("svc.json", svc)
    a.start()
    ah = a.wait_conn("svc-a", "ah", "ERROR", timeout=15)
    assert "ESP only" in ah["reason"]
    tr = a.wait_conn("svc-a", "transport", "ERROR", timeout=15)
    assert "tunnel only" in tr["reason"]
    # The rest of the service is applied.
    a.wait_conn("svc-a", "esp", "DOWN", reason="waiting for the peer", timeout=15)
    assert a.vici(lab.a.gw).live_state().conns == {"esp"}


def test_status_follows_sa_events_without_waiting_for_the_poll(lab, vpnd_factory):
    a, b = start_pair(lab, vpnd_factory)
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    poll = a.status_document()
    b.remove("svc.json")  # b terminates: a receives the DELETE
    wait_for(lambda: not b.vici(lab.b.gw).live_state().sas, 15, what="b's SAs gone")
    # status_interval is 10 s: a DOWN seen well before it comes from events.
    status = a.wait_conn("svc-a", "c1", "DOWN", timeout=3)
    assert status["since"] >= poll["updated"]
