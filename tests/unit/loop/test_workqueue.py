"""The work queue: which keys are due, one back-off per key and its reset,
outcomes, and scopes. The clock is injected."""
from __future__ import annotations

import pytest

from lab.fakes import Clock
from vpnd.loop.workqueue import BACKOFF_MAX, Done, RequeueAfter, Retry, Terminal, WorkQueue


@pytest.fixture
def clock():
    return Clock()


def keys(taken):
    return [k for k, _ in taken]


def take_due(q):
    """What the workers do: take each key due now, earliest first, with
    its scope (adding one again while it runs queues it again)."""
    return [(k, q.take(k)) for k in q.due()]


def test_a_key_added_many_times_is_due_once_at_the_earliest_time(clock):
    q = WorkQueue(clock)
    q.add("b", at=1005.0)
    q.add("a")
    q.add("b", at=1002.0)
    q.add("a", at=1009.0)
    assert q.next_due() == 1000.0
    assert keys(take_due(q)) == ["a"]
    assert take_due(q) == [] and q.next_due() == 1002.0
    clock.now = 1002.0
    assert keys(take_due(q)) == ["b"] and q.next_due() is None


def test_due_keys_come_earliest_first(clock):
    q = WorkQueue(clock)
    for key, at in (("late", 999.0), ("early", 990.0), ("mid", 995.0)):
        q.add(key, at=at)
    assert keys(take_due(q)) == ["early", "mid", "late"]


def test_scopes_merge_and_everything_wins(clock):
    q = WorkQueue(clock)
    q.add("ns", scope={"a.json"})
    q.add("ns", scope={"b.json"})
    assert take_due(q) == [("ns", {"a.json", "b.json"})]
    q.add("ns", scope={"a.json"})
    q.add("ns", scope=None)
    q.add("ns", scope={"b.json"})
    assert take_due(q) == [("ns", None)]


def test_failures_back_off_doubling_up_to_the_maximum_and_success_resets(clock):
    q = WorkQueue(clock)
    delays = []
    for _ in range(9):
        q.add("k", urgent=True)
        take_due(q)
        q.finish("k", Retry("charon said no"))
        delays.append(q.next_due() - clock.now)
        clock.now = q.next_due()
    assert delays == [1, 2, 4, 8, 16, 32, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]
    assert q.failing() == {"k": "charon said no"}
    take_due(q)
    q.finish("k", Done())
    assert q.failing() == {} and q.next_due() is None
    q.finish("k", Retry("again"))
    assert q.next_due() - clock.now == 1  # from the start again


def test_a_key_backing_off_is_not_hurried_by_a_plain_add_but_is_by_an_urgent_one(clock):
    q = WorkQueue(clock)
    q.finish("k", Retry("refused", first=8.0))
    take_due(q)
    q.add("k")  # a resync, say: waits for the retry
    assert take_due(q) == [] and q.next_due() == 1008.0
    q.add("k", urgent=True)  # its file changed: now
    assert keys(take_due(q)) == ["k"]


def test_a_run_before_the_retry_time_keeps_the_schedule(clock):
    q = WorkQueue(clock)
    q.finish("k", Retry("no SA", first=3.0))
    assert not q.retrying("k")
    clock.now = 1001.0  # an event made it run early, still failing
    q.finish("k", Retry("no SA", first=3.0))
    assert q.next_due() == 1003.0
    clock.now = 1003.0
    assert q.retrying("k")  # this run is the retry
    take_due(q)
    q.finish("k", Retry("no SA", first=3.0))
    assert q.next_due() == 1009.0  # doubled only now


def test_requeue_after_is_a_timer_not_a_failure(clock):
    q = WorkQueue(clock)
    q.finish("k", Retry("x"))
    clock.now = 1001.0
    take_due(q)
    q.finish("k", RequeueAfter(1.5))
    assert q.failing() == {} and q.next_due() == 1002.5


def test_retry_with_a_recheck_looks_again_at_the_sooner_of_the_two(clock):
    q = WorkQueue(clock)
    q.finish("k", Retry("no SA", first=3.0, recheck=1.5))
    assert q.next_due() == 1001.5


def test_terminal_is_not_requeued_until_added_again(clock):
    q = WorkQueue(clock)
    q.finish("k", Terminal("namespace gone"))
    assert q.next_due() is None and q.failing() == {"k": "namespace gone"}
    q.add("k")
    assert keys(take_due(q)) == ["k"]


def test_is_due_says_what_due_lists(clock):
    q = WorkQueue(clock)
    q.add("now")
    q.add("later", at=clock.now + 5)
    assert q.is_due("now") and not q.is_due("later") and not q.is_due("never")
    clock.now += 5
    assert q.is_due("later") and set(q.due()) == {"now", "later"}
    q.take("now")
    assert not q.is_due("now")
