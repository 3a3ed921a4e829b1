"""An HA router's VIP, moved by hand (keepalived does it for real in the
HA test): a connection whose local address is not on this node is in
standby, holds no SA and is not initiated; when the address comes it is
up at once; when it goes its SAs go with it."""
from __future__ import annotations

import time

import pytest

from conftest import connection, service
from lab.testbed import in_ns, wait_for, wait_steady
from vpnd.plan.standby import reason

PSK = "standby-psk-1e4"
VIP = "203.0.113.50"


@pytest.mark.fault
def test_a_connection_follows_its_local_address(lab, vpnd_factory, figure):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    mine = service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK, external_ip=VIP)])
    mine["external_ip"] = VIP
    a.write("svc.json", mine)
    b.write("svc.json", service("svc-b", lab.b, [connection(
        "c1", lab.b, lab.a, PSK, peer_address=VIP, peer_id=VIP, initiator="response-only")]))
    a.start(), b.start()
    a.wait_conn("svc-a", "c1", "DOWN", reason=reason(VIP), timeout=30)
    assert "c1" in a.vici(lab.a.gw).live_state().conns  # loaded, ready
    wait_steady(lambda: not a.vici(lab.a.gw).live_state().sas, 3, 15,
                what="no SA while the address is elsewhere")

    in_ns(lab.a.gw, "ip", "addr", "add", f"{VIP}/24", "dev", "wan")
    t0 = time.monotonic()
    a.wait_conn("svc-a", "c1", timeout=30)
    came = time.monotonic() - t0
    assert wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 15, what="ping")

    in_ns(lab.a.gw, "ip", "addr", "del", f"{VIP}/24", "dev", "wan")
    t1 = time.monotonic()
    wait_for(lambda: not a.vici(lab.a.gw).live_state().sas, 30, interval=0.05,
             what="the SAs gone with the address")
    went = time.monotonic() - t1
    a.wait_conn("svc-a", "c1", "DOWN", reason=reason(VIP), timeout=15)
    figure("standby: address came -> ACTIVE, address went -> no SA (s)",
           f"{came:.2f}, {went:.2f}")
