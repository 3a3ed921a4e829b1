"""IP addresses and networks as state files spell them, parsed once (pure).

One connection's checks read its peer address four times (the address,
"one peer" for it and for its peer_id, the id's shape), and every
connection of a router names the same local address and subnets: in a
full sync's profile the parses were a fifth of validation. Each text is
parsed once and the answer kept (functools.lru_cache, MEMO texts), only
texts short enough to be an address or a CIDR at all: a tenant's
megabyte of "address" is parsed, refused and not kept. The values kept
are shared: callers read them, never change them.
"""
from __future__ import annotations

from functools import lru_cache

import netaddr

MEMO = 1024
LONGEST = 64  # an IPv6 CIDR is at most 49 characters


def _parsed_once(parse):
    """`parse` with a text it refuses answered None, and its answers for
    short texts kept (`.kept`: the cache)."""
    def answer(text: str):
        try:
            return parse(text)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            return None
    kept = lru_cache(maxsize=MEMO)(answer)

    def parsed(text: str):
        return kept(text) if len(text) <= LONGEST else answer(text)
    parsed.kept = kept
    return parsed


# The IPv4 or IPv6 address a text spells exactly (inet_pton), or None.
address = _parsed_once(lambda text: netaddr.IPAddress(text, flags=netaddr.INET_PTON))
# The network a text spells as netaddr reads a CIDR, or None.
network = _parsed_once(netaddr.IPNetwork)
