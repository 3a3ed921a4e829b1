"""The IKE and IPsec policies of one connection, and their lifetimes
(pure).

Checked against Neutron's vocabulary (neutron.py), with a warning for the
values neutron-vpnaas 29 removed. Policies are few and connections many,
so equal ones are shared: one object however many connections name it.
"""
from __future__ import annotations

from typing import Any

from vpnd.base.errors import shown
from vpnd.base.model import IkePolicy, IpsecPolicy, Lifetime
from vpnd.state import neutron
from vpnd.state.checker import Checker, flat_or_nested, get, kind


def policy(c: Checker, path: str, d: Any, ike: bool) -> IkePolicy | IpsecPolicy | None:
    """The ikepolicy (`ike`) or ipsecpolicy at `path`; None if invalid."""
    if not isinstance(d, dict):
        c.error(path, f"must be an object, not {kind(d)}")
        return None
    defaults = neutron.IKEPOLICY_DEFAULTS if ike else neutron.IPSECPOLICY_DEFAULTS
    value = {k: get(d, k, v) for k, v in defaults.items()}
    auth = c.choice(f"{path}.auth_algorithm", value["auth_algorithm"],
                    neutron.AUTH_ALGORITHMS)
    enc = c.choice(f"{path}.encryption_algorithm", value["encryption_algorithm"],
                   neutron.ENCRYPTION_ALGORITHMS)
    for key, chosen in (("auth_algorithm", auth), ("encryption_algorithm", enc)):
        _removed_in_29(c, path, d, key, chosen)
    pfs = c.choice(f"{path}.pfs", value["pfs"], neutron.PFS_GROUPS)
    lifetime = _lifetime(c, path, d)
    if ike:
        mode = c.choice(f"{path}.phase1_negotiation_mode",
                        value["phase1_negotiation_mode"], neutron.PHASE1_MODES)
        version = c.choice(f"{path}.ike_version", value["ike_version"],
                           neutron.IKE_VERSIONS)
        if None in (auth, enc, pfs, lifetime, mode, version):
            return None
        return one(IkePolicy(auth, enc, mode, lifetime, version, pfs))
    proto = c.choice(f"{path}.transform_protocol", value["transform_protocol"],
                     neutron.TRANSFORM_PROTOCOLS)
    encap = c.choice(f"{path}.encapsulation_mode", value["encapsulation_mode"],
                     neutron.ENCAPSULATION_MODES)
    if None in (auth, enc, pfs, lifetime, proto, encap):
        return None
    return one(IpsecPolicy(proto, auth, enc, encap, lifetime, pfs))


def _removed_in_29(c: Checker, path: str, d: dict, key: str, value) -> None:
    """Warn of a value neutron-vpnaas 29 no longer stores: an older server
    sends it and vpnd applies it, but the upgrade to 29 rewrites it, and
    the tunnel's proposal changes under its peer then. Only a value the
    file gives: vpnd's own default is no Neutron row an upgrade rewrites."""
    new = neutron.REMOVED_IN_29[key].get(value)
    if new is not None and get(d, key, None) is not None:
        c.warn(f"{path}.{key}", f"{shown(value)} is deprecated: neutron-vpnaas 29 removed "
                                f"it, and its database migration rewrites it to "
                                f"{shown(new)}; vpnd still accepts it")


def _lifetime(c: Checker, path: str, d: dict) -> Lifetime | None:
    values = flat_or_nested(c, path, d, "lifetime", neutron.DEFAULT_LIFETIME)
    if values is None:
        return None
    units = c.choice(*values["units"], neutron.LIFETIME_UNITS)
    value = c.integer(*values["value"], minimum=neutron.LIFETIME_MIN,
                      maximum=neutron.MAX_LIFETIME.get(units, 2**31 - 1))
    if units is None or value is None:
        return None
    return one(Lifetime(units, value))


# Policies are few and connections many: equal ones are one object (at
# 10,000 connections, 0.3 kB a connection less). Bounded all the same.
_SEEN: dict = {}


def one(value):
    """`value`, or an equal one seen before (immutable values only)."""
    if len(_SEEN) > 4096:
        _SEEN.clear()
    return _SEEN.setdefault(value, value)
