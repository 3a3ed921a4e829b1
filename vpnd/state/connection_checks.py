"""One ipsec_site_connection of a state file, checked on its own (pure).

Its errors are its own: the caller gives each connection a Checker of its
own, so that a bad connection is only that connection's problem. Each
check below reads one part of it (the peer, the CIDRs, the PSK, the MTU,
the local address, DPD) in the order the errors are reported.
"""
from __future__ import annotations

import sys
from typing import Any

from vpnd.base import bounds
from vpnd.base.errors import shown
from vpnd.base.model import Connection, Dpd
from vpnd.state import ip_parse, neutron
from vpnd.state.checker import Checker, flat_or_nested, get, kind, not_utf8
from vpnd.state.ike_identities import HOSTNAME_RE
from vpnd.state.policy_checks import one, policy


def connection(c: Checker, path: str, d: Any, ext: dict,
               subnet_cidr) -> Connection | None:
    """The connection at `path`, or None (its errors in `c`). `ext`: the
    service's external addresses by key; `subnet_cidr`: its subnet, the
    local side of a connection that names none (Neutron's legacy mode)."""
    if not isinstance(d, dict):
        c.error(path, f"must be an object, not {kind(d)}")
        return None
    before = len(c.errors)
    defaults = neutron.CONNECTION_DEFAULTS
    cid = c.ident(f"{path}.id", get(d, "id", ""))
    peer_address, peer_ip = _peer_address(c, path, d)
    peer_id = c.identity(f"{path}.peer_id", get(d, "peer_id", ""))
    local_id = c.identity(f"{path}.local_id", get(d, "local_id", ""), required=False)
    local_cidrs = _endpoints(c, path, d, "local", subnet_cidr)
    peer_cidrs = _endpoints(c, path, d, "peer", None)
    inner_version = _inner_version(c, path, local_cidrs, peer_cidrs)
    psk = _psk(c, path, d)
    mtu = _mtu(c, path, d, inner_version)
    initiator = c.choice(f"{path}.initiator",
                         get(d, "initiator", defaults["initiator"]),
                         neutron.INITIATORS)
    admin = c.boolean(f"{path}.admin_state_up",
                      get(d, "admin_state_up", defaults["admin_state_up"]))
    dpd = _dpd(c, path, d)
    external = _external(c, path, d, ext, peer_ip)
    ike = policy(c, f"{path}.ikepolicy", get(d, "ikepolicy", {}), ike=True)
    ipsec = policy(c, f"{path}.ipsecpolicy", get(d, "ipsecpolicy", {}), ike=False)
    if local_cidrs and peer_cidrs and ike is not None:
        _ikev1_pairs(c, path, len(local_cidrs), len(peer_cidrs), ike.ike_version)
    if len(c.errors) > before:
        return None
    # Equal values are one object (one(), sys.intern): the local side, DPD
    # and the local address are most often alike in every connection, and
    # an agent's peer_id is its peer_address (0.3 kB a connection). The
    # peer side is each one's own.
    return Connection(
        id=cid, peer_address=peer_address,
        peer_id=peer_address if peer_id == peer_address else peer_id, local_id=local_id,
        local_cidrs=one(tuple(sys.intern(str(n)) for n in local_cidrs)),
        peer_cidrs=tuple(str(n) for n in peer_cidrs),
        psk=psk, mtu=mtu, initiator=initiator, dpd=one(dpd), admin_state_up=admin,
        external_ip=sys.intern(str(external)) if external is not None else "",
        ikepolicy=ike, ipsecpolicy=ipsec)


def _peer_address(c: Checker, path: str, d: dict):
    """(peer_address, its IP if it is one): an address or a host name."""
    peer_address = c.string(f"{path}.peer_address", get(d, "peer_address", ""))
    peer_ip = None
    if peer_address is None:
        return None, None
    peer_ip = ip_parse.address(peer_address)
    if peer_ip is None:
        if not HOSTNAME_RE.match(peer_address):
            c.error(f"{path}.peer_address", f"{shown(peer_address)} is neither "
                                            "an IP address nor a host name")
            return None, None
    # It becomes remote_addrs: "any" there takes IKE from anywhere.
    peer_address = c.one_peer(f"{path}.peer_address", peer_address)
    return peer_address, peer_ip if peer_address is not None else None


def _inner_version(c: Checker, path: str, local_cidrs, peer_cidrs) -> int | None:
    """The IP version inside the tunnel: both sides' CIDRs must agree."""
    if not (local_cidrs and peer_cidrs):
        return None
    if local_cidrs[0].version != peer_cidrs[0].version:
        c.error(f"{path}.peer_cidrs", "IP version differs from local_cidrs "
                f"(IPv{peer_cidrs[0].version} vs IPv{local_cidrs[0].version})")
    return local_cidrs[0].version


