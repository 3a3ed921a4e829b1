"""Turn one parsed state file (a JSON object) into a validated Service.

Pure: no I/O. Every problem is reported as an InputError naming the file,
the JSON path and what is wrong; all problems of a file are collected, not
just the first, so that an operator fixes a file in one pass.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import netaddr

from vpnd.base import bounds
from vpnd.state import neutron
from vpnd.state.checker import ID_RE, Checker, HOSTNAME_RE, MISSING, NETNS_RE, get, kind, not_utf8
from vpnd.base.errors import InputError, shown
from vpnd.base.model import Connection, Dpd, IkePolicy, IpsecPolicy, Lifetime, Service


@dataclass(frozen=True)
class Parsed:
    """One file's content, its errors confined to what they touch."""

    # None when the service itself is invalid; else its valid connections.
    service: Service | None
    # Errors of the service (and of its connections, when it is invalid).
    errors: list[InputError] = field(default_factory=list)
    # Errors of single connections of a valid service, by connection id
    # (by JSON path when the id cannot be read).
    broken: dict[str, list[InputError]] = field(default_factory=dict)
    # The ids the file names, read as far as they can be: (service id,
    # connection ids), for reporting an invalid file under them.
    ids: tuple[str | None, tuple[str, ...]] = (None, ())
    # What the file says that is allowed but deprecated, wherever it is
    # (valid or not): shown beside its status, never a reason to refuse.
    warnings: list[InputError] = field(default_factory=list)

    @property
    def all_errors(self) -> list[InputError]:
        return [*self.errors, *(e for errs in self.broken.values() for e in errs)]


def parse_service(data: Any, file: str) -> tuple[Service | None, list[InputError]]:
    """Validate one state file's content; returns (service, []) or (None,
    errors): all or nothing, for `vpnd check FILE` and the tests."""
    parsed = parse_confined(data, file)
    errors = parsed.all_errors
    return (None, errors) if errors else (parsed.service, [])


def parse_confined(data: Any, file: str) -> Parsed:
    """Validate one state file's content, confining each error to the
    smallest unit that holds it: a bad connection is only that connection's
    problem; a bad service-level value makes the service invalid."""
    c = Checker(file)
    if not isinstance(data, dict):
        c.error("$", f"the file must hold a JSON object, not {kind(data)}")
        return Parsed(None, c.errors)
    service, broken = _service(c, data)
    ids = _ids(data)
    if c.errors:
        return Parsed(None, [*c.errors, *(e for errs in broken.values() for e in errs)],
                      ids=ids, warnings=c.warnings)
    return Parsed(service, [], broken, ids, c.warnings)


def _ids(d: dict) -> tuple[str | None, tuple[str, ...]]:
    def ident(value):
        return value if isinstance(value, str) and ID_RE.match(value) else None
    conns = d.get("ipsec_site_connections")
    cids = [ident(get(c, "id", None)) for c in conns if isinstance(c, dict)] \
        if isinstance(conns, list) else []
    return ident(d.get("id")), tuple(dict.fromkeys(c for c in cids if c))


