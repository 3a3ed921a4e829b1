"""Status: neutron-vpnaas report shape, with reasons."""
from __future__ import annotations

from lab.factory import connection_doc, parsed, service_doc
from vpnd.live import ChildSa, IkeSa, LiveState
from vpnd.desired import DesiredState
from vpnd.status import NamespaceView, build
from vpnd.errors import InputError


def service(admin=True, conns=(("c1", True, "bi-directional"),)):
    return parsed(service_doc(conns=[
        connection_doc(cid, "status-psk", admin_state_up=up, initiator=init)
        for cid, up, init in conns], namespace="ns1", admin_state_up=admin), "svc.json")


def report(svc, view=None, errors=None, file_errors=None):
    state = DesiredState({"svc.json": svc} if svc else {}, file_errors or {})
    return build(state, {"ns1": view} if view else {}, {}, errors or {})


def up(*names):
    return LiveState(frozenset(names), frozenset(), tuple(
        IkeSa(n, "7", "ESTABLISHED", (ChildSa(n, "9", "INSTALLED"),)) for n in names))


def test_active_when_child_sa_installed():
    [entry] = report(service(), NamespaceView(up("c1")))
    assert entry["id"] == "svc" and entry["status"] == "ACTIVE"
    conn = entry["ipsec_site_connections"]["c1"]
    assert conn["status"] == "ACTIVE" and conn["ike_sa"]["uniqueid"] == "7"


def test_reasons_when_not_active():
    cases = [
        (NamespaceView(None, "namespace ns1 does not exist"), "namespace ns1 does not exist"),
        (NamespaceView(LiveState(frozenset(), frozenset())), "not loaded in charon"),
        (NamespaceView(LiveState(frozenset({"c1"}), frozenset())), "no SA established"),
        (NamespaceView(LiveState(frozenset({"c1"}), frozenset(),
                                 (IkeSa("c1", "3", "CONNECTING", ()),))), "IKE_SA connecting"),
    ]
    for view, reason in cases:
        [entry] = report(service(), view)
        assert entry["status"] == "DOWN"
        conn = entry["ipsec_site_connections"]["c1"]
        assert (conn["status"], conn["reason"]) == ("DOWN", reason)


def test_admin_down_and_errors():
    [entry] = report(service(admin=False), NamespaceView(up()))
    assert entry["status"] == "DOWN" and entry["reason"] == "admin-down"
    assert entry["ipsec_site_connections"]["c1"]["reason"] == "admin-down"
    [entry] = report(service(conns=(("c1", True, "bi-directional"), ("c2", False, "response-only"))),
                     NamespaceView(up("c1")))
    assert entry["status"] == "ACTIVE"  # admin-down connections do not count
    [entry] = report(service(), NamespaceView(up()), errors={("ns1", "c1"): "load-conn failed: x"})
    assert entry["ipsec_site_connections"]["c1"] == {"status": "ERROR",
                                                     "reason": "load-conn failed: x"}


def test_invalid_file_is_an_error_entry():
    problem = InputError("bad.json", "$.id", "must not be empty")
    [entry] = report(None, file_errors={"bad.json": [problem]})
    assert entry["status"] == "ERROR" and entry["errors"] == ["bad.json: $.id: must not be empty"]
    assert entry["ipsec_site_connections"] == {}
