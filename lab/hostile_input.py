"""The costliest state files a tenant can write, and what one costs vpnd.

Used by the fault tests and the benchmark: each builder returns a state
document of at most `cap` bytes as JSON (a file at state_file_max_bytes),
shaped to make validation or rendering as expensive as it can be.
`python -m lab.hostile_input FILE` checks and renders one file in this
process and prints what it took (wall time, peak RSS), for a measurement
in a fresh interpreter.
"""
from __future__ import annotations

import json
import sys
import time

from .factory import connection_doc, service_doc

IKEV1 = {"ike_version": "v1"}


def cidrs(n: int, second_octet: int) -> list[str]:
    """n distinct /32s in the benchmark range 198.18.0.0/15."""
    return [f"198.{18 + second_octet % 2}.{i // 250}.{i % 250 + 1}/32" for i in range(n)]


def ikev1_cross(local: int, peer: int, conn_id: str = "cross") -> dict:
    """One IKEv1 connection of local x peer CIDRs: a CHILD_SA for each pair."""
    return connection_doc(conn_id, "hostile-psk-cross", local_cidrs=cidrs(local, 0),
                          peer_cidrs=cidrs(peer, 1), ikepolicy=IKEV1)


def filled(cap: int, make, namespace: str = "hostile") -> dict:
    """A service of as many connections `make(i)` as fit in `cap` bytes."""
    one = len(json.dumps(make(0)))
    base = len(json.dumps(service_doc("svc-hostile", [], namespace=namespace)))
    n = max(1, (cap - base) // (one + 2))
    doc = service_doc("svc-hostile", [make(i) for i in range(n)], namespace=namespace)
    while len(json.dumps(doc)) > cap and doc["ipsec_site_connections"]:
        doc["ipsec_site_connections"].pop()
    return doc


def worst_cases(cap: int, pairs_max: int, cidrs_max: int) -> dict[str, dict]:
    """What costs most within `cap` bytes, by what it amplifies."""
    side = max(1, int(pairs_max ** 0.5))
    return {
        "plain connections": filled(cap, lambda i: connection_doc(
            f"c{i}", f"hostile-psk-{i}", peer_cidrs=[f"198.19.{i // 250 % 250}.{i % 250 + 1}/32"])),
        "IKEv1 cross products at the pair bound": filled(
            cap, lambda i: ikev1_cross(side, side, f"x{i}")),
        "CIDRs at the per-side bound": filled(cap, lambda i: connection_doc(
            f"w{i}", f"hostile-psk-{i}", local_cidrs=cidrs(cidrs_max, 0),
            peer_cidrs=cidrs(cidrs_max, 1), ikepolicy={"ike_version": "v2"})),
        "every field wrong": filled(cap, lambda i: {
            "id": "", "peer_address": [], "peer_id": {}, "psk": 1, "mtu": "x",
            "local_cidrs": [None], "peer_cidrs": "x", "initiator": 0,
            "dpd": [], "ikepolicy": {"pfs": 0, "ike_version": 0, "lifetime": {"value": "y"}},
            "ipsecpolicy": {"pfs": [], "encapsulation_mode": {}}}),
    }


def cost(path: str) -> dict:
    """Read, validate and render one file as the daemon does; its cost."""
    from vpnd.drivers.strongswan_mapping import render
    from vpnd.base.errors import Unsupported
    from vpnd.state.one_file import read_parsed
    t0 = time.perf_counter()
    parsed = read_parsed(path, 1 << 30)
    service, errors = parsed.service, parsed.all_errors
    rendered = 0
    for conn in (service.connections if service else ()):
        try:
            rendered += len(render(conn, libipsec=True).children)
        except Unsupported:
            pass
    took = time.perf_counter() - t0
    return {"seconds": round(took, 4), "children": rendered, "errors": len(errors),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's VmHWM (ru_maxrss would carry the parent's across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


if __name__ == "__main__":
    print(json.dumps(cost(sys.argv[1])))