def _psk(c: Checker, path: str, d: dict) -> str | None:
    psk = get(d, "psk", "")
    if not isinstance(psk, str) or not psk:
        # Never echo the value: it is a secret even when it is malformed.
        c.error(f"{path}.psk", "must be a non-empty string")
        return None
    if len(psk) > neutron.MAX_PSK_LENGTH:
        c.error(f"{path}.psk", f"longer than {neutron.MAX_PSK_LENGTH} characters")
        return None
    if not_utf8(psk):
        # Its own error, here: in a pipelined batch it failed the encoding
        # of every connection of its namespace.
        c.error(f"{path}.psk", "holds a lone surrogate, which has no UTF-8 encoding")
        return None
    return psk


def _mtu(c: Checker, path: str, d: dict, inner_version: int | None) -> int | None:
    mtu = c.integer(f"{path}.mtu", get(d, "mtu", neutron.CONNECTION_DEFAULTS["mtu"]),
                    minimum=0, maximum=neutron.MAX_MTU)
    if mtu is not None and inner_version and mtu < neutron.MIN_MTU[inner_version]:
        c.error(f"{path}.mtu", f"must be at least {neutron.MIN_MTU[inner_version]} "
                               f"for IPv{inner_version}, not {mtu}")
    return mtu


def _external(c: Checker, path: str, d: dict, ext: dict, peer_ip):
    """The local address: the connection's own, else the service's."""
    external_ip = get(d, "external_ip", "")
    if external_ip != "":  # a wrong type is an error, never "absent"
        external = c.address(f"{path}.external_ip", external_ip)
    else:
        # As neutron-vpnaas's get_external_ip_based_on_peer: the service's
        # address of the peer's family, else whatever address it has (a
        # family mismatch is then reported below).
        version = peer_ip.version if peer_ip is not None else 4
        candidates = (ext.get(f"external_v{version}_ip"), ext.get("external_ip"),
                      ext.get("external_v4_ip"), ext.get("external_v6_ip"))
        external = next((a for a in candidates if a is not None), None)
    if (external is not None and peer_ip is not None
            and external.version != peer_ip.version):
        c.error(f"{path}.peer_address", f"is IPv{peer_ip.version} but the local "
                f"address {external} is IPv{external.version}")
    return external


def _ikev1_pairs(c: Checker, path: str, local: int, peer: int, ike_version: str) -> None:
    pairs = bounds.children(local, peer, ike_version)
    if pairs > bounds.IKEV1_PAIRS:
        c.error(path, f"IKEv1 makes a CHILD_SA of each local x peer CIDR pair: "
                      f"{local} x {peer} = {pairs}, more than the "
                      f"{bounds.IKEV1_PAIRS} one connection may have; use IKEv2 "
                      "(one CHILD_SA for all) or fewer CIDRs")


def _endpoints(c: Checker, path: str, d: dict, side: str, fallback):
    """CIDRs of one side: `<side>_cidrs`, else an endpoint group, else the
    service subnet (Neutron's legacy mode, local side only)."""
    key = f"{side}_cidrs"
    if get(d, key, None) is not None:
        return c.cidrs(f"{path}.{key}", d[key])
    group_key = f"{side}_ep_group"
    group = get(d, group_key, None)
    if group is not None:
        gpath = f"{path}.{group_key}"
        if not isinstance(group, dict):
            c.error(gpath, f"must be an object, not {kind(group)}")
            return None
        if get(group, "type", "cidr") != "cidr":
            c.error(f"{gpath}.type", "only 'cidr' endpoint groups can be used "
                    "here: subnet ids mean nothing outside Neutron")
            return None
        return c.cidrs(f"{gpath}.endpoints", get(group, "endpoints", []))
    if fallback is not None:
        return [fallback]
    c.error(f"{path}.{key}", "is required (or an endpoint group"
            + (", or the service's subnet" if side == "local" else "") + ")")
    return None


def _dpd(c: Checker, path: str, d: dict) -> Dpd | None:
    """DPD from the agent's flat keys or the API's nested `dpd` object."""
    values = flat_or_nested(c, path, d, "dpd", neutron.DPD_DEFAULTS)
    if values is None:
        return None
    action = c.choice(*values["action"], neutron.DPD_ACTIONS)
    interval = c.integer(*values["interval"], minimum=0, maximum=neutron.MAX_DPD_SECONDS)
    timeout = c.integer(*values["timeout"], minimum=0, maximum=neutron.MAX_DPD_SECONDS)
    if interval is not None and timeout is not None and timeout <= interval:
        c.error(values["timeout"][0], f"must be greater than the DPD interval "
                                      f"({timeout} <= {interval})")
    if None in (action, interval, timeout):
        return None
    return Dpd(action, interval, timeout)
