"""The desired-state model: one VPN service with its site connections.

Field names are Neutron VPNaaS's. Every value here has already been
validated and defaulted (see validation.py); nothing in this module does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Lifetime:
    units: str  # "seconds" or "kilobytes"
    value: int


@dataclass(frozen=True, slots=True)
class IkePolicy:
    auth_algorithm: str
    encryption_algorithm: str
    phase1_negotiation_mode: str
    lifetime: Lifetime
    ike_version: str
    pfs: str


@dataclass(frozen=True, slots=True)
class IpsecPolicy:
    transform_protocol: str
    auth_algorithm: str
    encryption_algorithm: str
    encapsulation_mode: str
    lifetime: Lifetime
    pfs: str


@dataclass(frozen=True, slots=True)
class Dpd:
    action: str
    interval: int
    timeout: int


@dataclass(frozen=True, slots=True)
class Connection:
    id: str
    peer_address: str
    peer_id: str
    local_id: str  # "" means: the local address
    local_cidrs: tuple[str, ...]
    peer_cidrs: tuple[str, ...]
    # repr=False: a PSK must never reach a log line through a dataclass repr.
    psk: str = field(repr=False)
    mtu: int
    initiator: str
    dpd: Dpd
    admin_state_up: bool
    external_ip: str  # "" means: any local address
    ikepolicy: IkePolicy
    ipsecpolicy: IpsecPolicy


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    router_id: str
    namespace: str
    admin_state_up: bool
    connections: tuple[Connection, ...]
    source: str  # the state file this service came from
