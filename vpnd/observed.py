"""What vpnd has observed of its charons, and the status report built from it.

Everything status shows beyond the desired state lives here: each
namespace's live view, the last failure charon logged for a connection,
rekey counts, what could not be applied and why, how each mtu stands, what
is wrong with a charon as a whole, and since when each connection has had
its status. `report(now)` builds the status from it and changes nothing;
`settle(report, now)` books what a published report means for the next
one (since, failures cleared by ACTIVE) and says which statuses changed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import reasons
from . import status as status_mod
from .desired import DesiredState
from .status import NamespaceView
from .standby import reason as standby_reason

Key = tuple[str, str]  # (namespace, connection id)
# charon's kernel-netlink: "203.0.113.9 appeared on wan", "... disappeared from wan"
_ADDRESS_MOVED = re.compile(r"^\S+ (appeared on|disappeared from) \S+$")


@dataclass
class Observed:
    views: dict[str, NamespaceView] = field(default_factory=dict)
    failures: dict[Key, str] = field(default_factory=dict)  # charon's log says why
    # (IKE rekeys, CHILD rekeys) per connection, counted from charon's
    # events since `counting_since` (this vpnd's start; not kept over a
    # restart, so status says from when it counts)
    rekeys: dict[Key, tuple[int, int]] = field(default_factory=dict)
    counting_since: str = ""
    mtu: dict[Key, str] = field(default_factory=dict)  # how the route MTU stands
    capability_errors: dict[Key, str] = field(default_factory=dict)  # get-algorithms
    apply_errors: dict[Key, str] = field(default_factory=dict)  # a refused write
    charon_problems: dict[str, str] = field(default_factory=dict)  # namespace -> why
    # namespace -> connection -> its local address, not on this node (standby.py)
    standby: dict[str, dict[str, str]] = field(default_factory=dict)
    # namespace -> times vpnd started its charon again (it died, or stopped answering)
    charon_restarts: dict[str, int] = field(default_factory=dict)

    def restarted(self, ns: str) -> None:
        self.charon_restarts[ns] = self.charon_restarts.get(ns, 0) + 1
    # (service id, connection id) -> ((status, reason), when it began)
    since: dict[tuple[str, str], tuple[tuple[str, str], str]] = field(default_factory=dict)

    # --- charon's events -------------------------------------------------

    def take(self, ns: str, label: str, event: dict) -> tuple[bool, tuple | None]:
        """One event from a charon. Returns (whether the namespace's state
        may have moved, so it is worth a look; a newly reported failure as
        (connection, reason, charon's message) or None)."""
        if label == "log":
            if _ADDRESS_MOVED.search(event.get("msg", "")):
                # charon's kernel-netlink saw an address come or go in its
                # namespace (an HA router's VIP moving): look at once.
                return True, None
            name, reason = event.get("ikesa-name"), reasons.classify(event.get("msg", ""))
            if name and reason and self.failures.get((ns, name)) != reason:
                self.failures[(ns, name)] = reason
                return True, (name, reason, event.get("msg", ""))
            return False, None
        if label in ("ike-rekey", "child-rekey"):
            for name in (k for k in event if k != "up"):
                ike, child = self.rekeys.get((ns, name), (0, 0))
                self.rekeys[(ns, name)] = (ike + 1, child) if label == "ike-rekey" \
                    else (ike, child + 1)
        return True, None  # ike-updown, child-updown, subscribed, disconnected

    # --- errors ----------------------------------------------------------

    def replace(self, book: dict[Key, str], ns: str, found: dict[Key, str],
                names=None) -> None:
        # list(): a snapshot, as other namespaces' looks run in other threads.
        for key in [k for k in list(book) if k[0] == ns and (names is None or k[1] in names)]:
            book.pop(key, None)
        book.update(found)

    def note_charon(self, ns: str, problem: str | None) -> bool:
        """Record what is wrong with a namespace's charon; True if that
        changed (the caller logs it once, not at every look)."""
        if problem == self.charon_problems.get(ns):
            return False
        if problem:
            self.charon_problems[ns] = problem
        else:
            self.charon_problems.pop(ns, None)
        return True

    def forget_namespaces(self, keep: set[str]) -> None:
        """A namespace no longer served has nothing left to report."""
        for ns in self.charon_problems.keys() - keep:
            self.charon_problems.pop(ns, None)
        for ns in self.views.keys() - keep:
            self.views.pop(ns, None)

    # --- the report --------------------------------------------------------

    def report(self, desired: DesiredState, children: dict[Key, tuple[str, ...]],
               render_errors: dict[Key, str], now: str) -> list[dict]:
        """The status of every service and connection (pure)."""
        errors = {**render_errors, **self.capability_errors, **self.apply_errors}
        report = status_mod.build(desired, self.views, children, errors, self.failures)
        for service in report:
            ns = service.get("namespace")
            for cid, conn in service["ipsec_site_connections"].items():
                key = (ns, cid)
                state = (conn["status"], conn.get("reason", ""))
                began = self.since.get((service["id"], cid))
                conn["since"] = began[1] if began and began[0] == state else now
                absent = self.standby.get(ns, {}).get(cid)
                if absent and conn["status"] != status_mod.ACTIVE:
                    conn["status"], conn["reason"] = status_mod.DOWN, standby_reason(absent)
                ike, child = self.rekeys.get(key, (0, 0))
                conn["rekeys"] = ike + child
                conn["ike_rekeys"], conn["child_rekeys"] = ike, child
                conn["rekeys_since"] = self.counting_since
                if conn["status"] == status_mod.ACTIVE and key in self.mtu:
                    conn["mtu"] = self.mtu[key]
        return report

    def charons(self) -> dict[str, dict]:
        return {ns: {"status": status_mod.ERROR, "reason": problem}
                for ns, problem in sorted(dict(self.charon_problems).items())}

    def settle(self, report: list[dict]) -> list[tuple]:
        """Book a published report: "since" for each status, and failures
        an ACTIVE connection has left behind. Returns the statuses that
        changed: (service, connection, namespace, status, reason)."""
        changed, current = [], {}
        for service in report:
            ns = service.get("namespace")
            for cid, conn in service["ipsec_site_connections"].items():
                state = (conn["status"], conn.get("reason", ""))
                key = (service["id"], cid)
                current[key] = (state, conn["since"])
                if self.since.get(key, (None,))[0] != state:
                    changed.append((service["id"], cid, ns, *state))
                    # Coming up clears what failed before. Only coming up:
                    # a failure charon logs while a report still shows the
                    # SA it is about to lose (the view not yet refreshed)
                    # is what the next report must show.
                    if conn["status"] == status_mod.ACTIVE:
                        self.failures.pop((ns, cid), None)
        self.since = current
        return changed
