"""What a full look reads of the namespace itself (netlink, not charon):
its addresses, which say the connections in standby (HA routers: the VIP
is on another node), and its routes, which say the route MTU steps due.
Here so that a look names these reads; netlink errors come in several
kinds, and each is logged and survived here.
"""
from __future__ import annotations

from typing import Mapping

from vpnd.apply import routes
from vpnd.base.live import LiveState
from vpnd.plan import mtu
from vpnd.plan import standby as standby_mod
from vpnd.plan.steps import Step
from vpnd.system import addresses


def standby_of(ns: str, desired: Mapping, exists: bool, log) -> dict[str, str]:
    """connection -> its local address, not on this node, read from the
    namespace's addresses (`exists`: whether the namespace does)."""
    return standby_mod.standby(desired, present_addresses(ns, exists, log))


def present_addresses(ns: str, exists: bool, log) -> frozenset[str] | None:
    """The namespace's addresses, or None if they could not be read."""
    if exists:
        try:
            return addresses.read(ns)
        except Exception as e:  # netlink errors come in several kinds
            log.warning("addresses not read", netns=ns, error=str(e))
    return None


def mtu_steps(ns: str, desired: Mapping, live: LiveState, exists: bool,
              log) -> tuple[tuple[Step, ...], dict[str, str]]:
    """(The route MTU steps due for the connections that have an SA, each
    such connection's MTU state): read from the namespace's routes."""
    have_sa = live.ike_sas  # a property that builds a set: once
    up = [c for name, c in desired.items() if name in have_sa] if have_sa else []
    if not up or not exists:
        return (), {}
    try:
        return mtu.plan(ns, up, routes.read(ns))
    except Exception as e:  # netlink errors come in several kinds
        log.warning("routes not read", error=str(e))
        return (), {c.name: f"not applied: {e}" for c in up}
