"""The planner: pure, owner-aware, and silent when nothing changed."""
from __future__ import annotations

import pytest

from vpnd.base.live import ChildSa, IkeSa, LiveState
from vpnd.base.conns import AppliedConn, DesiredConn, Intent
from vpnd.plan.actions import LoadConn, LoadShared, TerminateIke, UnloadConn, UnloadShared
from vpnd.plan.planner import plan_namespace

NS = "qrouter-r1"


def desired(name, fp="fp1", source="a.json", service="svc", parts="", initiates=True):
    return DesiredConn(name=name, service_id=service, source=source, fingerprint=fp,
                       conn_message={name: {"version": "2"}}, secret_id=f"vpnd-{name}",
                       secret_message={"id": f"vpnd-{name}", "data": "plan-psk"},
                       parts=parts, initiates=initiates)


def applied(name, fp="fp1", source="a.json", service="svc", parts=""):
    return AppliedConn(name, service, source, fp, f"vpnd-{name}", parts)


def live(conns=(), shared=(), sas=()):
    return LiveState(frozenset(conns), frozenset(shared),
                     tuple(IkeSa(n, "1", "ESTABLISHED", (ChildSa(n, "1", "INSTALLED"),))
                           for n in sas))


def kinds(steps):
    return [(s.name, s.reason, [type(a).__name__ for a in s.actions]) for s in steps]


def test_nothing_changed_means_no_step():
    steps = plan_namespace(NS, {"c1": desired("c1")}, {"c1": applied("c1")},
                           live(["c1"], ["vpnd-c1"], ["c1"]))
    assert steps == ()


def test_new_connection_loads_secret_then_connection():
    steps = plan_namespace(NS, {"c1": desired("c1")}, {}, live())
    assert kinds(steps) == [("c1", "new", ["LoadShared", "LoadConn"])]
    assert steps[0].record == applied("c1")


def test_changed_connection_breaks_before_make():
    steps = plan_namespace(NS, {"c1": desired("c1", fp="fp2")}, {"c1": applied("c1")},
                           live(["c1"], ["vpnd-c1"], ["c1"]))
    assert kinds(steps) == [("c1", "changed",
                             ["UnloadConn", "TerminateIke", "LoadShared", "LoadConn"])]
    assert steps[0].record.fingerprint == "fp2"


def test_a_change_that_keeps_the_psk_does_not_load_the_secret_again():
    state = live(["c1"], ["vpnd-c1"], ["c1"])
    was = applied("c1", parts="psk=a;ike=x;child=y")
    [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp2", parts="psk=a;ike=z;child=y")},
                            {"c1": was}, state)
    assert kinds([step]) == [("c1", "changed", ["UnloadConn", "TerminateIke", "LoadConn"])]
    assert step.record.fingerprint == "fp2"
    # Loaded again when the PSK (or its owners) moved, when charon does not
    # hold it, and when a record from before the parts cannot tell.
    for parts, shared, old in (("psk=b;ike=z;child=y", ["vpnd-c1"], was),
                               ("psk=a;ike=z;child=y", [], was),
                               ("psk=a;ike=z;child=y", ["vpnd-c1"], applied("c1"))):
        [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp2", parts=parts)}, {"c1": old},
                                live(["c1"], shared, ["c1"]))
        assert [type(a).__name__ for a in step.actions][-2:] == ["LoadShared", "LoadConn"], \
            (parts, shared, old)


def test_removed_connection_is_unloaded_terminated_and_forgotten():
    steps = plan_namespace(NS, {}, {"c1": applied("c1")}, live(["c1"], ["vpnd-c1"], ["c1"]))
    assert kinds(steps) == [("c1", "removed", ["UnloadConn", "TerminateIke", "UnloadShared"])]
    assert steps[0].record is None


def test_removal_only_touches_what_is_still_there():
    steps = plan_namespace(NS, {}, {"c1": applied("c1")}, live())
    assert kinds(steps) == [("c1", "removed", [])]


