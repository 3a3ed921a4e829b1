"""Status: neutron-vpnaas report shape, with reasons."""
from __future__ import annotations

import json

from lab.factory import connection_doc, parsed, service_doc
from vpnd.base.live import ChildSa, IkeSa, LiveState
from vpnd.state.desired import DesiredState
from vpnd.observe import status as status_mod
from vpnd.observe.status import NamespaceView, service_entry
from vpnd.base.errors import InputError


def service(admin=True, conns=(("c1", True, "bi-directional"),)):
    return parsed(service_doc(conns=[
        connection_doc(cid, "status-psk", admin_state_up=up, initiator=init)
        for cid, up, init in conns], namespace="ns1", admin_state_up=admin), "svc.json")


def build(state, views, children, errors):
    """Every file's entry, in file order, as status.build made them (the
    part of status that desired state and charon's views make)."""
    return [service_entry(path, state, views, children, errors, {})
            for path in sorted(set(state.services) | set(state.errors))]


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


def test_an_invalid_file_is_reported_under_the_ids_it_names():
    problem = InputError("bad.json", "$.admin_state_up", "must be true or false")
    state = DesiredState({}, {"bad.json": [problem]}, ids={"bad.json": ("svc-9", ("c1", "c2"))})
    [entry] = build(state, {}, {}, {})
    assert (entry["id"], entry["status"], entry["reason"]) == ("svc-9", "ERROR", "invalid file")
    assert entry["ipsec_site_connections"] == {
        "c1": {"status": "ERROR", "reason": "invalid file"},
        "c2": {"status": "ERROR", "reason": "invalid file"}}


def test_an_invalid_connection_is_error_and_its_neighbours_are_not():
    svc = service(conns=(("c1", True, "bi-directional"), ("c2", True, "bi-directional")))
    bad = InputError("svc.json", "$.ipsec_site_connections[1].mtu", "must be an integer")
    new = InputError("svc.json", "$.ipsec_site_connections[2].psk", "must be a non-empty string")
    state = DesiredState({"svc.json": svc}, {}, broken={"svc.json": {"c2": [bad], "c3": [new]}})
    [entry] = build(state, {"ns1": NamespaceView(up("c1", "c2"))}, {}, {})
    conns = entry["ipsec_site_connections"]
    assert conns["c1"]["status"] == "ACTIVE"
    # c2 runs its last valid version: ERROR, with what runs.
    assert (conns["c2"]["status"], conns["c2"]["applied_status"]) == ("ERROR", "ACTIVE")
    assert conns["c2"]["reason"] == "invalid connection, still applying its last valid version"
    assert conns["c2"]["errors"] == [str(bad)]
    assert conns["c3"] == {"status": "ERROR", "reason": "invalid connection",
                           "errors": [str(new)]}
    assert entry["status"] == "DOWN" and entry["reason"] == "2 of 3 connections not ACTIVE"


def test_status_json_written_in_blocks_is_the_entries_whole(tmp_path):
    # Written a block of entries at a time, as the book unpacks them (never
    # held whole): the same document as one made whole, on either side of
    # a block's edge.
    for n in (0, 1, status_mod._BLOCK, status_mod._BLOCK + 1, 2 * status_mod._BLOCK + 3):
        entries = [{"id": f"s{i}", "ipsec_site_connections": {}} for i in range(n)]
        path = str(tmp_path / "status.json")
        status_mod.write_fragments(path, (json.dumps(e).encode() for e in entries), pid=7)
        doc = status_mod.read(path)
        assert doc["services"] == entries and doc["pid"] == 7
