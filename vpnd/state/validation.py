"""Turn one parsed state file (a JSON object) into a validated Service.

Pure: no I/O. Every problem is reported as an InputError naming the file,
the JSON path and what is wrong; all problems of a file are collected, not
just the first, so that an operator fixes a file in one pass.

This module reads the service level (ids, namespace, addresses, subnet)
and confines each connection's errors to that connection; the checks of
one connection are connection_checks', of its policies policy_checks'.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpnd.base import bounds
from vpnd.base.errors import InputError, shown
from vpnd.base.model import Connection, Service
from vpnd.state.checker import ID_RE, Checker, NETNS_RE, get, kind
from vpnd.state.connection_checks import connection


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

    @property
    def whole(self) -> Service | None:
        """The service, if all of it is valid: a last valid version."""
        return self.service if self.service is not None and not self.broken else None


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
    router_id, namespace = _namespace(c, d)
    admin = c.boolean("$.admin_state_up", get(d, "admin_state_up", True))
    ext = _external_addresses(c, d)
    subnet_cidr = _subnet_cidr(c, d)
    conns, broken = _connections(c, _connection_list(c, d), ext, subnet_cidr)
    if c.errors:
        return None, broken
    return Service(id=sid, router_id=router_id or "", namespace=namespace,
                   admin_state_up=admin, connections=tuple(conns), source=c.file), broken


def _namespace(c: Checker, d: dict):
    """(router_id, namespace): the namespace given, else the router's."""
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
    return router_id, namespace


def _external_addresses(c: Checker, d: dict) -> dict:
    """The service's own addresses by key, each of the version it names."""
    ext = {}
    for key in ("external_ip", "external_v4_ip", "external_v6_ip"):
        if get(d, key, None) is not None:
            ext[key] = c.address(f"$.{key}", d[key])
    for key, version in (("external_v4_ip", 4), ("external_v6_ip", 6)):
        if ext.get(key) is not None and ext[key].version != version:
            c.error(f"$.{key}", f"must be an IPv{version} address")
    return ext


def _subnet_cidr(c: Checker, d: dict):
    """The service's subnet: the local side of connections that name none."""
    subnet_cidr = None
    subnet = get(d, "subnet", None)
    if subnet is not None:
        if not isinstance(subnet, dict):
            c.error("$.subnet", f"must be an object, not {kind(subnet)}")
        elif get(subnet, "cidr", None) is not None:
            subnet_cidr = c.cidr("$.subnet.cidr", subnet["cidr"])
    return subnet_cidr


def _connection_list(c: Checker, d: dict) -> list:
    """The connections to read: none if there are more than one file may
    declare (each is at least one CHILD_SA: refused before any is read)."""
    raw_conns = get(d, "ipsec_site_connections", [])
    if not isinstance(raw_conns, list):
        c.error("$.ipsec_site_connections", f"must be a list, not {kind(raw_conns)}")
        raw_conns = []
    if len(raw_conns) > bounds.CHILDREN_PER_FILE:
        c.error("$.ipsec_site_connections", f"{len(raw_conns)} connections, more than "
                f"the {bounds.CHILDREN_PER_FILE} CHILD_SAs one file may declare")
        raw_conns = []
    return raw_conns


def _connections(c: Checker, raw_conns: list, ext: dict, subnet_cidr):
    """(the valid connections, the errors of the others by id or path).
    A connection's errors are its own; its warnings are the file's."""
    conns: list[Connection] = []
    broken: dict[str, list[InputError]] = {}
    seen: dict[str, int] = {}  # connection id -> the index that has it
    children = 0
    for i, raw in enumerate(raw_conns):
        path = f"$.ipsec_site_connections[{i}]"
        one = Checker(c.file)  # this connection's errors are its own
        conn = connection(one, path, raw, ext, subnet_cidr)
        c.warnings.extend(one.warnings)  # its warnings are the file's
        if conn is not None and conn.id in seen:
            one.error(f"{path}.id", f"{shown(conn.id)} is already used by "
                                    f"$.ipsec_site_connections[{seen[conn.id]}]")
            # The first of the two keeps the id; this one is reported by path.
            broken.setdefault(path, []).extend(one.errors)
            continue
        if one.errors:
            key = _broken_key(raw, path, seen)
            broken.setdefault(key, []).extend(one.errors)
            if key != path:
                seen[key] = i  # a later connection with its id is a duplicate
            continue
        n = bounds.children(len(conn.local_cidrs), len(conn.peer_cidrs),
                            conn.ikepolicy.ike_version)
        seen[conn.id] = i
        if children + n > bounds.CHILDREN_PER_FILE:
            one.error(path, f"its {n} CHILD_SA(s) would make this file's "
                            f"{children + n}, more than the {bounds.CHILDREN_PER_FILE} "
                            "one file may declare")
            broken.setdefault(conn.id, []).extend(one.errors)
            continue
        children += n
        conns.append(conn)
    return conns, broken


def _broken_key(raw, path: str, seen: dict[str, int]) -> str:
    """An invalid connection is reported under its id, if that can be read
    and is not taken; else under its JSON path."""
    cid = get(raw, "id", None) if isinstance(raw, dict) else None
    return cid if isinstance(cid, str) and ID_RE.match(cid) and cid not in seen else path