def _service(c: Checker, d: dict) -> tuple[Service | None, dict[str, list[InputError]]]:
    sid = c.ident("$.id", get(d, "id", ""))
    # A value of the wrong type is an error, never "absent": "router_id": {}
    # must not mean "no router" (it made a charon start for namespace '').
    router_id = get(d, "router_id", "")
    if router_id != "":
        router_id = c.ident("$.router_id", router_id)
    namespace = get(d, "namespace", "")
    if namespace != "":
        namespace = c.string("$.namespace", namespace)
        if namespace is not None and not NETNS_RE.match(namespace):
            c.error("$.namespace", f"{shown(namespace)} is not a valid network "
                                   "namespace name")
    elif router_id:
        namespace = f"qrouter-{router_id}"
        # Linux limits nothing here, but ip-netns names are file names.
        if not NETNS_RE.match(namespace):
            c.error("$.router_id", f"qrouter-{router_id} is not a valid "
                                   "namespace name; set $.namespace")
    elif router_id == "":
        c.error("$", "needs router_id or namespace (the router namespace "
                     "the service runs in)")
    admin = c.boolean("$.admin_state_up", get(d, "admin_state_up", True))

    ext = {}
    for key in ("external_ip", "external_v4_ip", "external_v6_ip"):
        if get(d, key, None) is not None:
            ext[key] = c.address(f"$.{key}", d[key])
    for key, version in (("external_v4_ip", 4), ("external_v6_ip", 6)):
        if ext.get(key) is not None and ext[key].version != version:
            c.error(f"$.{key}", f"must be an IPv{version} address")

    subnet_cidr = None
    subnet = get(d, "subnet", None)
    if subnet is not None:
        if not isinstance(subnet, dict):
            c.error("$.subnet", f"must be an object, not {kind(subnet)}")
        elif get(subnet, "cidr", None) is not None:
            subnet_cidr = c.cidr("$.subnet.cidr", subnet["cidr"])

    raw_conns = get(d, "ipsec_site_connections", [])
    if not isinstance(raw_conns, list):
        c.error("$.ipsec_site_connections", f"must be a list, not {kind(raw_conns)}")
        raw_conns = []
    if len(raw_conns) > bounds.CHILDREN_PER_FILE:
        # Each connection is at least one CHILD_SA: refused before any is read.
        c.error("$.ipsec_site_connections", f"{len(raw_conns)} connections, more than "
                f"the {bounds.CHILDREN_PER_FILE} CHILD_SAs one file may declare")
        raw_conns = []
    children = 0
    conns = []
    broken: dict[str, list[InputError]] = {}
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_conns):
        path = f"$.ipsec_site_connections[{i}]"
        one = Checker(c.file)  # this connection's errors are its own
        conn = _connection(one, path, raw, ext, subnet_cidr)
        c.warnings.extend(one.warnings)  # its warnings are the file's
        if conn is not None and conn.id in seen:
            one.error(f"{path}.id", f"{shown(conn.id)} is already used by "
                                    f"$.ipsec_site_connections[{seen[conn.id]}]")
            # The first of the two keeps the id; this one is reported by path.
            broken.setdefault(path, []).extend(one.errors)
            continue
        if one.errors:
            cid = get(raw, "id", None) if isinstance(raw, dict) else None
            key = cid if isinstance(cid, str) and ID_RE.match(cid) and cid not in seen \
                else path
            broken.setdefault(key, []).extend(one.errors)
            if key == cid:
                seen[cid] = i  # a later connection with its id is a duplicate
            continue
        n = bounds.children(len(conn.local_cidrs), len(conn.peer_cidrs),
                            conn.ikepolicy.ike_version)
        if children + n > bounds.CHILDREN_PER_FILE:
            one.error(path, f"its {n} CHILD_SA(s) would make this file's "
                            f"{children + n}, more than the {bounds.CHILDREN_PER_FILE} "
                            "one file may declare")
            broken.setdefault(conn.id, []).extend(one.errors)
            seen[conn.id] = i
            continue
        children += n
        seen[conn.id] = i
        conns.append(conn)
    if c.errors:
        return None, broken
    return Service(id=sid, router_id=router_id or "", namespace=namespace,
                   admin_state_up=admin, connections=tuple(conns), source=c.file), broken


