"""Observed state: events, "since", rekeys, and a report that changes nothing."""
from __future__ import annotations

from lab.factory import connection_doc, parsed, service_doc
from vpnd.state.desired import DesiredState
from vpnd.base.live import ChildSa, IkeSa, LiveState
from vpnd.observe.observed import Observed
from vpnd.observe.status import NamespaceView


def state():
    doc = service_doc(conns=[connection_doc(psk="observed-psk")], namespace="ns1")
    return DesiredState({"svc.json": parsed(doc, "svc.json")}, {})


UP = LiveState(frozenset({"c1"}), frozenset(), (
    IkeSa("c1", "7", "ESTABLISHED", (ChildSa("c1", "9", "INSTALLED"),)),))
LOADED = LiveState(frozenset({"c1"}), frozenset(), ())


def conn(report):
    return report[0]["ipsec_site_connections"]["c1"]


def settle(seen, report):
    """Book a published report as the daemon does, entry by entry."""
    return [change for service in report for change in seen.settle_entry(service)]


def test_since_moves_only_when_status_or_reason_changes():
    seen = Observed(views={"ns1": NamespaceView(LOADED)})
    first = seen.report(state(), {}, {}, now="T1")
    assert conn(first)["since"] == "T1"
    assert settle(seen, first) == [("svc", "c1", "ns1", "DOWN", "no SA established")]
    again = seen.report(state(), {}, {}, now="T2")
    assert conn(again)["since"] == "T1" and settle(seen, again) == []
    seen.set_view("ns1", NamespaceView(UP))
    up = seen.report(state(), {}, {}, now="T3")
    assert conn(up)["status"] == "ACTIVE" and conn(up)["since"] == "T3"
    assert settle(seen, up) == [("svc", "c1", "ns1", "ACTIVE", "")]


def test_report_changes_nothing_settle_books_it():
    seen = Observed(views={"ns1": NamespaceView(UP)}, failures={("ns1", "c1"): "old"})
    seen.report(state(), {}, {}, now="T1")
    seen.report(state(), {}, {}, now="T2")
    assert seen.since == {} and seen.failures == {("ns1", "c1"): "old"}
    settle(seen, seen.report(state(), {}, {}, now="T3"))
    # An ACTIVE connection leaves its last failure behind.
    assert seen.failures == {} and seen.since[("svc", "c1")] == (("ACTIVE", ""), "T3")


def test_a_failure_logged_while_a_stale_report_still_shows_active_is_kept():
    """charon logs "received DELETE" before vpnd has looked again: the report
    published meanwhile still says ACTIVE, and must not clear the reason."""
    seen = Observed(views={"ns1": NamespaceView(UP)})
    settle(seen, seen.report(state(), {}, {}, now="T1"))  # ACTIVE, settled
    seen.take("ns1", "log", {"ikesa-name": "c1", "msg": "received DELETE for IKE_SA c1[1]"})
    settle(seen, seen.report(state(), {}, {}, now="T2"))  # still the old view: ACTIVE
    seen.set_view("ns1", NamespaceView(LOADED))  # the look after: the SA is gone
    assert conn(seen.report(state(), {}, {}, now="T3"))["reason"] == "deleted by the peer"


def test_rekeys_are_counted_per_connection_from_events():
    seen = Observed(views={"ns1": NamespaceView(UP)})
    assert seen.take("ns1", "child-rekey", {"c1": {}}) == (True, None)
    seen.take("ns1", "ike-rekey", {"c1": {}})
    seen.take("ns2", "ike-rekey", {"c1": {}})
    c = conn(seen.report(state(), {}, {}, now="T"))
    assert (c["rekeys"], c["ike_rekeys"], c["child_rekeys"]) == (2, 1, 1)


def test_a_failure_charon_logs_is_taken_once_and_shown_as_the_reason():
    seen = Observed(views={"ns1": NamespaceView(LOADED)})
    event = {"ikesa-name": "c1", "msg": "received AUTHENTICATION_FAILED notify error"}
    touched, failure = seen.take("ns1", "log", event)
    assert touched and failure[0] == "c1" and "authentication failed" in failure[1]
    assert seen.take("ns1", "log", event) == (False, None)  # nothing new
    assert seen.take("ns1", "log", {"ikesa-name": "c1", "msg": "sending packet"}) == \
        (False, None)
    assert "authentication failed" in conn(seen.report(state(), {}, {}, now="T"))["reason"]


def test_a_standby_connections_since_stays_across_rebuilds():
    seen = Observed(views={"ns1": NamespaceView(LOADED)})
    seen.set_standby("ns1", {"c1": "203.0.113.50"})
    first = seen.report(state(), {}, {}, now="T1")
    assert conn(first)["reason"].startswith("standby") and conn(first)["since"] == "T1"
    settle(seen, first)
    again = seen.report(state(), {}, {}, now="T2")
    assert conn(again)["since"] == "T1" and settle(seen, again) == []
