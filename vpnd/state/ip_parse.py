"""IP addresses and networks as state files spell them, parsed once (pure).

One connection's checks read its peer address four times (the address,
"one peer" for it and for its peer_id, the id's shape), and every
connection of a router names the same local address and subnets: at a
full sync of 10,000 files the parses were a fifth of validation. Each
text is parsed once and the answer kept, bounded: at most MEMO entries,
only texts short enough to be an address or a CIDR at all. The values
kept are shared: callers read them, never change them.
"""
from __future__ import annotations

import netaddr

MEMO = 1024
LONGEST = 64  # an IPv6 CIDR is at most 49 characters

_ADDRESSES: dict[str, netaddr.IPAddress | None] = {}
_NETWORKS: dict[str, netaddr.IPNetwork | None] = {}


def address(text: str) -> netaddr.IPAddress | None:
    """The IPv4 or IPv6 address `text` spells exactly (inet_pton), or None."""
    return _parsed(_ADDRESSES, text, _address)


def network(text: str) -> netaddr.IPNetwork | None:
    """The network `text` spells as netaddr reads a CIDR, or None."""
    return _parsed(_NETWORKS, text, netaddr.IPNetwork)


def _address(text: str) -> netaddr.IPAddress:
    return netaddr.IPAddress(text, flags=netaddr.INET_PTON)


def _parsed(memo: dict, text: str, parse):
    try:
        return memo[text]
    except KeyError:
        pass
    try:
        value = parse(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        value = None
    if len(text) <= LONGEST:
        if len(memo) >= MEMO:
            memo.clear()
        memo[text] = value
    return value
