"""The routes into the tunnel (table 220) in a namespace, read and given
an MTU through netlink (pyroute2). mtu.py decides; this only does."""
from __future__ import annotations

import ipaddress

from .mtu import TABLE, Route



# flags=0: pyroute2 opens the namespace, and by default would create it if
# it were gone (removed between vpnd's check and this read): vpnd must
# never make a router namespace appear.
def read(namespace: str) -> list[Route]:
    # Imported here: pyroute2 costs 60 ms at start, and a cold start
    # should not wait for what only ACTIVE tunnels need.
    from pyroute2 import IPRoute
    routes = []
    with IPRoute(netns=namespace, flags=0) as ipr:
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
    from pyroute2 import IPRoute
    metrics = {"metrics": {"mtu": mtu}} if mtu else {}
    with IPRoute(netns=namespace, flags=0) as ipr:
        ipr.route("replace", table=TABLE, **metrics, **dict(route.attrs))


def _route_mtu(route) -> int | None:
    metrics = route.get_attr("RTA_METRICS")
    return metrics.get_attr("RTAX_MTU") if metrics is not None else None
