"""What a charon reports it has: loaded connections, secrets and SAs."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChildSa:
    name: str
    uniqueid: str
    state: str  # INSTALLED, REKEYING, ...
    spi_in: str = ""
    spi_out: str = ""
    age: int = 0  # seconds since installed
    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0
    local_ts: tuple[str, ...] = ()
    remote_ts: tuple[str, ...] = ()
    algorithms: str = ""  # e.g. "AES_CBC-128/HMAC_SHA2_256_128/MODP_2048"

    @property
    def spi_key(self) -> tuple[str, str]:
        """The same on both ends (one's in is the other's out)."""
        return tuple(sorted((self.spi_in, self.spi_out)))


@dataclass(frozen=True)
class IkeSa:
    name: str
    uniqueid: str
    state: str  # ESTABLISHED, CONNECTING, ...
    children: tuple[ChildSa, ...]
    spi_i: str = ""  # initiator and responder SPIs: the same on both ends
    spi_r: str = ""
    age: int = 0  # seconds since established
    algorithms: str = ""
    version: str = ""


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
