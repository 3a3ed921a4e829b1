"""The actions a step is made of: each is one write (VICI, or netlink for
a route MTU), frozen, and says what it does (`describe()`), so that
`vpnd plan` is a plain print and a driver executes them by type.

A load's message is given, or rendered from `of` (a DesiredConn) just
before it is sent: a cold start of 10,000 connections then never holds
10,000 rendered messages at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vpnd.base.conns import DesiredConn


@dataclass(frozen=True)
class LoadShared:
    secret_id: str
    message: dict | None = field(default=None, repr=False)
    of: DesiredConn | None = field(default=None, repr=False, compare=False)

    def body(self) -> dict:
        return self.message if self.message is not None else self.of.secret()

    def describe(self) -> str:
        return f"load-shared {self.secret_id}"


@dataclass(frozen=True)
class LoadConn:
    name: str
    message: dict | None = None
    # Into a charon that lost this connection (it died, or was restarted):
    # the peer may still hold the SAs that died with it, so the first
    # IKE_SA tells it to clear them (INITIAL_CONTACT).
    initial_contact: bool = False
    # Its local address is not on this node (standby.py): loaded, not started.
    start: bool = True
    of: DesiredConn | None = field(default=None, repr=False, compare=False)

    def body(self) -> dict:
        return self.message if self.message is not None else self.of.message()

    def describe(self) -> str:
        return (f"load-conn {self.name}" + (" with INITIAL_CONTACT" if self.initial_contact
                                             else "")
                + ("" if self.start else " (standby: not started)"))


@dataclass(frozen=True)
class UnloadConn:
    name: str

    def describe(self) -> str:
        return f"unload-conn {self.name}"


@dataclass(frozen=True)
class TerminateIke:
    # unload-conn leaves a responder's SAs up: terminate is what really ends
    # a removed or changed tunnel on this side.
    name: str
    # The IKE_SAs (unique ids) it ends, as the plan saw them: what a vpnd
    # killed mid-change must not end twice (Intent).
    ending: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"terminate ike {self.name}"


@dataclass(frozen=True)
class TerminateDuplicate:
    """End one surplus SA of a connection (ike or child, by unique id)."""

    name: str
    kind: str  # "ike" | "child"
    uniqueid: str

    def describe(self) -> str:
        return f"terminate duplicate {self.kind} SA #{self.uniqueid} of {self.name}"


@dataclass(frozen=True)
class Initiate:
    """Start a bi-directional connection that has no SA (without waiting)."""

    name: str
    children: tuple[str, ...]

    def describe(self) -> str:
        return f"initiate {self.name}"


@dataclass(frozen=True)
class UnloadShared:
    secret_id: str

    def describe(self) -> str:
        return f"unload-shared {self.secret_id}"


@dataclass(frozen=True)
class SetRouteMtu:
    """Put a connection's mtu on its route into the tunnel (netlink, not
    charon: the route is charon's, the MTU on it is vpnd's)."""

    route: object = field(compare=False)  # mtu.Route, as read
    mtu: int = 0  # 0: take the route MTU off (the device's applies)

    def describe(self) -> str:
        if not self.mtu:
            return f"remove route mtu {self.route.mtu} for {self.route.cidr}"
        return f"set route mtu {self.mtu} for {self.route.cidr}"


Action = (LoadShared | LoadConn | UnloadConn | TerminateIke | UnloadShared
          | TerminateDuplicate | Initiate | SetRouteMtu)
