"""What a charon reports it has: loaded connections, secrets and SAs."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


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

    @cached_property
    def ike_sas(self) -> frozenset[str]:
        """Names of the connections that have an IKE_SA, in any state."""
        return frozenset(self.by_name)

    @cached_property
    def by_name(self) -> dict[str, tuple[IkeSa, ...]]:
        """connection name -> its IKE_SAs (status asks per connection)."""
        out: dict[str, list[IkeSa]] = {}
        for sa in self.sas:
            out.setdefault(sa.name, []).append(sa)
        return {name: tuple(sas) for name, sas in out.items()}

    def patched(self, names, loaded, secrets, sas) -> "LiveState":
        """This state with connections `names` as they are now: `loaded`
        of them loaded (with `secrets`), their SAs `sas`; the rest as
        they were."""
        names = set(names)
        return LiveState((self.conns - names) | frozenset(loaded), self.shared | frozenset(secrets),
                         (*(sa for sa in self.sas if sa.name not in names), *sas))


EMPTY = LiveState(frozenset(), frozenset(), ())