def test_connection_missing_from_a_restarted_charon_is_reloaded():
    steps = plan_namespace(NS, {"c1": desired("c1")}, {"c1": applied("c1")}, live())
    assert kinds(steps) == [("c1", "reload", ["LoadShared", "LoadConn"])]
    # The peer may hold SAs of the charon that died: it is told to clear them.
    assert steps[0].actions[1].initial_contact
    assert steps[0].actions[1].describe() == "load-conn c1 with INITIAL_CONTACT"


def test_only_a_reload_asks_for_initial_contact():
    new = plan_namespace(NS, {"c1": desired("c1")}, {}, live())
    adopted = plan_namespace(NS, {"c1": desired("c1")}, {}, live(["c1"], ["vpnd-c1"], ["c1"]))
    changed = plan_namespace(NS, {"c1": desired("c1", fp="fp2")}, {"c1": applied("c1")},
                             live(["c1"], ["vpnd-c1"], ["c1"]))
    for steps in (new, adopted, changed):
        assert [a.initial_contact for a in steps[0].actions if isinstance(a, LoadConn)] \
            == [False], kinds(steps)


def test_loaded_but_unrecorded_connection_is_adopted_without_terminate():
    steps = plan_namespace(NS, {"c1": desired("c1")}, {}, live(["c1"], ["vpnd-c1"], ["c1"]))
    assert kinds(steps) == [("c1", "adopt", ["LoadShared", "LoadConn"])]


def test_what_others_loaded_is_never_touched():
    steps = plan_namespace(NS, {"c1": desired("c1")}, {"c1": applied("c1")},
                           live(["c1", "ops"], ["vpnd-c1", "ops-key"], ["c1", "ops"]))
    assert steps == ()


def test_held_file_keeps_what_it_applied():
    steps = plan_namespace(NS, {}, {"c1": applied("c1", source="broken.json")},
                           live(["c1"], ["vpnd-c1"], ["c1"]),
                           held_sources=frozenset({"broken.json"}))
    assert steps == ()


def test_connection_moved_to_another_file_only_updates_the_record():
    steps = plan_namespace(NS, {"c1": desired("c1", source="b.json")}, {"c1": applied("c1")},
                           live(["c1"], ["vpnd-c1"], ["c1"]))
    assert kinds(steps) == [("c1", "moved", [])]
    assert steps[0].record.source == "b.json"


def test_removals_come_first_and_order_is_stable():
    steps = plan_namespace(NS, {"b": desired("b"), "a": desired("a")},
                           {"z": applied("z")}, live(["z"], ["vpnd-z"]))
    assert [s.name for s in steps] == ["z", "a", "b"]


def test_plan_output_never_carries_the_psk():
    steps = plan_namespace(NS, {"c1": desired("c1")}, {}, live())
    assert "plan-psk" not in repr(steps)
    assert "plan-psk" not in str([s.to_dict() for s in steps])
    assert steps[0].to_dict()["actions"] == ["load-shared vpnd-c1", "load-conn c1"]


@pytest.mark.parametrize("action, text", [
    (LoadShared("k", {"data": "x"}), "load-shared k"), (LoadConn("c", {}), "load-conn c"),
    (UnloadConn("c"), "unload-conn c"), (TerminateIke("c"), "terminate ike c"),
    (UnloadShared("k"), "unload-shared k"),
])
def test_actions_describe_themselves(action, text):
    assert action.describe() == text


def sa(name, uid, spi_i, spi_r, state="ESTABLISHED", children=()):
    return IkeSa(name, uid, state, tuple(children), spi_i=spi_i, spi_r=spi_r)


def child(name, uid, spi_in, spi_out, state="INSTALLED"):
    return ChildSa(name, uid, state, spi_in=spi_in, spi_out=spi_out)


