"""What a charon reports it has: loaded connections, secrets and SAs."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChildSa:
    name: str
    uniqueid: str
    state: str  # INSTALLED, REKEYING, ...


@dataclass(frozen=True)
class IkeSa:
    name: str
    uniqueid: str
    state: str  # ESTABLISHED, CONNECTING, ...
    children: tuple[ChildSa, ...]


@dataclass(frozen=True)
class LiveState:
    conns: frozenset[str]  # loaded connection names
    shared: frozenset[str]  # ids of loaded shared secrets
    sas: tuple[IkeSa, ...] = ()

    @property
    def ike_sas(self) -> frozenset[str]:
        """Names of the connections that have an IKE_SA, in any state."""
        return frozenset(sa.name for sa in self.sas)


EMPTY = LiveState(frozenset(), frozenset(), ())
