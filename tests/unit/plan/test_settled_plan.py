"""What a look may keep between looks: planner.settled and
upkeep.initiators_of, and that a plan given them is the plan without."""
from __future__ import annotations

import pytest

from vpnd.base.conns import AppliedConn, DesiredConn
from vpnd.base.live import ChildSa, IkeSa, LiveState
from vpnd.plan.planner import plan_namespace, settled
from vpnd.plan.upkeep import Upkeep, initiators_of

NS = "qrouter-settled"


def want(name, fp="fp1", source="a.json", service="svc", secret=None, initiates=False):
    return DesiredConn(name=name, service_id=service, source=source, fingerprint=fp,
                       conn_message={name: {}}, secret_id=secret or f"vpnd-{name}",
                       secret_message={"id": secret or f"vpnd-{name}", "data": "settled-psk"},
                       initiates=initiates)


def had(name, fp="fp1", source="a.json", service="svc", secret=None):
    return AppliedConn(name, service, source, fp, secret or f"vpnd-{name}")


DESIRED = {"c1": want("c1"), "c2": want("c2")}
APPLIED = {"c1": had("c1"), "c2": had("c2")}


@pytest.mark.parametrize("applied, expected", [
    (APPLIED, ("vpnd-c1", "vpnd-c2")),
    ({"c1": had("c1")}, None),  # c2 never applied
    ({**APPLIED, "c2": had("c2", fp="fp0")}, None),  # c2 changed
    ({**APPLIED, "c2": had("c2", source="b.json")}, None),  # moved to another file
    ({**APPLIED, "c2": had("c2", service="other")}, None),
    ({**APPLIED, "c2": had("c2", secret="vpnd-old")}, None),
    ({**APPLIED, "c3": had("c3")}, ("vpnd-c1", "vpnd-c2")),  # a removal is planned anyway
])
def test_settled_says_whether_each_desired_connection_is_as_applied(applied, expected):
    assert settled(DESIRED, applied) == expected


@pytest.mark.parametrize("conns, shared", [
    (["c1", "c2"], ["vpnd-c1", "vpnd-c2"]),  # all loaded: nothing to do
    (["c1"], ["vpnd-c1", "vpnd-c2"]),  # charon lost c2
    (["c1", "c2"], ["vpnd-c1"]),  # charon lost c2's secret
    ([], []),  # a charon restarted empty
])
@pytest.mark.parametrize("applied", [APPLIED, {**APPLIED, "c3": had("c3")},
                                     {"c1": had("c1")}, {**APPLIED, "c2": had("c2", fp="x")}])
def test_a_plan_given_settled_is_the_plan_without(conns, shared, applied):
    live = LiveState(frozenset(conns), frozenset(shared), ())
    assert plan_namespace(NS, DESIRED, applied, live,
                          settled_secrets=settled(DESIRED, applied)) == \
        plan_namespace(NS, DESIRED, applied, live)


def test_upkeep_given_the_initiators_is_upkeep_without():
    desired = {"a": want("a", initiates=True), "b": want("b"), "c": want("c", initiates=True),
               "d": want("d", initiates=True)}
    assert initiators_of(desired) == ("a", "c", "d")
    loaded = {n: had(n) for n in ("a", "b", "c")}
    sa = IkeSa("c", "1", "ESTABLISHED", (ChildSa("c", "1", "INSTALLED"),))
    live = LiveState(frozenset(loaded), frozenset(), (sa,))
    for standby in ({}, {"a": "203.0.113.9"}):
        given = Upkeep().plan(NS, live, loaded, desired, 10.0, True, standby,
                              initiators=initiators_of(desired))
        assert given == Upkeep().plan(NS, live, loaded, desired, 10.0, True, standby)
    steps, _, missing = Upkeep().plan(NS, live, loaded, desired, 10.0, True)
    assert missing == ("a",) and [s.name for s in steps] == ["a"]