def test_duplicate_ike_sas_keep_the_one_both_ends_agree_on():
    from vpnd.plan.actions import TerminateDuplicate
    from vpnd.plan.upkeep import duplicates
    mine = LiveState(frozenset({"c1"}), frozenset(), (
        sa("c1", "5", "bb", "11", children=[child("c1", "9", "c2", "c1")]),
        sa("c1", "4", "aa", "22", children=[child("c1", "8", "c4", "c3")]),
        sa("c1", "6", "cc", "33", state="CONNECTING"),
        sa("other", "7", "00", "00")))
    # The peer sees the same SPIs, with its own unique ids and in/out swapped.
    peer = LiveState(frozenset({"c1"}), frozenset(), (
        sa("c1", "1", "aa", "22", children=[child("c1", "2", "c3", "c4")]),
        sa("c1", "3", "bb", "11", children=[child("c1", "4", "c1", "c2")])))
    assert duplicates(mine, "c1") == (TerminateDuplicate("c1", "ike", "5"),)
    assert duplicates(peer, "c1") == (TerminateDuplicate("c1", "ike", "3"),)


def test_duplicate_child_sas_in_one_ike_sa():
    from vpnd.plan.actions import TerminateDuplicate
    from vpnd.plan.upkeep import duplicates
    state = LiveState(frozenset({"c1"}), frozenset(), (
        sa("c1", "1", "aa", "bb", children=[
            child("c1", "3", "f0", "f1"), child("c1", "2", "e1", "e0"),
            child("c1", "4", "d0", "d1", state="REKEYED")]),))
    assert duplicates(state, "c1") == (TerminateDuplicate("c1", "child", "3"),)


def test_no_duplicates_no_actions():
    from vpnd.plan.upkeep import duplicates
    state = LiveState(frozenset({"c1"}), frozenset(),
                      (sa("c1", "1", "aa", "bb", children=[child("c1", "2", "e1", "e0")]),))
    assert duplicates(state, "c1") == ()


def test_a_much_older_sa_is_stale_and_the_newer_one_is_kept():
    from dataclasses import replace
    from vpnd.plan.actions import TerminateDuplicate
    from vpnd.plan.upkeep import RACE_WINDOW, duplicates
    old = replace(sa("c1", "1", "00", "00"), age=RACE_WINDOW + 100)  # lowest SPIs
    new = replace(sa("c1", "2", "ff", "ff"), age=3)
    state = LiveState(frozenset({"c1"}), frozenset(), (old, new))
    assert duplicates(state, "c1") == (TerminateDuplicate("c1", "ike", "1"),)


def up(name, uniqueid):
    return IkeSa(name, uniqueid, "ESTABLISHED", (ChildSa(name, uniqueid, "INSTALLED"),))


