"""Status: what each service and connection is doing, and why.

Building the report is pure, one state file's entry at a time
(`entry`, from the desired state and the `Facts` vpnd has observed); it is
shaped as neutron-vpnaas agents report status ([{"id", "status",
"ipsec_site_connections": {id: {"status"}}}]), with extra fields: the
reason when not ACTIVE, the namespace, the file, the SAs behind an ACTIVE
connection, since when each status stands, rekeys and the route MTU.
Writing and reading status.json are here too (write_fragments, read).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice

from vpnd.base.errors import InputError
from vpnd.base.live import LiveState
from vpnd.base.model import Service
from vpnd.system.files import write_atomically
from vpnd.state.desired import DesiredState
from vpnd.plan.standby import reason as standby_reason

ACTIVE, DOWN, ERROR = "ACTIVE", "DOWN", "ERROR"
Key = tuple[str, str]  # (namespace, connection id)


@dataclass(frozen=True)
class NamespaceView:
    """What is known of one namespace's charon: its live state, or why not."""

    live: LiveState | None
    reason: str = ""

    @property
    def answering(self) -> bool:
        """The last look found the namespace's charon answering."""
        return self.live is not None


@dataclass(frozen=True)
class Facts:
    """What vpnd has observed that an entry is built from, besides the
    desired state (observed.Observed.facts). Each is looked up with .get()
    by (namespace, connection id), unless it says otherwise."""

    views: Mapping[str, NamespaceView]  # by namespace
    children: Mapping[Key, tuple[str, ...]]  # the CHILD_SA names rendered
    errors: Mapping[Key, str]  # why a connection is ERROR
    failures: Mapping[Key, str]  # what charon's log says went wrong
    rekeys: Mapping[Key, tuple[int, int]]  # (IKE, CHILD) rekeys since counting_since
    counting_since: str
    mtu: Mapping[Key, str]  # how the route MTU stands
    # namespace -> connection -> its local address, not on this node (standby.py)
    standby: Mapping[str, Mapping[str, str]]
    # (service id, connection id) -> ((status, reason), when it began), as settled
    since: Mapping[tuple[str, str], tuple[tuple[str, str], str]]


def entry(path: str, desired: DesiredState, facts: Facts, now: str) -> dict:
    """One state file's entry, the one place status is built (pure): what
    the desired state and charon's views make of it (service_entry), and
    what else vpnd has seen of each connection. A status not settled
    before, or different, stands since `now`."""
    service = service_entry(path, desired, facts.views, facts.children, facts.errors,
                            facts.failures)
    ns = service.get("namespace")
    standby = facts.standby.get(ns, {})
    for cid, conn in service["ipsec_site_connections"].items():
        key = (ns, cid)
        absent = standby.get(cid)
        if absent and conn["status"] != ACTIVE:
            conn["status"], conn["reason"] = DOWN, standby_reason(absent)
        # Since when it has been in this state, as settle_entry books it
        # (after the standby reason: compared before it, a standby
        # connection's "since" moved at every rebuild).
        state = (conn["status"], conn.get("reason", ""))
        began = facts.since.get((service["id"], cid))
        conn["since"] = began[1] if began and began[0] == state else now
        ike, child = facts.rekeys.get(key, (0, 0))
        conn["rekeys"] = ike + child
        conn["ike_rekeys"], conn["child_rekeys"] = ike, child
        conn["rekeys_since"] = facts.counting_since
        if conn["status"] == ACTIVE and key in facts.mtu:
            conn["mtu"] = facts.mtu[key]
    return service


def connection_status(conn, service: Service, children: tuple[str, ...] | None,
                      error: str | None, view: NamespaceView | None,
                      failure: str | None = None) -> dict:
    """One connection's status. `failure` is the last failure charon
    reported for it (reasons.py), preferred over a generic reason."""
    if not service.admin_state_up or not conn.admin_state_up:
        return {"status": DOWN, "reason": "admin-down"}
    if error:
        return {"status": ERROR, "reason": error}
    if view is None:
        return {"status": DOWN, "reason": "not applied yet"}
    if not view.answering:
        return {"status": DOWN, "reason": view.reason}
    ike_sas = view.live.by_name.get(conn.id, ())
    installed = {c.name: (sa, c) for sa in ike_sas for c in sa.children
                 if c.state == "INSTALLED"}
    wanted = children or (conn.id,)
    if all(name in installed for name in wanted):
        return {"status": ACTIVE,
                "ike_sa": _ike_dict(installed[wanted[0]][0]),
                "child_sas": {name: _child_dict(installed[name][1]) for name in wanted}}
    if conn.id not in view.live.conns:
        return {"status": DOWN, "reason": "not loaded in charon"}
    if any(sa.state == "ESTABLISHED" for sa in ike_sas):
        return {"status": DOWN, "reason": failure or "IKE_SA established, CHILD_SA not installed",
                "ike_sa": _ike_dict(ike_sas[0])}
    if ike_sas:
        return {"status": DOWN, "reason": failure or f"IKE_SA {ike_sas[0].state.lower()}",
                "ike_sa": _ike_dict(ike_sas[0])}
    if failure:
        return {"status": DOWN, "reason": failure}
    if conn.initiator == "response-only":
        return {"status": DOWN, "reason": "waiting for the peer to initiate"}
    return {"status": DOWN, "reason": "no SA established"}


