"""The Neutron driver's pure parts: status.json to update_status reports,
and its state files (no Neutron needed: vpnd.neutron_driver's reports
and state_files import none of it)."""
import os
import stat

import pytest

from vpnd.neutron_driver import reports, state_files

SID = "11111111-2222-4333-8444-555555555555"
C1 = "aaaaaaaa-2222-4333-8444-555555555555"
C2 = "bbbbbbbb-2222-4333-8444-555555555555"


def payload(status="PENDING_CREATE", conns=((C1, "PENDING_CREATE"),)):
    return {"id": SID, "status": status, "router_id": "r",
            "ipsec_site_connections": [{"id": c, "status": s} for c, s in conns]}


def doc(conns, **service):
    return {"services": [{"id": SID, "status": service.get("status", "DOWN"),
                          **{k: v for k, v in service.items() if k != "status"},
                          "ipsec_site_connections": conns}]}


def run(d, services, sent, known=None):
    known = set(services) if known is None else known
    return reports.reports(d, services, known, sent)


def test_not_applied_yet_is_not_reported_and_the_first_real_status_clears_pending():
    sent = {}
    out, _ = run(doc({C1: {"status": "DOWN", "reason": "not applied yet"}}),
                 {SID: payload()}, sent)
    assert out == []  # PENDING_CREATE must not turn DOWN before vpnd has tried
    out, _ = run(doc({C1: {"status": "ACTIVE"}}, status="ACTIVE"), {SID: payload()}, sent)
    assert out == [{"id": SID, "status": "ACTIVE", "updated_pending_status": True,
                    "ipsec_site_connections": {C1: {"status": "ACTIVE",
                                                    "updated_pending_status": True}}}]
    # The same again, before or after the next sync shows the rows ACTIVE: nothing.
    assert run(doc({C1: {"status": "ACTIVE"}}), {SID: payload()}, sent)[0] == []
    assert run(doc({C1: {"status": "ACTIVE"}}),
               {SID: payload("ACTIVE", ((C1, "ACTIVE"),))}, sent)[0] == []


def test_only_what_changed_is_sent_and_a_plain_change_has_no_flag():
    sent = {}
    active = payload("ACTIVE", ((C1, "ACTIVE"), (C2, "ACTIVE")))
    run(doc({C1: {"status": "ACTIVE"}, C2: {"status": "ACTIVE"}}), {SID: active}, sent)
    out, _ = run(doc({C1: {"status": "ACTIVE"}, C2: {"status": "DOWN", "reason": "x"}}),
                 {SID: active}, sent)
    assert out == [{"id": SID, "status": "ACTIVE", "updated_pending_status": False,
                    "ipsec_site_connections": {C2: {"status": "DOWN",
                                                    "updated_pending_status": False}}}]
    out, _ = run(doc({C1: {"status": "DOWN"}, C2: {"status": "DOWN"}}), {SID: active}, sent)
    assert out[0]["status"] == "DOWN" and list(out[0]["ipsec_site_connections"]) == [C1]


def test_an_error_carries_vpnds_reason_to_the_log():
    out, failures = run(doc({C1: {"status": "ERROR", "reason": "invalid connection",
                                  "errors": ["$.x: bad"]}}), {SID: payload()}, {})
    assert out[0]["ipsec_site_connections"][C1]["status"] == "ERROR"
    assert failures == [reports.Failure(SID, C1, "invalid connection", ("$.x: bad",))]


def test_an_invalid_file_is_the_services_error():
    out, _ = run(doc({C1: {"status": "ERROR", "reason": "invalid file"}}, status="ERROR",
                     errors=["$: not JSON"]), {SID: payload()}, {})
    assert out[0]["status"] == "ERROR"


def test_a_deleted_connection_and_a_service_whose_last_one_went_are_told_once():
    sent = {}
    two = payload("ACTIVE", ((C1, "ACTIVE"), (C2, "ACTIVE")))
    both = doc({C1: {"status": "ACTIVE"}, C2: {"status": "ACTIVE"}}, status="ACTIVE")
    run(both, {SID: two}, sent)
    one = payload("ACTIVE", ((C1, "ACTIVE"),))
    out, _ = run(doc({C1: {"status": "ACTIVE"}}), {SID: one}, sent)
    assert out == [{"id": SID, "status": "ACTIVE", "updated_pending_status": False,
                    "ipsec_site_connections": {C2: {"status": "DOWN",
                                                    "updated_pending_status": True}}}]
    # The last connection deleted: the service leaves the payload.
    out, _ = run({"services": []}, {}, sent, known=set())
    assert out == [{"id": SID, "status": "DOWN", "updated_pending_status": True,
                    "ipsec_site_connections": {C1: {"status": "DOWN",
                                                    "updated_pending_status": True}}}]
    assert run({"services": []}, {}, sent, known=set())[0] == []


def test_a_backup_routers_services_are_not_reported_and_afresh_once_primary():
    sent = {}
    active = payload("ACTIVE", ((C1, "ACTIVE"),))
    run(doc({C1: {"status": "ACTIVE"}}), {SID: active}, sent)
    out, _ = run(doc({C1: {"status": "DOWN", "reason": "standby"}}), {}, sent, known={SID})
    assert out == [] and sent == {}
    out, _ = run(doc({C1: {"status": "ACTIVE"}}), {SID: active}, sent)
    assert out and out[0]["status"] == "ACTIVE"


def test_nothing_is_said_before_vpnd_has_written_status():
    assert run(None, {SID: payload()}, {}) == ([], [])


def test_state_files_are_stable_0600_and_only_ours_are_named(tmp_path):
    files = state_files.StateFiles(str(tmp_path))
    p = payload()
    assert files.write(p, "qrouter-r") is True
    assert files.write(dict(reversed(list(p.items()))), "qrouter-r") is False  # same bytes
    path = tmp_path / f"neutron-{SID}.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert b'"namespace": "qrouter-r"' in path.read_bytes()
    (tmp_path / "operator.json").write_text("{}")
    (tmp_path / "neutron-not-a-uuid.json").write_text("{}")
    assert files.present() == {SID}
    assert state_files.file_name("../../etc/x") is None
    with pytest.raises(ValueError):
        files.write({**p, "id": "../x"}, "qrouter-r")
    assert files.remove(SID) and not path.exists()
    assert (tmp_path / "operator.json").exists()
