"""SA upkeep as steps: duplicates ended only after the grace period,
bi-directional connections without an SA initiated only on their key's
retry. The clock is a number passed in."""
from __future__ import annotations

from vpnd.base.live import IkeSa, LiveState
from vpnd.base.conns import AppliedConn, DesiredConn
from vpnd.plan.actions import Initiate, TerminateDuplicate
from vpnd.plan.upkeep import DUPLICATE_GRACE, Upkeep

NS = "qrouter-1"


def sa(uid, spi_i, spi_r, name="c1", state="ESTABLISHED", age=0):
    return IkeSa(name, uid, state, (), spi_i=spi_i, spi_r=spi_r, age=age)


def live(*sas, conns=("c1",)):
    return LiveState(frozenset(conns), frozenset(), tuple(sas))


def loaded(*names):
    return {n: AppliedConn(n, "svc", "svc.json", "fp", f"vpnd-{n}") for n in names}


def desired(initiates=True, *names):
    return {n: DesiredConn(n, "svc", "svc.json", "fp", {n: {}}, f"vpnd-{n}", {},
                           namespace=NS, children=(n,), initiates=initiates)
            for n in names or ("c1",)}


def actions(steps):
    return [a for s in steps for a in s.actions]


def test_a_duplicate_is_ended_only_once_it_has_lasted_the_grace_period():
    keeper, state = Upkeep(), live(sa("1", "aa", "01"), sa("2", "bb", "02"))
    steps, recheck, _ = keeper.plan(NS, state, loaded("c1"), desired(), 100.0, False)
    assert steps == () and recheck == DUPLICATE_GRACE
    steps, recheck, _ = keeper.plan(NS, state, loaded("c1"), desired(), 101.0, False)
    assert steps == () and recheck == DUPLICATE_GRACE - 1.0
    steps, recheck, _ = keeper.plan(NS, state, loaded("c1"), desired(),
                                    100.0 + DUPLICATE_GRACE, False)
    assert actions(steps) == [TerminateDuplicate("c1", "ike", "2")]
    assert [s.reason for s in steps] == ["duplicate"] and all(s.upkeep for s in steps)
    assert recheck is None
    # The plan says what it ends, and that the kept SA carries the traffic.
    assert steps[0].disrupts.to_dict() == {
        "ike_sas": ["2"], "child_sas": [], "interrupts_traffic": False,
        "why": "a duplicate IKE_SA: the other carries the traffic"}


def test_a_duplicate_that_resolves_itself_in_the_grace_period_is_left_alone():
    keeper = Upkeep()
    keeper.plan(NS, live(sa("1", "aa", "01"), sa("2", "bb", "02")), loaded("c1"),
                desired(), 100.0, False)
    steps, recheck, _ = keeper.plan(NS, live(sa("1", "aa", "01")), loaded("c1"), desired(),
                                    100.0 + DUPLICATE_GRACE, False)
    assert steps == () and recheck is None


def test_a_bi_directional_connection_without_sa_is_initiated_only_on_a_retry():
    keeper = Upkeep()
    steps, _, missing = keeper.plan(NS, live(), loaded("c1"), desired(), 100.0, False)
    assert steps == () and missing == ("c1",)
    steps, _, missing = keeper.plan(NS, live(), loaded("c1"), desired(), 103.0, True)
    assert actions(steps) == [Initiate("c1", ("c1",))] and missing == ("c1",)
    assert steps[0].record is None and steps[0].upkeep


def test_response_only_and_connections_not_loaded_are_never_initiated():
    keeper = Upkeep()
    steps, _, missing = keeper.plan(NS, live(), loaded("c1"), desired(False), 100.0, True)
    assert steps == () and missing == ()
    steps, _, missing = keeper.plan(NS, live(), loaded(), desired(), 100.0, True)
    assert steps == () and missing == ()


def test_a_connection_with_an_sa_in_any_state_is_not_initiated():
    keeper = Upkeep()
    steps, _, missing = keeper.plan(NS, live(sa("1", "aa", "01", state="CONNECTING")),
                                    loaded("c1"), desired(), 100.0, True)
    assert steps == () and missing == ()


def test_what_upkeep_keeps_of_a_namespace_goes_with_it():
    from vpnd.plan.upkeep import FORGET_AFTER
    keeper, state = Upkeep(), live(sa("1", "aa", "01"), sa("2", "bb", "02"))
    keeper.plan("qrouter-quiet", live(), loaded("c1"), desired(), 100.0, False)
    keeper.plan(NS, state, loaded("c1"), desired(), 100.0, False)
    assert set(keeper._surplus_seen) == {NS}  # nothing kept where nothing is pending
    # NS is gone: no look at it for longer than its grace and FORGET_AFTER.
    later = 100.0 + DUPLICATE_GRACE + FORGET_AFTER + 1
    keeper.plan("qrouter-other", live(), loaded("c1"), desired(), later, False)
    assert keeper._surplus_seen == {}
    # Were it back, its duplicate would be seen afresh.
    steps, recheck, _ = keeper.plan(NS, state, loaded("c1"), desired(), later, False)
    assert steps == () and recheck == DUPLICATE_GRACE
