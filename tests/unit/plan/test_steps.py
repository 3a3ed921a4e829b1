"""A step's reason is an enum that reads, compares and goes to JSON as its
text, and conf/plan.schema.json documents every member."""
from __future__ import annotations

import json
from pathlib import Path

from vpnd.plan.steps import UPKEEP, Reason, Step


def test_the_schema_lists_every_reason_and_no_other():
    schema = json.loads((Path(__file__).resolve().parents[3] / "conf" / "plan.schema.json")
                        .read_text())
    assert list(Reason) == schema["items"]["properties"]["reason"]["enum"]


def test_a_reason_is_its_text():
    step = Step("ns", "c1", "svc", Reason.NO_SA, (), None)
    assert json.dumps(step.to_dict()["reason"]) == '"no SA"'
    assert f"{step.reason}-not-recorded" == "no SA-not-recorded"
    assert step.reason == "no SA" and "no SA" in UPKEEP and step.upkeep
    assert not Step("ns", "c1", "svc", Reason.CHANGED, (), None).upkeep
