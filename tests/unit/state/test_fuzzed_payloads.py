"""10,000 seeded mutations of an agent payload through decoding,
validation and rendering, in-process: each is valid or a clean error,
never an exception (lab/fuzzcheck.py says what is checked)."""
from __future__ import annotations

from collections import Counter

import pytest

from lab.fuzz import payloads
from lab.fuzzcheck import check

SEED, COUNT = 20261126, 10_000


@pytest.mark.fault
def test_ten_thousand_mutated_payloads_are_valid_or_clean_errors(figure):
    tally: Counter = Counter()
    for i, raw in payloads(SEED, COUNT, "fz-none"):
        path = f"/state/fz-{i}.json"
        try:
            check(raw, path, tally)
        except Exception as e:
            raise AssertionError(f"payload {i} (seed {SEED}): {type(e).__name__}: "
                                 f"{str(e)[:500]}") from e
    partial = tally["valid service, invalid connections"]
    figure("fuzzed agent payloads through validation, in-process",
           f"{COUNT}: {tally['valid']} valid, {partial} with invalid connections only, "
           f"{tally['refused']} refused, exceptions 0")
    assert tally["valid"] + partial + tally["refused"] == COUNT
    # The fuzz reaches both sides: a mutation that never yields a valid
    # document, or never a refused one, tests nothing.
    assert tally["valid"] > COUNT // 20 and tally["refused"] > COUNT // 10 and partial
    assert tally["rendered connections"] > 0
