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
    """The ikepolicy (`ike`) or ipsecpolicy at `path`; None if invalid.
    One that checked clean before, value for value, is not checked again:
    every connection of a full sync carries the same one or two."""
    if not isinstance(d, dict):
        c.error(path, f"must be an object, not {kind(d)}")
        return None
    frozen = _frozen(d)
    key = (ike, frozen)
    if frozen is not None and (known := _CHECKED.get(key)) is not None:
        return known
    problems = len(c.errors) + len(c.warnings)
    checked = _checked(c, path, d, ike)
    if frozen is not None and checked is not None and len(c.errors) + len(c.warnings) == problems:
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = checked
    return checked


# The policies that checked clean, by (ike, _frozen): a few objects at most in
# practice, bounded all the same.
_CHECKED: dict = {}
_CHECKED_MAX = 256
# What a key may hold: JSON scalars whose equality is the checks' own
# (1 and true are equal in Python but not to the checks: the type is in
# the key; floats, which have two zeros, are left out), and short texts.
_SCALARS = frozenset({str, int, bool, type(None)})
_KEY_TEXT_MAX = 255
_KEY_ITEMS_MAX = 32


def _frozen(value, depth: int = 1):
    """`value` as a hashable key, each scalar with its type; None when it
    holds anything else, or more than a policy object does (objects
    nested `depth` deep at most: a nested lifetime)."""
    t = type(value)
    if t is dict:
        if depth < 0 or len(value) > _KEY_ITEMS_MAX:
            return None
        items = []
        for k, v in value.items():
            if (frozen := _frozen(v, depth - 1)) is None:
                return None
            items.append((k, frozen))
        return tuple(items)
    if t in _SCALARS and not (t is str and len(value) > _KEY_TEXT_MAX):
        return t, value
    return None


def _checked(c: Checker, path: str, d: dict, ike: bool) -> IkePolicy | IpsecPolicy | None:
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
