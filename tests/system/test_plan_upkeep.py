"""`vpnd plan` shows what upkeep and route MTUs would do, as it shows loads:
every side effect is a step of the one apply path."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from conftest import connection, service, wait_converged
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


def sa_ids(v, ns) -> dict[str, tuple[str, set[str]]]:
    """connection -> (IKE_SA unique id, its CHILD_SA unique ids)."""
    return {sa.name: (sa.uniqueid, {c.uniqueid for c in sa.children})
            for sa in v.vici(ns).live_state().sas}


def test_what_the_plan_says_it_will_end_is_exactly_what_ends(lab, vpnd_factory):
    schema = json.loads((Path(__file__).resolve().parents[2] / "conf" / "plan.schema.json")
                        .read_text())
    a, b = vpnd_factory("a"), vpnd_factory("b")

    def conns(me, peer, side, child_life=3600):
        # a only responds: every SA is b's, and no duplicate ever changes an id.
        init = "response-only" if side == "a" else "bi-directional"
        c4 = connection("c4", me, peer, PSK, initiator=init)
        c4["ipsecpolicy"]["lifetime_value"] = child_life
        return [c4, connection("c6", me, peer, PSK, v6=True, external_ip=me.wan6,
                               initiator=init)]
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, conns(me, peer, side)))
        v.start()
    a.wait_conn("svc-a", "c4"), a.wait_conn("svc-a", "c6")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c4", "c6"])

    # vpnd stops; a's file changes c4 (a CHILD_SA lifetime, which the peer
    # need not share) and gains c7 (new, to a peer that never answers).
    assert a.stop() == 0
    c7 = connection("c7", lab.a, lab.b, PSK, initiator="response-only",
                    peer_address="198.18.0.7", peer_id="198.18.0.7",
                    peer_cidrs=["198.18.7.0/24"])
    a.write("svc.json", service("svc-a", lab.a, [*conns(lab.a, lab.b, "a", 3000), c7]))
    before = sa_ids(a, lab.a.gw)
    result = a.cli("plan", "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    steps = json.loads(result.stdout)
    jsonschema.validate(steps, schema)
    predicted = {s["connection"]: s["disrupts"] for s in steps}
    assert set(predicted) == {"c4", "c7"}
    assert predicted["c4"] == {
        "ike_sas": [before["c4"][0]], "child_sas": sorted(before["c4"][1]),
        "interrupts_traffic": True,
        "why": "CHILD_SA settings changed: IKE_SA ended (the peer re-establishes it)"}
    assert predicted["c7"] == {"ike_sas": [], "child_sas": [], "interrupts_traffic": False,
                               "why": ""}
    text = a.cli("plan").stdout
    assert f"=> ends IKE_SA #{before['c4'][0]}" in text and "interrupts its traffic" in text

    # vpnd applies it: exactly the predicted SAs end, no other.
    a.start()
    wait_for(lambda: "c7" in a.vici(lab.a.gw).live_state().conns, 30, what="c7 loaded")
    a.wait_conn("svc-a", "c4", timeout=60)
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c4", "c6"])
    after = sa_ids(a, lab.a.gw)
    ended_ike = {ike for name, (ike, _) in before.items() if after.get(name, ("",))[0] != ike}
    ended_child = set().union(*(kids - after.get(name, ("", set()))[1]
                                for name, (_, kids) in before.items()))
    predicted_ike = {i for d in predicted.values() for i in d["ike_sas"]}
    predicted_child = {i for d in predicted.values() for i in d["child_sas"]}
    assert (ended_ike, ended_child) == (predicted_ike, predicted_child)
    assert after["c6"] == before["c6"]
