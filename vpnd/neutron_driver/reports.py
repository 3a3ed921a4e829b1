"""What to tell neutron-server: vpnd's status.json, in the agent's shape.

Pure. neutron-server applies `update_status` reports of the shape
    [{"id", "status", "updated_pending_status",
      "ipsec_site_connections": {id: {"status", "updated_pending_status"}}}]
and changes a row still PENDING_* only when `updated_pending_status` is
true (neutron_vpnaas/db/vpn/vpn_db.py). So:
- a connection is reported once vpnd has a real status for it: "not
  applied yet" is not one, and clearing PENDING_CREATE on it would tell
  Neutron the tunnel is DOWN before vpnd has even tried;
- a row the payload shows pending is sent with the flag set, and sent
  again only if its status moves;
- only what changed is sent;
- a connection or service that left the payload is reported DOWN once
  (the stock drivers never report a service whose last connection went,
  and Neutron shows it ACTIVE for ever; the server skips ids it no longer
  has).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ACTIVE, DOWN, ERROR = "ACTIVE", "DOWN", "ERROR"
NOT_REAL = frozenset({"not applied yet"})


def pending(status) -> bool:
    return isinstance(status, str) and status.startswith("PENDING_")


@dataclass
class Sent:
    """What was last sent for one service: (status, flag) for it and for
    each connection."""
    status: tuple[str, bool] | None = None
    conns: dict[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A connection vpnd reports ERROR: Neutron's status has no field for
    why, so the agent's log carries it."""
    service: str
    connection: str
    reason: str
    errors: tuple[str, ...] = ()


def entries_by_id(doc: dict | None) -> dict[str, dict]:
    """vpnd's status.json service entries by service id (an invalid file
    whose id could not be read has none: nothing to report it under)."""
    out = {}
    for entry in (doc or {}).get("services", ()):
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            out[entry["id"]] = entry
    return out


def _service_status(entry: dict, real: dict[str, str]) -> str | None:
    """Neutron's service status: ACTIVE while any of its connections is up
    (as the stock drivers say: the service runs), ERROR for a file vpnd
    refuses, DOWN when admin-down or nothing is up; None before vpnd has a
    real status for any connection."""
    if entry.get("status") == ERROR and "errors" in entry:
        return ERROR
    if entry.get("reason") in ("admin-down", "no admin-up connections"):
        return DOWN
    if not real:
        return None
    return ACTIVE if ACTIVE in real.values() else DOWN


def reports(doc: dict | None, services: dict[str, dict], known: set[str],
            sent: dict[str, Sent]) -> tuple[list[dict], list[Failure]]:
    """The reports to send now and the failures to log. `services`: the
    payloads of the services this agent reports (not an HA backup's);
    `known`: every service in the agent's payload, reported or not;
    `sent`: what was sent before, updated as if these reports arrived
    (the caller drops the update if sending fails)."""
    out, failures = [], []
    if doc is None:
        return out, failures  # vpnd has said nothing yet
    out.extend(_gone(sent, known))
    for sid in sorted(sent.keys() - services.keys()):
        del sent[sid]  # an HA backup now: the primary reports; afresh if it comes back
    by_id = entries_by_id(doc)
    for sid in sorted(services):
        entry = by_id.get(sid)
        if entry is None:
            continue  # vpnd has not read its file yet
        report = _service_report(sid, services[sid], entry, sent.setdefault(sid, Sent()),
                                 failures)
        if report is not None:
            out.append(report)
    return out, failures


def _gone(sent: dict[str, Sent], known: set[str]) -> list[dict]:
    """Services gone from the payload (their connections were deleted, or
    they were): DOWN once, unless that is what was last sent."""
    out = []
    for sid in sorted(sent.keys() - known):
        gone = sent.pop(sid)
        if gone.status is not None and gone.status[0] == DOWN and \
                all(s == DOWN for s, _ in gone.conns.values()):
            continue
        out.append({"id": sid, "status": DOWN, "updated_pending_status": True,
                    "ipsec_site_connections": {cid: {"status": DOWN,
                                                     "updated_pending_status": True}
                                               for cid in sorted(gone.conns)}})
    return out


def _connections(sid: str, payload: dict, entry: dict, before: Sent,
                 failures: list[Failure]) -> tuple[dict, dict[str, str]]:
    """The connection reports that moved (updating `before`), and every
    connection's real status."""
    vconns = entry.get("ipsec_site_connections") or {}
    conns, real = {}, {}
    for conn in payload.get("ipsec_site_connections") or ():
        cid = conn.get("id")
        v = vconns.get(cid) if isinstance(cid, str) else None
        if not isinstance(v, dict) or v.get("status") not in (ACTIVE, DOWN, ERROR) \
                or v.get("reason") in NOT_REAL:
            continue
        status = v["status"]
        real[cid] = status
        now = (status, pending(conn.get("status")))
        if _moved(before.conns.get(cid), now):
            conns[cid] = {"status": status, "updated_pending_status": now[1]}
            if status == ERROR:
                failures.append(Failure(sid, cid, str(v.get("reason", "")),
                                        tuple(str(e) for e in v.get("errors", ()))))
            before.conns[cid] = now
    # A connection deleted from the service: DOWN once.
    for cid in sorted(before.conns.keys() - {c.get("id") for c in
                                             payload.get("ipsec_site_connections") or ()}):
        if before.conns.pop(cid)[0] != DOWN:
            conns[cid] = {"status": DOWN, "updated_pending_status": True}
    return conns, real


def _service_report(sid: str, payload: dict, entry: dict, before: Sent,
                    failures: list[Failure]) -> dict | None:
    """One service's report, or None if nothing of it moved."""
    conns, real = _connections(sid, payload, entry, before, failures)
    status = _service_status(entry, real)
    if status is None and not conns:
        return None
    now = None if status is None else (status, pending(payload.get("status")))
    moved = now is not None and _moved(before.status, now)
    if not moved and not conns:
        return None
    if now is None:
        # Connections to tell, the service's own status not known yet:
        # its row as it stands (a pending row is not moved unflagged).
        report_status = before.status[0] if before.status else (payload.get("status") or DOWN)
        flag = False
    elif moved:
        (report_status, flag), before.status = now, now
    else:
        report_status, flag = now[0], False
    return {"id": sid, "status": report_status, "updated_pending_status": flag,
            "ipsec_site_connections": conns}


def _moved(before: tuple[str, bool] | None, now: tuple[str, bool]) -> bool:
    """Whether a row's report must go: its status moved, or it is pending
    and has not been sent with the flag at this status."""
    if before is None:
        return True
    if before[0] != now[0]:
        return True
    return now[1] and not before[1]
