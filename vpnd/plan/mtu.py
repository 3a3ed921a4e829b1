"""A connection's `mtu`, as steps on its tunnel's routes (pure).

charon routes each peer subnet into the tunnel through table 220 (via
ipsec0 with kernel-libipsec). vpnd puts the connection's MTU on those
routes (a route MTU; routes.py reads and writes them with netlink):
traffic into the tunnel, forwarded or local, then fits it, and a too large
packet with DF set gets "fragmentation needed" back. The route MTU only
ever lowers the MTU: an `mtu` at or above the tunnel device's own needs
none, and a lower one set before is taken off.
"""
from __future__ import annotations

from dataclasses import dataclass

from vpnd.plan.actions import SetRouteMtu
from vpnd.plan.steps import Reason, Step

TABLE = 220


@dataclass(frozen=True)
class Route:
    """One route into the tunnel, as netlink gave it (enough to replace it)."""

    cidr: str
    mtu: int | None  # the route MTU now, if any
    device_mtu: int | None
    attrs: tuple = ()  # (name, value) pairs routes.py needs to write it back


def wanted(conns) -> dict[str, int]:
    """peer CIDR -> MTU for the routes into the tunnel. Where two
    connections share a peer subnet the smaller MTU wins."""
    result: dict[str, int] = {}
    for conn in conns:
        for cidr in conn.peer_cidrs:
            result[cidr] = min(conn.mtu, result.get(cidr, conn.mtu))
    return result


def plan(ns: str, conns, routes: list[Route]) -> tuple[tuple[Step, ...], dict[str, str]]:
    """Steps that put each connection's mtu on its routes (`conns`: the
    desired connections that have SAs), and how each connection stands
    for status: "applied" (or about to be), "no route yet", "above the
    device MTU"."""
    mtus = wanted(c.model for c in conns)
    by_cidr = {r.cidr: r for r in routes}
    steps, outcome = [], {}
    for cidr, mtu in sorted(mtus.items()):
        route = by_cidr.get(cidr)
        if route is None:
            outcome[cidr] = "no route yet"
        elif route.device_mtu is not None and mtu >= route.device_mtu:
            outcome[cidr] = "above the device MTU"
            if route.mtu is not None:  # a lower mtu, set before, comes off
                owner = next(c for c in conns if cidr in c.model.peer_cidrs)
                steps.append(Step(ns, owner.name, owner.service_id, Reason.MTU,
                                  (SetRouteMtu(route, 0),), None))
        else:
            outcome[cidr] = "applied"
            if route.mtu != mtu:
                owner = next(c for c in conns if cidr in c.model.peer_cidrs)
                steps.append(Step(ns, owner.name, owner.service_id, Reason.MTU,
                                  (SetRouteMtu(route, mtu),), None))
    standing = {}
    for conn in conns:
        states = [outcome.get(cidr, "no route yet") for cidr in conn.model.peer_cidrs]
        standing[conn.name] = next((s for s in states if s != "applied"), "applied")
    return tuple(steps), standing
