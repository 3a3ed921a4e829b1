"""What vpnd has observed of its charons, and the status report built from it.

Everything status shows beyond the desired state lives here: each
namespace's live view, the last failure charon logged for a connection,
rekey counts, what could not be applied and why, how each mtu stands, what
is wrong with a charon as a whole, and since when each connection has had
its status. `entry(path, ...)` builds a file's status from it and
changes nothing; `settle_entry(entry)` books what a published entry means
for the next (since, failures cleared by ACTIVE) and says which statuses
changed.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from vpnd.observe import reasons
from vpnd.observe import status as status_mod
from vpnd.state.desired import DesiredState
from vpnd.observe.status import NamespaceView
from vpnd.plan.standby import reason as standby_reason

Key = tuple[str, str]  # (namespace, connection id)
# charon's kernel-netlink: "203.0.113.9 appeared on wan", "... disappeared from wan"
_ADDRESS_MOVED = re.compile(r"^\S+ (appeared on|disappeared from) \S+$")


class Dirty:
    """What moved since status was last built: connections, and whole
    namespaces (a charon lost or found). Marked from any thread; taken by
    the loop's, which rebuilds just those entries (status_book.py)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.keys: set[Key] = set()
        self.namespaces: set[str] = set()

    def key(self, key: Key) -> None:
        with self._lock:
            self.keys.add(key)

    def namespace(self, ns: str) -> None:
        with self._lock:
            self.namespaces.add(ns)

    def take(self) -> tuple[set[Key], set[str]]:
        with self._lock:
            keys, namespaces = self.keys, self.namespaces
            self.keys, self.namespaces = set(), set()
        return keys, namespaces


class _Book(dict):
    """A dict keyed by (namespace, connection) that marks what it changes."""

    def __init__(self, dirty: Dirty):
        super().__init__()
        self.dirty = dirty

    def __setitem__(self, key, value):
        if self.get(key, _NONE) != value:
            super().__setitem__(key, value)
            self.dirty.key(key)

    def __delitem__(self, key):
        super().__delitem__(key)
        self.dirty.key(key)

    def pop(self, key, *default):
        if key in self:
            self.dirty.key(key)
        return super().pop(key, *default)

    def update(self, other=(), **kw):
        for key, value in dict(other, **kw).items():
            self[key] = value


class _Views(dict):
    """namespace -> NamespaceView, marking the connections whose view moved
    (all of the namespace's when its charon was lost or found)."""

    def __init__(self, dirty: Dirty):
        super().__init__()
        self.dirty = dirty

    def __setitem__(self, ns, view):
        old = self.get(ns)
        super().__setitem__(ns, view)
        if old is None or old.live is None or view.live is None:
            if old != view:
                self.dirty.namespace(ns)
            return
        if old.live is view.live:
            return
        a, b = old.live, view.live
        for name in a.conns ^ b.conns:
            self.dirty.key((ns, name))
        for name in a.by_name.keys() | b.by_name.keys():
            if a.by_name.get(name) != b.by_name.get(name):
                self.dirty.key((ns, name))

    def pop(self, ns, *default):
        if ns in self:
            self.dirty.namespace(ns)
        return super().pop(ns, *default)


_NONE = object()


