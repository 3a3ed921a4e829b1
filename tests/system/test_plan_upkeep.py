"""`vpnd plan` shows what upkeep and route MTUs would do, as it shows loads:
every side effect is a step of the one apply path."""
from __future__ import annotations

import json

from conftest import connection, service
from lab.testbed import in_ns, wait_for

PSK = "plan-upkeep-psk-4a2"


def test_plan_shows_a_pending_initiation_and_a_route_mtu(lab, vpnd_factory):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [
            connection("c4", me, peer, PSK, mtu=1300,
                       initiator="bi-directional" if side == "a" else "response-only"),
            connection("c6", me, peer, PSK, v6=True, external_ip=me.wan6,
                       initiator="bi-directional" if side == "a" else "response-only")]))
        v.start()
    a.wait_conn("svc-a", "c4"), a.wait_conn("svc-a", "c6")
    wait_for(lambda: (a.conn_status("svc-a", "c4") or {}).get("mtu") == "applied", 15,
             what="mtu applied")
    assert json.loads(a.cli("plan", "--json").stdout) == []

    # vpnd stops (charon and the tunnels stay); someone changes the route
    # MTU and ends c6's SA behind its back.
    assert a.stop() == 0
    route = in_ns(lab.a.gw, "ip", "route", "show", "table", "220", lab.b.lan4).stdout.strip()
    assert "mtu 1300" in route
    in_ns(lab.a.gw, "ip", "route", "replace", *route.replace("mtu 1300", "mtu 1350").split(),
          "table", "220")
    in_ns(lab.a.gw, "swanctl", "--terminate", "--ike", "c6", "--uri",
          f"unix://{a.socket(lab.a.gw)}", "--timeout", "5")
    wait_for(lambda: "c6" not in a.vici(lab.a.gw).live_state().ike_sas, 15,
             what="c6's SA gone")

    result = a.cli("plan", "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    steps = {(s["connection"], s["reason"]): s["actions"] for s in json.loads(result.stdout)}
    assert steps == {("c4", "mtu"): [f"set route mtu 1300 for {lab.b.lan4}"],
                     ("c6", "no SA"): ["initiate c6"]}
    # A plan changes nothing.
    assert "mtu 1350" in in_ns(lab.a.gw, "ip", "route", "show", "table", "220",
                               lab.b.lan4).stdout
    assert "c6" not in a.vici(lab.a.gw).live_state().ike_sas

    # vpnd back: it does what the plan said.
    a.start()
    wait_for(lambda: "mtu 1300" in in_ns(lab.a.gw, "ip", "route", "show", "table", "220",
                                         lab.b.lan4).stdout, 15, what="route mtu restored")
    a.wait_conn("svc-a", "c6", timeout=60)
    assert lab.ping(lab.a.host, lab.b.host6, count=2)
