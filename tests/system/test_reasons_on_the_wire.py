"""Every reason vpnd gives for a connection that is down is one a real
charon brings about (with test_behaviour.py: authentication, proposals,
an unreachable peer; test_wedged_charon.py: a charon not answering), and
what ends a tunnel is shown by its SAs and packets going away, at both
ends."""
from __future__ import annotations

from conftest import connection, service, wait_converged
from lab.testbed import wait_for
from vpnd.observe.reasons import DELETED_BY_PEER, TS_UNACCEPTABLE

PSK = "reasons-psk-6b3"


def ike_ids(v, ns, name="c1"):
    return {sa.uniqueid for sa in v.vici(ns).live_state().sas if sa.name == name}


def pair(lab, vpnd_factory, a_over=None, b_over=None, b_service=None):
    """a only responds (so what a shows is what b did to it); b initiates."""
    a, b = vpnd_factory("a"), vpnd_factory("b")
    a.write("svc.json", service("svc-a", lab.a, [connection(
        "c1", lab.a, lab.b, PSK, initiator="response-only", **(a_over or {}))]))
    b_doc = service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK, **(b_over or {}))])
    b_doc.update(b_service or {})
    b.write("svc.json", b_doc)
    a.start(), b.start()
    return a, b


def test_cidrs_the_peer_does_not_have_are_traffic_selectors_unacceptable(lab, vpnd_factory):
    # b asks for a's upper half of LAN A, which a does not offer.
    a, b = pair(lab, vpnd_factory, a_over={"local_cidrs": ["192.0.2.0/25"]},
                b_over={"peer_cidrs": ["192.0.2.128/25"]})
    b.wait_conn("svc-b", "c1", "DOWN", reason=TS_UNACCEPTABLE, timeout=30)
    a.wait_conn("svc-a", "c1", "DOWN", reason=TS_UNACCEPTABLE, timeout=30)


def test_a_service_set_admin_down_ends_its_sas_at_both_ends(lab, vpnd_factory):
    a, b = pair(lab, vpnd_factory)
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    assert lab.ping(lab.a.host, lab.b.host4, count=2)

    doc = service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)])
    doc["admin_state_up"] = False
    b.write("svc.json", doc)
    b.wait_conn("svc-b", "c1", "DOWN", reason="admin-down", timeout=15)
    wait_for(lambda: not ike_ids(b, lab.b.gw) and "c1" not in b.vici(lab.b.gw).live_state().conns,
             15, what="c1 unloaded and its SAs gone at b")
    wait_for(lambda: not ike_ids(a, lab.a.gw), 15, what="c1's SAs gone at a")
    # a was told: the peer deleted it; and nothing passes any more.
    a.wait_conn("svc-a", "c1", "DOWN", reason=DELETED_BY_PEER, timeout=15)
    assert not lab.ping(lab.a.host, lab.b.host4, count=2, timeout=1)

    doc["admin_state_up"] = True
    b.write("svc.json", doc)
    a.wait_conn("svc-a", "c1", timeout=60)
    assert wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 30, what="ping after admin up")


def test_removing_the_file_of_the_end_that_only_responds_ends_the_tunnel_at_both(
        lab, vpnd_factory):
    a, b = pair(lab, vpnd_factory)
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    held_by_a, held_by_b = ike_ids(a, lab.a.gw), ike_ids(b, lab.b.gw)
    assert held_by_a and held_by_b  # a holds a responder SA, b its initiator end

    a.remove("svc.json")
    wait_for(lambda: "c1" not in a.vici(lab.a.gw).live_state().conns and
             not ike_ids(a, lab.a.gw), 15, what="c1 gone at a")
    wait_for(lambda: not (ike_ids(b, lab.b.gw) & held_by_b), 15,
             what="the SA gone at b too")
    assert not lab.ping(lab.a.host, lab.b.host4, count=2, timeout=1)
    # b tries again (it is bi-directional) and finds nothing at a.
    assert not (ike_ids(b, lab.b.gw) & held_by_b)
