"""Field checks for state files: typed values that collect errors.

Pure. A Checker gathers every problem of one file, each an InputError with
the file, the JSON path and what is wrong; its helpers return None for a
bad value so that validation goes on and reports the rest too.
"""
from __future__ import annotations

import re
from typing import Any

from vpnd.base import bounds
from vpnd.base.errors import InputError, shown
from vpnd.state import ip_parse
from vpnd.state.ike_identities import MAX_ID, more_than_one_peer, sent_identity, \
    written_identity

# Connection ids become charon connection and CHILD_SA names; keep them to
# characters that survive VICI, swanctl and journal field values unchanged.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
NETNS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

MISSING = object()


def not_utf8(value: str) -> bool:
    """A str that cannot be encoded (JSON's "\\ud800" decodes to a lone
    surrogate): it would fail the VICI message, the status file and the
    journal it reaches."""
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


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
        address = ip_parse.address(value)
        if address is None:
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
        net = ip_parse.network(value.strip())
        if net is None:
            self.error(path, f"{shown(value)} is not a valid CIDR")
            return None
        if net.value != net.first:  # as ip != network, without making two IPAddresses
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


def flat_or_nested(c: Checker, path: str, d: dict, name: str, defaults: dict):
    """Neutron's agent payload says `<name>_<key>`, its API `<name>: {key}`.

    Returns {key: (json_path, value)} with the path of wherever the value
    came from, so that an error points at the key the user actually wrote.
    """
    nested = get(d, name, {})
    if not isinstance(nested, dict):
        c.error(f"{path}.{name}", f"must be an object, not {kind(nested)}")
        return None
    values = {}
    for key, default in defaults.items():
        flat = get(d, f"{name}_{key}", MISSING)
        inner = get(nested, key, MISSING)
        if flat is not MISSING and inner is not MISSING and flat != inner:
            c.error(f"{path}.{name}.{key}", f"contradicts {path}.{name}_{key}")
        if flat is not MISSING:
            values[key] = (f"{path}.{name}_{key}", flat)
        elif inner is not MISSING:
            values[key] = (f"{path}.{name}.{key}", inner)
        else:
            values[key] = (f"{path}.{name}_{key}", default)
    return values
