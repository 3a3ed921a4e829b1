"""A connection's `mtu`, applied to its tunnel's traffic in the namespace.

charon routes each peer subnet into the tunnel through table 220 (via
ipsec0 with kernel-libipsec). vpnd puts the connection's MTU on those
routes (a route MTU, set through netlink with pyroute2): traffic into the
tunnel, forwarded or local, then fits it, and a too large packet with DF
set gets "fragmentation needed" back. The route MTU only ever lowers the
MTU: an `mtu` at or above the tunnel device's own leaves the route as is.
"""
from __future__ import annotations

import ipaddress

TABLE = 220


def wanted(conns) -> dict[str, int]:
    """peer CIDR -> MTU for the routes into the tunnel (pure). Where two
    connections share a peer subnet the smaller MTU wins."""
    result: dict[str, int] = {}
    for conn in conns:
        for cidr in conn.peer_cidrs:
            result[cidr] = min(conn.mtu, result.get(cidr, conn.mtu))
    return result


def apply(namespace: str, mtus: dict[str, int]) -> dict[str, str]:
    """Set route MTUs in `namespace`; returns {cidr: outcome} for status:
    "applied", "no route yet" (no CHILD_SA) or "above the device MTU"."""
    # Imported here: pyroute2 costs 60 ms at start, and a cold start
    # should not wait for what only ACTIVE tunnels need.
    from pyroute2 import IPRoute
    outcome = {cidr: "no route yet" for cidr in mtus}
    with IPRoute(netns=namespace) as ipr:
        links = {link["index"]: link.get("mtu") for link in ipr.get_links()}
        for route in ipr.route("dump", table=TABLE):
            dst = route.get("dst")
            if dst is None:
                continue
            cidr = str(ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False))
            if cidr not in mtus:
                continue
            mtu, device_mtu = mtus[cidr], links.get(route.get("oif"))
            if device_mtu is not None and mtu >= device_mtu:
                outcome[cidr] = "above the device MTU"
                continue
            outcome[cidr] = "applied"
            if _route_mtu(route) == mtu:
                continue
            ipr.route("replace", dst=dst, dst_len=route["dst_len"], table=TABLE,
                      family=route["family"], oif=route.get("oif"),
                      prefsrc=route.get("prefsrc"), gateway=route.get("gateway"),
                      proto=route["proto"], priority=route.get("priority"),
                      metrics={"mtu": mtu})
    return outcome


def _route_mtu(route) -> int | None:
    metrics = route.get_attr("RTA_METRICS")
    return metrics.get_attr("RTAX_MTU") if metrics is not None else None
