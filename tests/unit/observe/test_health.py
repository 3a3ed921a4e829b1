"""`vpnd health` for probes: judged from the status file (health.py)."""
from __future__ import annotations

import calendar

from vpnd.observe.health import judge

T = calendar.timegm((2026, 11, 26, 10, 0, 0))
DOC = {"updated": "2026-11-26T10:00:00Z", "pid": 1, "failing": {}}


def test_ready_when_the_loop_wrote_status_lately_and_nothing_fails():
    assert judge(DOC, T + 5, 10) == (True, "ready")


def test_not_ready_while_a_namespace_fails_but_alive():
    doc = {**DOC, "failing": {"ns:qrouter-1": "charon not answering"}}
    assert judge(doc, T + 5, 10) == (False, "ns:qrouter-1: charon not answering")
    assert judge(doc, T + 5, 10, alive_only=True) == (True, "alive")


def test_neither_when_status_is_stale_or_missing():
    ok, why = judge(DOC, T + 61, 10)
    assert not ok and why == "status not rewritten for 61s (more than 60s)"
    assert judge(None, T, 10)[0] is False
    assert judge({"pid": 1}, T, 10)[0] is False
