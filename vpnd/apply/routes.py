"""The routes into the tunnel (table 220) in a namespace, read and given
an MTU through netlink (pyroute2). mtu.py decides; this only does."""
from __future__ import annotations

import ipaddress

from vpnd.system import netns
from vpnd.plan.mtu import TABLE, Route


# netns.iproute: a netlink socket made in the namespace, never the
# namespace itself (vpnd must never make a router namespace appear).
# pyroute2 is imported there, when first needed: it costs 60 ms at start,
# and a cold start should not wait for what only ACTIVE tunnels need.
def read(namespace: str) -> list[Route]:
    routes = []
    with netns.iproute(namespace) as ipr:
        links = {link["index"]: link.get("mtu") for link in ipr.get_links()}
        for route in ipr.route("dump", table=TABLE):
            dst = route.get("dst")
            if dst is None:
                continue
            cidr = str(ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False))
            attrs = {"dst": dst, "dst_len": route["dst_len"], "family": route["family"],
                     "oif": route.get("oif"), "prefsrc": route.get("prefsrc"),
                     "gateway": route.get("gateway"), "proto": route["proto"],
                     "priority": route.get("priority")}
            routes.append(Route(cidr, _route_mtu(route), links.get(route.get("oif")),
                                tuple(attrs.items())))
    return routes


def set_mtu(namespace: str, route: Route, mtu: int) -> None:
    """Replace the route with `mtu` on it; 0: with no route MTU."""
    metrics = {"metrics": {"mtu": mtu}} if mtu else {}
    with netns.iproute(namespace) as ipr:
        ipr.route("replace", table=TABLE, **metrics, **dict(route.attrs))


def _route_mtu(route) -> int | None:
    metrics = route.get_attr("RTA_METRICS")
    return metrics.get_attr("RTAX_MTU") if metrics is not None else None
