"""The addresses in a network namespace, read with netlink (pyroute2)."""
from __future__ import annotations

import ipaddress


def read(namespace: str) -> frozenset[str]:
    from pyroute2 import IPRoute
    with IPRoute(netns=namespace, flags=0) as ipr:
        found = set()
        for msg in ipr.get_addr():
            value = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if value:
                found.add(str(ipaddress.ip_address(value)))
        return frozenset(found)
