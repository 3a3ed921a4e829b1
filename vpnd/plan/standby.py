"""HA routers (pure): a connection whose local address is not on this node
is in standby. In a Neutron HA router the same router namespace is on two
or three nodes and keepalived (VRRP) puts the router's external address,
the VIP, on the active one only; the service's external_ip is that VIP.

A connection in standby is loaded (ready for the VIP's return) but never
started: charon, told to start it, sends from the absent address and then
keeps to its retransmission schedule, even after the address appears
(measured: it notices the address, and waits for the next retransmit,
seconds to minutes later). vpnd ends its SAs when the address leaves and
initiates at once when it comes (see upkeep).
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Mapping


def local_address(model) -> str | None:
    """The address a connection's IKE_SA binds to, if it names one."""
    return _normalised(getattr(model, "external_ip", "") or "")


@functools.lru_cache(maxsize=4096)
def _normalised(address: str) -> str | None:
    # A node has few local addresses and many connections: parsed once each.
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def standby(desired: Mapping[str, object], present: frozenset[str] | None) -> dict[str, str]:
    """connection -> its absent local address. `present`: the namespace's
    addresses, normalised; None when they could not be read (then nothing
    is in standby: vpnd does not guess)."""
    if present is None:
        return {}
    out = {}
    for name, want in desired.items():
        address = local_address(getattr(want, "model", None))
        if address is not None and address not in present:
            out[name] = address
    return out


def reason(address: str) -> str:
    return f"standby: local address {address} not on this node"
