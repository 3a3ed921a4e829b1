"""HA routers: a connection whose local address is not on this node is in
standby (standby.py), ended and never initiated (upkeep), shown so in
status, and initiated at once when its address comes (pure parts)."""
from __future__ import annotations

from types import SimpleNamespace

from vpnd.base.live import ChildSa, IkeSa, LiveState
from vpnd.base.conns import AppliedConn, DesiredConn
from vpnd.plan.actions import Initiate, LoadConn, TerminateIke
from vpnd.plan.standby import local_address, reason, standby
from vpnd.plan.upkeep import Upkeep

NS = "qrouter-ha"
VIP = "203.0.113.50"


def want(name, external_ip=VIP, initiates=True):
    return DesiredConn(name, "svc", "svc.json", "fp", {name: {}}, f"vpnd-{name}", {},
                       namespace=NS, model=SimpleNamespace(external_ip=external_ip),
                       children=(name,), initiates=initiates)


def test_a_connection_is_in_standby_when_its_address_is_absent():
    desired = {"c1": want("c1"), "c2": want("c2", "2001:db8::0:50"), "c3": want("c3", "")}
    assert standby(desired, frozenset({"203.0.113.1"})) == {"c1": VIP, "c2": "2001:db8::50"}
    assert standby(desired, frozenset({VIP, "2001:db8::50"})) == {}
    assert standby(desired, None) == {}  # addresses unknown: no guess
    assert local_address(SimpleNamespace(external_ip="2001:DB8::50")) == "2001:db8::50"
    assert reason(VIP) == f"standby: local address {VIP} not on this node"


def test_standby_ends_the_sas_and_never_initiates():
    live = LiveState(frozenset({"c1"}), frozenset(), (
        IkeSa("c1", "5", "ESTABLISHED", (ChildSa("c1", "6", "INSTALLED"),)),))
    loaded = {"c1": AppliedConn("c1", "svc", "svc.json", "fp", "vpnd-c1")}
    steps, _, missing = Upkeep().plan(NS, live, loaded, {"c1": want("c1")}, 100.0, True,
                                      standby={"c1": VIP})
    assert [(s.reason, s.actions) for s in steps] == [("standby", (TerminateIke("c1", ("5",)),))]
    assert steps[0].disrupts.why == reason(VIP)
    gone = LiveState(frozenset({"c1"}), frozenset(), ())
    steps, _, missing = Upkeep().plan(NS, gone, loaded, {"c1": want("c1")}, 100.0, True,
                                      standby={"c1": VIP})
    assert steps == () and missing == ()  # no initiation, no retry


def test_an_address_that_came_back_is_initiated_at_once_not_on_a_retry():
    gone = LiveState(frozenset({"c1"}), frozenset(), ())
    loaded = {"c1": AppliedConn("c1", "svc", "svc.json", "fp", "vpnd-c1")}
    steps, _, _ = Upkeep().plan(NS, gone, loaded, {"c1": want("c1")}, 100.0, False,
                                initiate_now=frozenset({"c1"}))
    assert [a for s in steps for a in s.actions] == [Initiate("c1", ("c1",))]


def test_a_load_in_standby_does_not_start_and_says_so():
    load = LoadConn("c1", {"c1": {}}, start=False)
    assert load.describe() == "load-conn c1 (standby: not started)"
    from vpnd.drivers.strongswan_mapping import not_started
    message = {"c1": {"version": "2", "children": {"c1": {"start_action": "start"}}}}
    assert not_started(message)["c1"]["children"]["c1"]["start_action"] == "none"
    assert message["c1"]["children"]["c1"]["start_action"] == "start"  # untouched


def test_status_says_standby_and_an_address_moving_brings_a_look():
    from lab.factory import connection_doc, parsed, service_doc
    from vpnd.state.desired import DesiredState
    from vpnd.observe.observed import Observed
    from vpnd.observe.status import NamespaceView
    doc = service_doc(conns=[connection_doc(psk="standby-psk")], namespace="ns1")
    state = DesiredState({"svc.json": parsed(doc, "svc.json")}, {})
    seen = Observed(views={"ns1": NamespaceView(LiveState(frozenset({"c1"}), frozenset()))},
                    standby={"ns1": {"c1": VIP}})
    [service] = seen.report(state, {}, {}, now="T")
    assert service["ipsec_site_connections"]["c1"]["status"] == "DOWN"
    assert service["ipsec_site_connections"]["c1"]["reason"] == reason(VIP)
    assert seen.take("ns1", "log", {"msg": f"{VIP} appeared on wan"}) == (True, None)
    assert seen.take("ns1", "log", {"msg": f"{VIP} disappeared from wan"}) == (True, None)
    assert seen.take("ns1", "log", {"msg": "sending packet: from x to y"}) == (False, None)
