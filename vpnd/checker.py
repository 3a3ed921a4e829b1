"""Field checks for state files: typed values that collect errors.

Pure. A Checker gathers every problem of one file, each an InputError with
the file, the JSON path and what is wrong; its helpers return None for a
bad value so that validation goes on and reports the rest too.
"""
from __future__ import annotations

import re
from typing import Any

import netaddr

from .errors import InputError, shown

# Connection ids become charon connection and CHILD_SA names; keep them to
# characters that survive VICI, swanctl and journal field values unchanged.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
NETNS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")

MISSING = object()
MAX_ID = 255
# After '@' (or before it in user@host): printable, no spaces or quotes.
IDNAME_RE = re.compile(r"^[A-Za-z0-9._:#+=~/-]{1,254}$")


def _is_address(value: str) -> bool:
    try:
        netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        return True
    except (netaddr.AddrFormatError, ValueError):
        return False


class Checker:
    """Collects errors for one file; helpers return None for a bad value."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[InputError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(InputError(self.file, path, message))

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
        return value.strip()

    def identity(self, path, value, required=True):
        """An IKE identity charon accepts: an address, a host name, an
        @name, or user@host."""
        value = self.string(path, value, required, max_length=MAX_ID)
        if not value:
            return value
        ok = (HOSTNAME_RE.match(value) or _is_address(value)
              or (value.startswith("@") and IDNAME_RE.match(value[1:]))
              or ("@" in value and IDNAME_RE.match(value.split("@", 1)[0])
                  and HOSTNAME_RE.match(value.split("@", 1)[1])))
        if not ok:
            self.error(path, f"{shown(value)} is neither an IP address, a host name, "
                             "an @name nor user@host")
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
            return netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        except (netaddr.AddrFormatError, ValueError):
            self.error(path, f"{shown(value)} is not an IPv4 or IPv6 address")
            return None

    def cidrs(self, path, value):
        if not isinstance(value, list):
            self.error(path, f"must be a list of CIDRs, not {kind(value)}")
            return None
        if not value:
            self.error(path, "must list at least one CIDR")
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
