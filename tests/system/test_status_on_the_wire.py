"""What status says of an ACTIVE connection is what the wire shows: the
bytes and packets a known ping sends, the algorithms the peer's charon
lists, and rekeys at both levels, counted since a time status gives."""
from __future__ import annotations

from conftest import connection, service, wait_converged
from lab.testbed import wait_for

PSK = "status-wire-psk-2f8"
PINGS, PAYLOAD = 5, 100
IP_PACKET = PAYLOAD + 8 + 20  # ICMP echo: payload, ICMP header, IPv4 header


def test_counters_algorithms_and_rekeys_are_what_the_wire_shows(lab, vpnd_factory):
    a, b = vpnd_factory("a", status_interval=1), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        # a initiates, b only responds: one SA, whose ids stay put.
        conn = connection("c1", me, peer, PSK,
                          initiator="bi-directional" if side == "a" else "response-only")
        for policy in ("ikepolicy", "ipsecpolicy"):  # the shortest Neutron allows
            conn[policy].update(lifetime_units="seconds", lifetime_value=60)
        v.write("svc.json", service(f"svc-{side}", me, [conn]))
        v.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    status = a.conn_status("svc-a", "c1")

    # The algorithms are those the peer lists for the same SAs.
    [peer_sa] = b.vici(lab.b.gw).live_state().sas
    assert status["ike_sa"]["algorithms"] == peer_sa.algorithms
    assert status["child_sas"]["c1"]["algorithms"] == peer_sa.children[0].algorithms

    # Counters grow by exactly what a known ping sends through the tunnel.
    child = status["child_sas"]["c1"]
    sent = lab.in_ns(lab.a.host, "ping", "-n", "-q", "-i", "0.2", "-c", str(PINGS),
                     "-s", str(PAYLOAD), "-W", "1", lab.b.host4, check=False)
    assert f"{PINGS} received" in sent.stdout, sent.stdout

    def grown():
        now = (a.conn_status("svc-a", "c1") or {}).get("child_sas", {}).get("c1", {})
        if now.get("uniqueid") != child["uniqueid"]:
            raise AssertionError("the CHILD_SA was rekeyed during the count; "
                                 f"before {child}, now {now}")
        return now if now.get("packets_in", 0) - child["packets_in"] >= PINGS else None
    after = wait_for(grown, 15, what="the ping's packets in status")
    assert (after["packets_out"] - child["packets_out"],
            after["packets_in"] - child["packets_in"]) == (PINGS, PINGS)
    assert (after["bytes_out"] - child["bytes_out"],
            after["bytes_in"] - child["bytes_in"]) == (PINGS * IP_PACKET, PINGS * IP_PACKET)

    # Rekeys, IKE and CHILD, as they happen (soft lifetime ~48-54 s), at
    # both ends, each saying since when it counts.
    def rekeyed(v, svc):
        c = v.conn_status(svc, "c1") or {}
        return c if c.get("ike_rekeys", 0) >= 1 and c.get("child_rekeys", 0) >= 1 else None
    for v, svc in ((a, "svc-a"), (b, "svc-b")):
        c = wait_for(lambda: rekeyed(v, svc), 120, interval=0.5, what=f"rekeys at {svc}")
        assert c["rekeys"] == c["ike_rekeys"] + c["child_rekeys"]
        # Counted since this vpnd started: before the connection came up.
        assert c["rekeys_since"] <= c["since"], c
    a.wait_conn("svc-a", "c1")
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
