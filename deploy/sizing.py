"""The memory a node's vpnd needs, from the measured figures in sizing.json.

    python3 deploy/sizing.py                       # the stated node
    python3 deploy/sizing.py --routers 50 --connections 2000 [--no-metrics]

prints the need, the limit (need x headroom) and the values to put in the
DaemonSet's resources and in a systemd drop-in's MemoryMax=. Standard
library only; tests/unit/test_deploy_manifests.py uses it to tie the
shipped manifests to the figures.

In spawn mode every charon is in vpnd's cgroup (the pod's, or
vpnd.service's). A cgroup's memory counts each process's own (anonymous)
pages and counts a shared file page once, however many processes map it
(it is page cache, charged once). So the right basis for N charons is
their PSS, which shares each shared page out among the processes mapping
it: the PSS of all of them adds up to the pages they use between them,
once each. RSS would count charon's libraries 500 times (9.1 MiB a charon
instead of 1.6). vpnd is one process: its RSS is its share.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

FIGURES = Path(__file__).resolve().with_name("sizing.json")
UNITS = {"KiB": 1 / 1024, "MiB": 1.0}  # in MiB


def load(path: Path = FIGURES) -> dict:
    return json.loads(path.read_text())


def mib(figure: dict) -> float:
    return figure["value"] * UNITS[figure["unit"]]


def metrics_mib(f: dict, connections: int) -> float:
    """What metrics add to vpnd's peak RSS: a straight line through the
    two measured points (1,000 and 10,000 connections), never below the
    smaller one."""
    lo, hi = mib(f["metrics_added_1000"]), mib(f["metrics_added_10000"])
    per = (hi - lo) / 9000
    return max(lo, lo + per * (connections - 1000))


def charons_mib(f: dict, routers: int) -> float:
    """The PSS of `routers` charons with (almost) nothing loaded: the pages
    they share (libraries), once, and each one's own; a straight line
    through one charon alone and the bench's 500."""
    one, many = f["charon_pss_one_router"], f["charon_pss_all_routers"]
    own = (mib(many) - mib(one)) / (many["routers"] - one["routers"])
    shared = mib(one) - own * one["routers"]
    return shared + own * routers if routers else 0.0


def need_mib(sizing: dict, routers: int, connections: int, metrics: bool = True) -> float:
    """Memory (MiB) a node of `routers` router namespaces (one charon each)
    and `connections` connections between them needs, without headroom."""
    f = sizing["figures"]
    n = connections
    vpnd = mib(f["vpnd_base"]) + mib(f["vpnd_per_connection"]) * n
    if metrics:
        vpnd += metrics_mib(f, n)
    charons = charons_mib(f, routers) + mib(f["charon_per_connection"]) * n
    # run_dir is a tmpfs: charon.log (one full load's worth) and status.json twice.
    run_dir = (mib(f["charon_log_per_connection"]) + 2 * mib(f["status_json_per_connection"])) * n
    return vpnd + charons + run_dir


def limit_mib(sizing: dict, routers: int, connections: int, metrics: bool = True) -> float:
    return need_mib(sizing, routers, connections, metrics) * sizing["headroom"]["value"]


def round_up(value_mib: float, step: int = 64) -> int:
    """Up to a whole multiple of `step` MiB."""
    return int(math.ceil(value_mib / step) * step)


def main(argv=None) -> None:
    sizing = load()
    node = sizing["node"]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--routers", type=int, default=node["routers"])
    p.add_argument("--connections", type=int, default=node["connections"])
    p.add_argument("--no-metrics", dest="metrics", action="store_false", default=node["metrics"])
    a = p.parse_args(argv)
    need = need_mib(sizing, a.routers, a.connections, a.metrics)
    limit = limit_mib(sizing, a.routers, a.connections, a.metrics)
    print(f"{a.routers} routers, {a.connections} connections, metrics "
          f"{'on' if a.metrics else 'off'}: need {need:.0f} MiB, limit {limit:.0f} MiB "
          f"(x{sizing['headroom']['value']})")
    print(f"DaemonSet: requests: {{cpu: {sizing['cpu_request']['value']}m, "
          f"memory: {round_up(need)}Mi}}, limits: {{memory: {round_up(limit)}Mi}}")
    print(f"systemd drop-in: [Service] MemoryMax={round_up(limit)}M")


if __name__ == "__main__":
    main()
