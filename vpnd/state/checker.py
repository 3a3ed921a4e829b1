"""Field checks for state files: typed values that collect errors.

Pure. A Checker gathers every problem of one file, each an InputError with
the file, the JSON path and what is wrong; its helpers return None for a
bad value so that validation goes on and reports the rest too.
"""
from __future__ import annotations

import re
from typing import Any

import netaddr

from vpnd.base import bounds
from vpnd.state import neutron
from vpnd.base.errors import InputError, shown

# Connection ids become charon connection and CHILD_SA names; keep them to
# characters that survive VICI, swanctl and journal field values unchanged.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
NETNS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")

MISSING = object()
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
    try:
        netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        return True
    except (netaddr.AddrFormatError, ValueError):
        return False


def not_utf8(value: str) -> bool:
    """A str that cannot be encoded (JSON's "\\ud800" decodes to a lone
    surrogate): it would fail the VICI message, the status file and the
    journal it reaches."""
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


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
    try:
        if netaddr.IPAddress(value, flags=netaddr.INET_PTON).value == 0:
            return "it is the unspecified address, which strongSwan reads as any peer"
        return None
    except (netaddr.AddrFormatError, ValueError):
        pass
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


class Checker:
    """Collects errors for one file; helpers return None for a bad value."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[InputError] = []
        # What is allowed but worth an operator's attention (deprecated values).
        self.warnings: list[InputError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(InputError(self.file, path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(InputError(self.file, path, message))

    def choice(self, path, value, allowed):
        if value not in allowed:
            self.error(path, f"{shown(value)} is not one of: {', '.join(allowed)}")
            return None
        return value

    def integer(self, path, value, minimum=None, maximum=None):
        # Neutron's API converts numeric strings; so do we.
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be an integer, not {kind(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(path, f"must be at least {minimum}, not {value}")
            return None
        if maximum is not None and value > maximum:
            self.error(path, f"must be at most {maximum}, not {value}")
            return None
        return value

    def boolean(self, path, value):
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, not {kind(value)}")
            return None
        return value

    def string(self, path, value, required=True, max_length=1024):
        if not isinstance(value, str):
            self.error(path, f"must be a string, not {kind(value)}")
            return None
        if required and not value.strip():
            self.error(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.error(path, f"{len(value)} characters, more than the {max_length} allowed")
            return None
        if not_utf8(value):
            self.error(path, f"{shown(value)} is not valid text: it holds a lone "
                             "surrogate, which has no UTF-8 encoding")
            return None
        return value.strip()

    def identity(self, path, value, required=True):
        """An IKE identity charon reads as one peer: as a tenant writes it
        (written_identity) or as Neutron sends it (sent_identity)."""
        # Neutron's '@' comes on top of the tenant's MAX_ID.
        at = isinstance(value, str) and value.startswith("@")
        if at and len(value) > MAX_ID + 1:
            self.error(path, f"{len(value) - 1} characters after its '@', more than "
                             f"the {MAX_ID} allowed")
            return None
        value = self.string(path, value, required, max_length=MAX_ID + at)
        if not value:
            return value
        if value == "@":
            # What Neutron sends for an empty peer_id: '@' and no name.
            self.error(path, "'@' is neither an IP address, a host name, an @name nor "
                             "user@host: no id follows the '@'")
            return None
        # First: that an id means any peer is the reason worth giving.
        if self.one_peer(path, value) is None:
            return None
        if not (written_identity(value) or sent_identity(value)):
            self.error(path, f"{shown(value)} is neither an IP address, a host name, "
                             "an @name nor user@host, nor one of them after an '@'")
            return None
        return value

    def one_peer(self, path, value):
        """`value`, if it names one host; an identity or address that
        means "any peer" would make its PSK anyone's."""
        why = more_than_one_peer(value)
        if why:
            self.error(path, f"{shown(value)} would not name one peer: {why}")
            return None
        return value

    def ident(self, path, value):
        value = self.string(path, value)
        if value is not None and not ID_RE.match(value):
            self.error(path, f"{shown(value)} is not a usable id (letters, digits, "
                             "'.', '_', ':', '-'; at most 128)")
            return None
        return value

    def address(self, path, value):
        value = self.string(path, value)
        if value is None:
            return None
        try:
            address = netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        except (netaddr.AddrFormatError, ValueError):
            self.error(path, f"{shown(value)} is not an IPv4 or IPv6 address")
            return None
        if address.value == 0:
            self.error(path, f"{shown(value)} is the unspecified address, not one host's")
            return None
        return address

    def cidrs(self, path, value):
        if not isinstance(value, list):
            self.error(path, f"must be a list of CIDRs, not {kind(value)}")
            return None
        if not value:
            self.error(path, "must list at least one CIDR")
            return None
        # Counted before any is parsed: what a side costs is bounded first.
        if len(value) > bounds.CIDRS_PER_SIDE:
            self.error(path, f"{len(value)} CIDRs, more than the {bounds.CIDRS_PER_SIDE} "
                             "one side of a connection may list")
            return None
        result = []
        for i, item in enumerate(value):
            # Older Neutron payloads carry {"cidr": ...} objects here.
            if isinstance(item, dict) and "cidr" in item:
                item = item["cidr"]
            net = self.cidr(f"{path}[{i}]", item)
            if net is None:
                return None
            result.append(net)
        versions = {n.version for n in result}
        if len(versions) > 1:
            self.error(path, "mixes IPv4 and IPv6 CIDRs")
            return None
        return result

    def cidr(self, path, value):
        if not isinstance(value, str):
            self.error(path, f"must be a CIDR string, not {kind(value)}")
            return None
        try:
            net = netaddr.IPNetwork(value.strip())
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.error(path, f"{shown(value)} is not a valid CIDR")
            return None
        if net.ip != net.network:
            self.error(path, f"{shown(value)} has host bits set; "
                             f"did you mean {net.cidr}?")
            return None
        return net


def kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string",
            bool: "a boolean", int: "an integer", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def get(obj: dict, key: str, default=MISSING):
    """A key's value; JSON null counts as absent, as Neutron treats it."""
    value = obj.get(key)
    return default if value is None else value
