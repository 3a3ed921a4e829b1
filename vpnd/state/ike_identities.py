"""IKE identities and peer addresses: whether one names exactly one peer
(pure).

A PSK is as private as the peer it is bound to: an id or address that
charon, or the resolver before it, reads as "any", a wildcard, a subnet
or a range makes it any peer's. These rules follow strongSwan's
identification.c and inet_aton, and Neutron's '@' before a tenant's id.
The checker's `identity` and `one_peer` report them against a JSON path.
"""
from __future__ import annotations

import re

from vpnd.state import ip_parse, neutron

# A DNS host name (RFC 1123 labels), an optional final dot.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")

MAX_ID = neutron.MAX_ID_LENGTH
# After '@' (or before it in user@host): printable, no spaces or quotes,
# and no '=': charon reads any id holding one as a distinguished name (or
# a key id), not as the name written. No '*' either: in a name it is a
# wildcard ("@*" matches every FQDN). Lengths are bounded by the callers.
IDNAME_RE = re.compile(r"^[A-Za-z0-9._:#+~/-]+$")
# "@#..." is a key id given in hex.
KEYID_RE = re.compile(r"^#[0-9A-Fa-f]+$")
# A user part that starts like this is read by charon as the id's type,
# not as part of user@host ("keyid:x@host" is a key id): its prefixes
# (identification.c), matched regardless of case.
TYPE_PREFIXES = ("ipv4:", "ipv6:", "ipv4net:", "ipv6net:", "ipv4range:", "ipv6range:",
                 "rfc822:", "email:", "userfqdn:", "fqdn:", "dns:", "asn1dn:", "asn1gn:",
                 "xmppaddr:", "keyid:", "uri:")
# Those of them that make an id a subnet or a range of addresses.
MANY_PREFIXES = ("ipv4net:", "ipv6net:", "ipv4range:", "ipv6range:")


# What inet_aton, and so getaddrinfo, takes as an IPv4 address: 1 to 4
# parts, each decimal, octal or hex ("0x0" is 0.0.0.0).
LEGACY_IPV4_RE = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}\.?$")
# What strongSwan's identification_create_from_string reads as ID_ANY.
ANY_IDS = frozenset({"", "%any", "%any6", "0.0.0.0", "*", "::", "0::0"})


def _is_address(value: str) -> bool:
    return ip_parse.address(value) is not None


def more_than_one_peer(value: str) -> str | None:
    """Why charon would read this identity or address as more than one
    host (so a PSK any peer could use), or None. strongSwan takes %any,
    0.0.0.0, ::, * as "any", and a '*' in a name as a wildcard; an
    all-zero address in any spelling is the unspecified address; an
    address before a '/' is a subnet, two joined by '-' a range; and what
    is host-name-shaped but ends in a number is read as an address,
    subnet or range (198.51.100.1-198.51.100.9) by strongSwan, or as a
    legacy-form IPv4 address ("0", "0x0") by the resolver that turns a
    peer_address into remote_addrs."""
    if value in ANY_IDS:
        return "strongSwan reads it as %any, any peer"
    if value.startswith("@"):
        # An @name, or the '@' Neutron puts before a tenant's id: what
        # follows must name one peer on its own too ("@0.0.0.0", "@%any"),
        # or an id is only one '@' away from meaning any peer.
        why = more_than_one_peer(value.lstrip("@"))
        return why and f"without its '@', {why}"
    if "*" in value:
        return "'*' is a wildcard: strongSwan matches it with every id of that shape"
    if value.lower().startswith(MANY_PREFIXES) or _subnet_or_range(value):
        return "strongSwan reads it as a subnet or a range of addresses"
    if "@" in value:
        return None
    ip = ip_parse.address(value)
    if ip is not None:
        return "it is the unspecified address, which strongSwan reads as any peer" \
            if ip.value == 0 else None
    if value.rstrip(".").rsplit(".", 1)[-1].isdigit():
        return ("a host name cannot end in a number: strongSwan reads it as an "
                "address, subnet or range")
    if LEGACY_IPV4_RE.match(value):
        return "the resolver reads it as an IPv4 address in a legacy form"
    return None


def _subnet_or_range(value: str) -> bool:
    """As identification.c reads an id without '@': an address before a
    '/' is a subnet whatever follows (atoi("x") is /0), else two
    addresses joined by '-' a range."""
    if "/" in value:
        return _is_address(value.split("/", 1)[0])
    low, dash, high = value.partition("-")
    return bool(dash) and _is_address(low) and _is_address(high)


def _name(value: str) -> bool:
    """What charon reads after an '@' as one FQDN (or, "#hex", a key id)."""
    return bool(IDNAME_RE.match(value)) and (not value.startswith("#")
                                             or bool(KEYID_RE.match(value)))


def written_identity(value: str) -> bool:
    """Whether `value` has the shape of an id a tenant writes: an address,
    a host name, an @name (an FQDN of the name, "@#hex" a key id) or
    user@host. At most MAX_ID characters. Whether it names one peer is
    more_than_one_peer's question."""
    if len(value) > MAX_ID:
        return False
    if HOSTNAME_RE.match(value) or _is_address(value):
        return True
    if value.startswith("@"):
        return _name(value[1:])
    user, _, host = value.partition("@")
    return bool(host and IDNAME_RE.match(user) and HOSTNAME_RE.match(host)
                and not user.lower().startswith(TYPE_PREFIXES))


def sent_identity(value: str) -> bool:
    """Whether `value` is an id as neutron-vpnaas's server sends it: when
    either id is not an address, make_vpnservice_dict puts an '@' before
    both, so a tenant's user@host arrives as @user@host, an address as
    @198.51.100.7 and an @name as @@name, each at most MAX_ID characters
    after that '@' (the tenant's bound, Neutron's column). charon reads it
    as one FQDN (a user FQDN after "@@", a key id after "@#")."""
    body = value[1:]
    return (value.startswith("@") and len(body) <= MAX_ID
            and (_name(body) or written_identity(body)))