def _connection(c: Checker, path: str, d: Any, ext: dict,
                subnet_cidr) -> Connection | None:
    if not isinstance(d, dict):
        c.error(path, f"must be an object, not {kind(d)}")
        return None
    before = len(c.errors)
    defaults = neutron.CONNECTION_DEFAULTS
    cid = c.ident(f"{path}.id", get(d, "id", ""))

    peer_address = c.string(f"{path}.peer_address", get(d, "peer_address", ""))
    peer_ip = None
    if peer_address is not None:
        try:
            peer_ip = netaddr.IPAddress(peer_address, flags=netaddr.INET_PTON)
        except (netaddr.AddrFormatError, ValueError):
            if not HOSTNAME_RE.match(peer_address):
                c.error(f"{path}.peer_address", f"{shown(peer_address)} is neither "
                                                "an IP address nor a host name")
                peer_address = None
        # It becomes remote_addrs: "any" there takes IKE from anywhere.
        if peer_address is not None:
            peer_address = c.one_peer(f"{path}.peer_address", peer_address)
            if peer_address is None:
                peer_ip = None
    peer_id = c.identity(f"{path}.peer_id", get(d, "peer_id", ""))
    local_id = c.identity(f"{path}.local_id", get(d, "local_id", ""), required=False)

    local_cidrs = _endpoints(c, path, d, "local", subnet_cidr)
    peer_cidrs = _endpoints(c, path, d, "peer", None)
    inner_version = None
    if local_cidrs and peer_cidrs:
        if local_cidrs[0].version != peer_cidrs[0].version:
            c.error(f"{path}.peer_cidrs", "IP version differs from local_cidrs "
                    f"(IPv{peer_cidrs[0].version} vs IPv{local_cidrs[0].version})")
        inner_version = local_cidrs[0].version

    psk = get(d, "psk", "")
    if not isinstance(psk, str) or not psk:
        # Never echo the value: it is a secret even when it is malformed.
        c.error(f"{path}.psk", "must be a non-empty string")
        psk = None
    elif len(psk) > neutron.MAX_PSK_LENGTH:
        c.error(f"{path}.psk", f"longer than {neutron.MAX_PSK_LENGTH} characters")
        psk = None
    elif not_utf8(psk):
        # Its own error, here: in a pipelined batch it failed the encoding
        # of every connection of its namespace.
        c.error(f"{path}.psk", "holds a lone surrogate, which has no UTF-8 encoding")
        psk = None

    mtu = c.integer(f"{path}.mtu", get(d, "mtu", defaults["mtu"]), minimum=0,
                    maximum=neutron.MAX_MTU)
    if mtu is not None and inner_version and mtu < neutron.MIN_MTU[inner_version]:
        c.error(f"{path}.mtu", f"must be at least {neutron.MIN_MTU[inner_version]} "
                               f"for IPv{inner_version}, not {mtu}")
    initiator = c.choice(f"{path}.initiator",
                         get(d, "initiator", defaults["initiator"]),
                         neutron.INITIATORS)
    admin = c.boolean(f"{path}.admin_state_up",
                      get(d, "admin_state_up", defaults["admin_state_up"]))
    dpd = _dpd(c, path, d)

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

    ike = _policy(c, f"{path}.ikepolicy", get(d, "ikepolicy", {}), ike=True)
    ipsec = _policy(c, f"{path}.ipsecpolicy", get(d, "ipsecpolicy", {}), ike=False)
    if local_cidrs and peer_cidrs and ike is not None:
        pairs = bounds.children(len(local_cidrs), len(peer_cidrs), ike.ike_version)
        if pairs > bounds.IKEV1_PAIRS:
            c.error(path, f"IKEv1 makes a CHILD_SA of each local x peer CIDR pair: "
                          f"{len(local_cidrs)} x {len(peer_cidrs)} = {pairs}, more than the "
                          f"{bounds.IKEV1_PAIRS} one connection may have; use IKEv2 "
                          "(one CHILD_SA for all) or fewer CIDRs")

    if len(c.errors) > before:
        return None
    return Connection(
        id=cid, peer_address=peer_address, peer_id=peer_id, local_id=local_id,
        local_cidrs=tuple(sys.intern(str(n)) for n in local_cidrs),
        peer_cidrs=tuple(sys.intern(str(n)) for n in peer_cidrs),
        psk=psk, mtu=mtu, initiator=initiator, dpd=dpd, admin_state_up=admin,
        external_ip=str(external) if external is not None else "",
        ikepolicy=ike, ipsecpolicy=ipsec)


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
    values = _flat_or_nested(c, path, d, "dpd", neutron.DPD_DEFAULTS)
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


def _flat_or_nested(c: Checker, path: str, d: dict, name: str, defaults: dict):
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


def _policy(c: Checker, path: str, d: Any, ike: bool):
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
        return _one(IkePolicy(auth, enc, mode, lifetime, version, pfs))
    proto = c.choice(f"{path}.transform_protocol", value["transform_protocol"],
                     neutron.TRANSFORM_PROTOCOLS)
    encap = c.choice(f"{path}.encapsulation_mode", value["encapsulation_mode"],
                     neutron.ENCAPSULATION_MODES)
    if None in (auth, enc, pfs, lifetime, proto, encap):
        return None
    return _one(IpsecPolicy(proto, auth, enc, encap, lifetime, pfs))


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
    values = _flat_or_nested(c, path, d, "lifetime", neutron.DEFAULT_LIFETIME)
    if values is None:
        return None
    units = c.choice(*values["units"], neutron.LIFETIME_UNITS)
    value = c.integer(*values["value"], minimum=neutron.LIFETIME_MIN,
                      maximum=neutron.MAX_LIFETIME.get(units, 2**31 - 1))
    if units is None or value is None:
        return None
    return _one(Lifetime(units, value))


# Policies are few and connections many: equal ones are one object (at
# 10,000 connections, 0.3 kB a connection less). Bounded all the same.
_SEEN: dict = {}


def _one(value):
    if len(_SEEN) > 4096:
        _SEEN.clear()
    return _SEEN.setdefault(value, value)