def test_a_change_ends_the_sas_it_saw_and_names_them():
    state = LiveState(frozenset(["c1"]), frozenset(["vpnd-c1"]), (up("c1", "4"), up("c1", "9")))
    [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp2")}, {"c1": applied("c1")}, state)
    assert step.reason == "changed"
    assert [a for a in step.actions if isinstance(a, TerminateIke)] == [
        TerminateIke("c1", ("4", "9"))]


def test_a_change_a_killed_vpnd_had_applied_ends_no_sa_again():
    """Killed between charon's answers and the record line: the SA charon
    made since (#12) is the new configuration's."""
    state = LiveState(frozenset(["c1"]), frozenset(["vpnd-c1"]), (up("c1", "12"),))
    [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp2")}, {"c1": applied("c1")}, state,
                            intents={"c1": Intent("fp2", ("4",))})
    assert kinds([step]) == [("c1", "resumed", ["LoadShared", "LoadConn"])]
    assert step.record.fingerprint == "fp2"


def test_a_change_a_killed_vpnd_had_only_begun_ends_the_old_sa():
    state = LiveState(frozenset(["c1"]), frozenset(["vpnd-c1"]), (up("c1", "4"),))
    [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp2")}, {"c1": applied("c1")}, state,
                            intents={"c1": Intent("fp2", ("4",))})
    assert kinds([step]) == [("c1", "resumed", ["TerminateIke", "LoadShared", "LoadConn"])]


def test_an_intent_for_another_version_or_an_unloaded_connection_is_a_plain_change():
    state = LiveState(frozenset(["c1"]), frozenset(["vpnd-c1"]), (up("c1", "12"),))
    [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp3")}, {"c1": applied("c1")}, state,
                            intents={"c1": Intent("fp2", ("4",))})
    assert step.reason == "changed"
    unloaded = LiveState(frozenset(), frozenset(["vpnd-c1"]), (up("c1", "4"),))
    [step] = plan_namespace(NS, {"c1": desired("c1", fp="fp2")}, {"c1": applied("c1")},
                            unloaded, intents={"c1": Intent("fp2", ("4",))})
    assert kinds([step]) == [("c1", "changed", ["TerminateIke", "LoadShared", "LoadConn"])]


def test_an_invalid_connection_with_no_valid_version_known_is_left_as_it_is():
    steps = plan_namespace(NS, {}, {"c1": applied("c1")}, live(["c1"], ["vpnd-c1"], ["c1"]),
                           held_names=frozenset(["c1"]))
    assert steps == ()


def test_a_change_predicts_the_sas_it_ends_and_says_why():
    state = LiveState(frozenset(["c1", "c2"]), frozenset(["vpnd-c1", "vpnd-c2"]),
                      (up("c1", "4"), up("c2", "5")))
    [step] = plan_namespace(
        NS, {"c1": desired("c1", fp="fp2", parts="psk=b;ike=x;child=y"),
             "c2": desired("c2")},
        {"c1": applied("c1", parts="psk=a;ike=x;child=y"), "c2": applied("c2")}, state)
    assert step.disrupts.to_dict() == {
        "ike_sas": ["4"], "child_sas": ["4"], "interrupts_traffic": True,
        "why": "PSK changed: IKE_SA re-established"}
    assert step.to_dict()["disrupts"] == step.disrupts.to_dict()


def test_why_names_every_changed_part_and_who_re_establishes():
    state = live(["c1"], ["vpnd-c1"])
    [step] = plan_namespace(
        NS, {"c1": desired("c1", fp="fp2", parts="psk=a;ike=z;child=w", initiates=False)},
        {"c1": applied("c1", parts="psk=a;ike=x;child=y")}, state)
    assert step.disrupts.why == ("IKE settings and CHILD_SA settings changed: IKE_SA ended "
                                 "(the peer re-establishes it)")
    assert step.disrupts.ike_sas == () and not step.disrupts.interrupts_traffic
    [old] = plan_namespace(NS, {"c1": desired("c1", fp="fp2", parts="psk=a")},
                           {"c1": applied("c1")}, state)  # a record from before parts
    assert old.disrupts.why == "configuration changed: IKE_SA re-established"


def test_a_removal_predicts_its_sas_and_a_load_disrupts_nothing():
    state = LiveState(frozenset(["c1"]), frozenset(["vpnd-c1"]), (up("c1", "8"),))
    [step] = plan_namespace(NS, {}, {"c1": applied("c1")}, state)
    assert (step.disrupts.ike_sas, step.disrupts.interrupts_traffic) == (("8",), True)
    [new] = plan_namespace(NS, {"c2": desired("c2")}, {}, live())
    assert new.disrupts.to_dict() == {"ike_sas": [], "child_sas": [],
                                      "interrupts_traffic": False, "why": ""}


def test_plan_json_matches_its_published_schema():
    import json
    from pathlib import Path

    import jsonschema
    schema = json.loads((Path(__file__).resolve().parents[3] / "conf" / "plan.schema.json")
                        .read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    state = LiveState(frozenset(["c1", "c3"]), frozenset(["vpnd-c1", "vpnd-c3"]),
                      (up("c1", "4"), up("c3", "6")))
    steps = plan_namespace(NS, {"c1": desired("c1", fp="fp2"), "c2": desired("c2")},
                           {"c1": applied("c1"), "c3": applied("c3")}, state)
    assert {s.reason for s in steps} == {"changed", "new", "removed"}
    jsonschema.validate([s.to_dict() for s in steps], schema)
    reasons = set(schema["items"]["properties"]["reason"]["enum"])
    from vpnd.plan.steps import UPKEEP
    assert set(UPKEEP) <= reasons
