"""Figure 12: the costliest state file a tenant can write, at the size cap.

Each worst case of lab/hostile_input.py (and the security review's own
example, 600 x 600 IKEv1 CIDRs in 22 kB) is read, validated and rendered
in a fresh interpreter, as `vpnd check` and the daemon's loop do: its
wall time and peak RSS (the interpreter with vpnd's modules is about 25 MB
of that). Pure CPU: no charon, no namespace.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lab.factory import service_doc
from lab.hostile_input import ikev1_cross, worst_cases
from vpnd.base import bounds
from vpnd.state.one_file import MAX_BYTES

ROOT = Path(__file__).resolve().parent.parent

# A file at the cap costs at most this: a fraction of a round at 10,000
# connections, and the memory the node is sized with room for.
SECONDS, RSS_MB = 1.0, 64.0


def run(bench, cap: int = MAX_BYTES) -> None:
    cases = worst_cases(cap, bounds.IKEV1_PAIRS, bounds.CIDRS_PER_SIDE)
    cases["600 x 600 IKEv1 CIDRs (the review's example)"] = service_doc(
        "svc-cross", [ikev1_cross(600, 600)], namespace="hostile")
    for name, doc in cases.items():
        path = bench.work / f"tenant-{len(bench.rows)}.json"
        path.write_text(json.dumps(doc))
        out = subprocess.run([sys.executable, "-m", "lab.hostile_input", str(path)],
                             capture_output=True, text=True, timeout=300, check=True,
                             cwd=ROOT)
        cost = json.loads(out.stdout)
        size = path.stat().st_size
        ok = cost["seconds"] <= SECONDS and cost["peak_rss_mb"] <= RSS_MB
        bench.row(f"12 file of {size // 1024} kB, {name}: read+check+render",
                  (cost["seconds"],) * 3, target=f"<= {SECONDS:g} s, <= {RSS_MB:g} MB", ok=ok)
        bench.row(f"12   its peak RSS ({cost['children']} CHILD_SAs, {cost['errors']} errors)",
                  (cost["peak_rss_mb"],) * 3, unit="MB")
