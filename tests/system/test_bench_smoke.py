"""The benchmark still runs (N=10 and 20, 3 namespaces): its figures are not
pass/fail here."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import require_system

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_smoke_run_prints_every_figure_and_cleans_up():
    require_system()
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout.split())
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--smoke"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("1 cold start, N=10, charon running", "1 cold start, N=20, from nothing",
                   "2 one change among N=10 (charon's log)", "2 one change among N=20",
                   "3 resync", "4 status latency", "5 idle CPU", "6 peak RSS, N=20",
                   "6 RSS per connection", "8 metrics scrape", "8 metrics: peak RSS added",
                   "9 3 namespaces x 2, from nothing", "charon PSS per namespace",
                   "one change in one of 3 namespaces", "10 vpnd status, N=20",
                   "11 cold start N=40, charon running", "11 all N=40 rewritten byte-identical",
                   "11 shared ikepolicy lifetime changed in all N=40",
                   "11 flood: N=40 new files", "IKEv1 cross products at the pair bound: read+check+render",
                   "12   its peak RSS"):
        assert figure in result.stdout, result.stdout
    assert "swanctl --load-all" in result.stdout and "charon floor" in result.stdout
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                               text=True).stdout.split())
    assert after <= before