@dataclass
class Observed:
    dirty: Dirty = field(default_factory=Dirty)
    views: dict[str, NamespaceView] = field(default=None)
    failures: dict[Key, str] = field(default=None)  # charon's log says why
    # (IKE rekeys, CHILD rekeys) per connection, counted from charon's
    # events since `counting_since` (this vpnd's start; not kept over a
    # restart, so status says from when it counts)
    rekeys: dict[Key, tuple[int, int]] = field(default=None)
    counting_since: str = ""
    mtu: dict[Key, str] = field(default=None)  # how the route MTU stands
    capability_errors: dict[Key, str] = field(default=None)  # get-algorithms
    apply_errors: dict[Key, str] = field(default=None)  # a refused write
    charon_problems: dict[str, str] = field(default_factory=dict)  # namespace -> why
    # namespace -> connection -> its local address, not on this node (standby.py)
    standby: dict[str, dict[str, str]] = field(default_factory=dict)
    # namespace -> times vpnd started its charon again (it died, or stopped answering)
    charon_restarts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        # The books status is built from mark what they change (Dirty).
        for name in ("failures", "rekeys", "mtu", "capability_errors", "apply_errors"):
            book = _Book(self.dirty)
            dict.update(book, getattr(self, name) or {})
            setattr(self, name, book)
        views = _Views(self.dirty)
        dict.update(views, self.views or {})
        self.views = views

    def set_standby(self, ns: str, standby: dict[str, str]) -> None:
        old = self.standby.get(ns, {})
        if old != standby:
            for name in old.keys() ^ standby.keys():
                self.dirty.key((ns, name))
            self.standby[ns] = standby

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
        if names is not None and len(names) < len(book):
            stale = [(ns, n) for n in names if (ns, n) in book and (ns, n) not in found]
        else:
            stale = [k for k in list(book) if k[0] == ns and (names is None or k[1] in names)
                     and k not in found]
        for key in stale:
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
        return [self.entry(path, desired, children, render_errors, now)
                for path in sorted(set(desired.services) | set(desired.errors))]

    def entry(self, path: str, desired: DesiredState, children, render_errors,
              now: str) -> dict:
        """One state file's status (pure). `children` and `render_errors`
        are looked up with .get()."""
        errors = _Errors(self.apply_errors, self.capability_errors, render_errors)
        service = status_mod.service_entry(path, desired, self.views, children, errors,
                                           self.failures)
        ns = service.get("namespace")
        standby = self.standby.get(ns, {})
        for cid, conn in service["ipsec_site_connections"].items():
            key = (ns, cid)
            state = (conn["status"], conn.get("reason", ""))
            began = self.since.get((service["id"], cid))
            conn["since"] = began[1] if began and began[0] == state else now
            absent = standby.get(cid)
            if absent and conn["status"] != status_mod.ACTIVE:
                conn["status"], conn["reason"] = status_mod.DOWN, standby_reason(absent)
            ike, child = self.rekeys.get(key, (0, 0))
            conn["rekeys"] = ike + child
            conn["ike_rekeys"], conn["child_rekeys"] = ike, child
            conn["rekeys_since"] = self.counting_since
            if conn["status"] == status_mod.ACTIVE and key in self.mtu:
                conn["mtu"] = self.mtu[key]
        return service

    def charons(self) -> dict[str, dict]:
        return {ns: {"status": status_mod.ERROR, "reason": problem}
                for ns, problem in sorted(dict(self.charon_problems).items())}

    def settle_entry(self, service: dict, gone=()) -> list[tuple]:
        """Book one published entry: "since" for each status, and failures
        an ACTIVE connection has left behind; `gone`: (service id,
        connection id) of the entry it replaces that it no longer has.
        Returns the statuses that changed: (service, connection,
        namespace, status, reason)."""
        for key in gone:
            self.since.pop(key, None)
        changed = []
        ns = service.get("namespace")
        for cid, conn in service["ipsec_site_connections"].items():
            state = (conn["status"], conn.get("reason", ""))
            key = (service["id"], cid)
            if self.since.get(key, (None,))[0] != state:
                changed.append((service["id"], cid, ns, *state))
                # Coming up clears what failed before. Only coming up:
                # a failure charon logs while a report still shows the
                # SA it is about to lose (the view not yet refreshed)
                # is what the next report must show.
                if conn["status"] == status_mod.ACTIVE:
                    self.failures.pop((ns, cid), None)
            self.since[key] = (state, conn["since"])
        return changed


class _Errors:
    """Why a connection is ERROR, first found first: a refused write, what
    charon cannot do, what could not be rendered."""

    def __init__(self, *books):
        self.books = books

    def get(self, key, default=None):
        for book in self.books:
            if key in book:
                return book[key]
        return default