def _ike_dict(sa) -> dict:
    return {"uniqueid": sa.uniqueid, "state": sa.state, "version": sa.version,
            "established": _ago(sa.age) if sa.state == "ESTABLISHED" else None,
            "algorithms": sa.algorithms}


def _child_dict(c) -> dict:
    return {"uniqueid": c.uniqueid, "state": c.state, "installed": _ago(c.age),
            "algorithms": c.algorithms, "local_ts": list(c.local_ts),
            "remote_ts": list(c.remote_ts), "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out, "packets_in": c.packets_in,
            "packets_out": c.packets_out}


def _ago(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


def service_entry(path: str, desired: DesiredState, views, children, errors,
                  failures) -> dict:
    """One state file's entry. `children`, `errors` and `failures` are
    looked up by (namespace, connection id) with .get()."""
    service = desired.services.get(path)
    file_errors = desired.errors.get(path, [])
    warnings = [*([desired.warnings[path]] if path in desired.warnings else ()),
                *(str(w) for w in desired.deprecations.get(path, ()))]
    warning = {"warnings": warnings} if warnings else {}
    if service is None:
        return {**_invalid_entry(path, file_errors, desired.ids.get(path)), **warning}
    broken = desired.broken.get(path, {})
    conns = {}
    view = views.get(service.namespace)
    for conn in service.connections:
        key = (service.namespace, conn.id)
        conns[conn.id] = connection_status(conn, service, children.get(key),
                                           errors.get(key), view, failures.get(key))
        if conn.id in broken:  # its last valid version is what runs
            applied = conns[conn.id]
            conns[conn.id] = {**applied, "status": ERROR,
                              "applied_status": applied["status"],
                              **({"applied_reason": applied["reason"]}
                                 if "reason" in applied else {}),
                              "reason": "invalid connection, still applying its last "
                                        "valid version",
                              "errors": [str(e) for e in broken[conn.id]]}
    for key, problems in broken.items():
        if key not in conns:
            conns[key] = {"status": ERROR, "reason": "invalid connection",
                          "errors": [str(e) for e in problems]}
    return {"id": service.id, "file": path, "namespace": service.namespace,
            **_service_status(service, conns, file_errors), **warning,
            "ipsec_site_connections": conns}


def _service_status(service: Service, conns: dict, file_errors) -> dict:
    if file_errors:
        return {"status": ERROR,
                "reason": "invalid file, still applying its last valid version",
                "errors": [str(e) for e in file_errors]}
    if not service.admin_state_up:
        return {"status": DOWN, "reason": "admin-down"}
    up = [c for c in conns.values() if c.get("reason") != "admin-down"]
    if not up:
        return {"status": DOWN, "reason": "no admin-up connections"}
    if all(c["status"] == ACTIVE for c in up):
        return {"status": ACTIVE}
    not_active = sum(1 for c in up if c["status"] != ACTIVE)
    return {"status": DOWN, "reason": f"{not_active} of {len(up)} connections not ACTIVE"}


def _invalid_entry(path: str, file_errors: list[InputError], ids=None) -> dict:
    """A file with no valid version: under the ids it names, as far as they
    can be read (a consumer keys status by id), all ERROR."""
    sid, conn_ids = ids or (None, ())
    return {"id": sid, "file": path, "status": ERROR,
            "reason": "invalid file", "errors": [str(e) for e in file_errors],
            "ipsec_site_connections": {cid: {"status": ERROR, "reason": "invalid file"}
                                       for cid in conn_ids}}


def write_fragments(path: str, services: Iterable[bytes], **extra) -> None:
    """status.json from its services' entries, each already JSON text in
    UTF-8 (a change re-renders its own entry only). Not fsync()ed: it is
    rewritten all the time and lives in /run; a crash loses nothing it
    holds."""
    head = json.dumps({"updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       **extra}, separators=(",", ":"))
    # Compact: it is rewritten on every change; `vpnd status --json` indents.
    write_atomically(path, _pieces(f'{head[:-1]},"services":[', services), durable=False)


# Entries written a block at a time: status.json of 10,000 connections is
# 4 MB, and made whole (joined, then encoded) it was twice that at once,
# at the top of a cold start's peak RSS.
_BLOCK = 500


def _pieces(head: str, services: Iterable[bytes]):
    yield head.encode()
    services, sep = iter(services), b""
    while block := list(islice(services, _BLOCK)):
        yield sep + b",".join(block)
        sep = b","
    yield b"]}\n"


def read(path: str) -> dict:
    with open(path) as f:
        return json.load(f)
