"""What vpnd has observed of its charons, that status is built from.

Everything status shows beyond the desired state lives here: each
namespace's live view, the last failure charon logged for a connection,
rekeys counted, what could not be applied and why, how each mtu stands,
which connections wait as standby, what is wrong with a charon as a whole,
and since when each connection has had its status.

Others read these books as read-only mappings; only Observed's methods
change them, and each change marks what it moved (dirty.py), so that
status rebuilds just those entries (status_book.py). `facts()` hands them
to the one pure builder of an entry (status.entry); `settle_entry(entry)`
books what a published entry means for the next (since, failures cleared
by ACTIVE) and says which statuses changed.
"""
from __future__ import annotations

import re
from types import MappingProxyType

from vpnd.observe import reasons
from vpnd.observe import status as status_mod
from vpnd.observe.dirty import Dirty, Key
from vpnd.observe.status import Facts, NamespaceView
from vpnd.state.desired import DesiredState

# charon's kernel-netlink: "203.0.113.9 appeared on wan", "... disappeared from wan"
_ADDRESS_MOVED = re.compile(r"^\S+ (appeared on|disappeared from) \S+$")
_NONE = object()


class Observed:
    def __init__(self, *, views: dict[str, NamespaceView] | None = None,
                 failures: dict[Key, str] | None = None,
                 standby: dict[str, dict[str, str]] | None = None,
                 counting_since: str = ""):
        self.dirty = Dirty()  # what moved since status was last built
        # The books status is built from, changed only through the methods
        # below (they mark what moves):
        self._views: dict[str, NamespaceView] = dict(views or {})
        self._failures: dict[Key, str] = dict(failures or {})  # charon's log says why
        # (IKE rekeys, CHILD rekeys) per connection, counted from charon's
        # events since `counting_since` (this vpnd's start; not kept over a
        # restart, so status says from when it counts)
        self._rekeys: dict[Key, tuple[int, int]] = {}
        self.counting_since = counting_since
        self._mtu: dict[Key, str] = {}  # how the route MTU stands
        self._capability_errors: dict[Key, str] = {}  # get-algorithms
        self._apply_errors: dict[Key, str] = {}  # a refused write
        # namespace -> connection -> its local address, not on this node (standby.py)
        self._standby: dict[str, dict[str, str]] = dict(standby or {})
        # ... and read-only views of them, for all to read:
        self.views = MappingProxyType(self._views)
        self.failures = MappingProxyType(self._failures)
        self.rekeys = MappingProxyType(self._rekeys)
        self.mtu = MappingProxyType(self._mtu)
        self.capability_errors = MappingProxyType(self._capability_errors)
        self.apply_errors = MappingProxyType(self._apply_errors)
        self.standby = MappingProxyType(self._standby)
        # Status shows these whole, in every status.json (nothing to mark):
        self.charon_problems: dict[str, str] = {}  # namespace -> why
        # namespace -> times vpnd started its charon again (it died, or stopped answering)
        self.charon_restarts: dict[str, int] = {}
        # (service id, connection id) -> ((status, reason), when it began),
        # as the published entries settled it (settle_entry)
        self.since: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
        self._settled: tuple = ((None, None), None)  # the last value booked in since

    # --- the books: each change marks what it moved -----------------------------

    def set_view(self, ns: str, view: NamespaceView) -> None:
        """What is now known of a namespace's charon."""
        old = self._views.get(ns)
        self._views[ns] = view
        self.dirty.view_moved(ns, old, view)

    def drop_view(self, ns: str) -> None:
        """Nothing is known of a namespace's charon any more."""
        if self._views.pop(ns, _NONE) is not _NONE:
            self.dirty.namespace(ns)

    def note_mtu(self, key: Key, state: str) -> None:
        self._put(self._mtu, key, state)

    def clear_failure(self, key: Key) -> None:
        """What charon said failed is over (the connection was rewritten)."""
        self._drop(self._failures, key)

    def set_standby(self, ns: str, standby: dict[str, str]) -> None:
        old = self._standby.get(ns, {})
        if old != standby:
            self._standby[ns] = standby
            for name in old.keys() ^ standby.keys():
                self.dirty.key((ns, name))

    def replace_apply_errors(self, ns: str, found: dict[Key, str], names=None) -> None:
        """The writes refused in a look at `ns` (of `names` only, if given)."""
        self._replace(self._apply_errors, ns, found, names)

    def replace_capability_errors(self, ns: str, found: dict[Key, str], names=None) -> None:
        """What `ns`'s charon cannot do, of the connections looked at."""
        self._replace(self._capability_errors, ns, found, names)

    def _replace(self, book: dict[Key, str], ns: str, found: dict[Key, str],
                 names=None) -> None:
        # list(): a snapshot, as other namespaces' looks run in other threads.
        if names is not None and len(names) < len(book):
            stale = [(ns, n) for n in names if (ns, n) in book and (ns, n) not in found]
        else:
            stale = [k for k in list(book) if k[0] == ns and (names is None or k[1] in names)
                     and k not in found]
        for key in stale:
            self._drop(book, key)
        for key, value in found.items():
            self._put(book, key, value)

    def _put(self, book: dict, key: Key, value) -> None:
        if book.get(key, _NONE) != value:
            book[key] = value
            self.dirty.key(key)

    def _drop(self, book: dict, key: Key) -> None:
        if book.pop(key, _NONE) is not _NONE:
            self.dirty.key(key)

    # --- what status shows whole --------------------------------------------------

    def restarted(self, ns: str) -> None:
        self.charon_restarts[ns] = self.charon_restarts.get(ns, 0) + 1

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
        for ns in self._views.keys() - keep:
            self.drop_view(ns)

    def charons(self) -> dict[str, dict]:
        return {ns: {"status": status_mod.ERROR, "reason": problem}
                for ns, problem in sorted(dict(self.charon_problems).items())}

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
            if name and reason and reasons.replaces(self.failures.get((ns, name)), reason):
                self._put(self._failures, (ns, name), reason)
                return True, (name, reason, event.get("msg", ""))
            return False, None
        if label in ("ike-rekey", "child-rekey"):
            for name in (k for k in event if k != "up"):
                ike, child = self.rekeys.get((ns, name), (0, 0))
                self._put(self._rekeys, (ns, name), (ike + 1, child) if label == "ike-rekey"
                          else (ike, child + 1))
        return True, None  # ike-updown, child-updown, subscribed, disconnected

    # --- the report --------------------------------------------------------

    def facts(self, children, render_errors) -> Facts:
        """What an entry is built from besides the desired state (read, not
        copied). `children` and `render_errors` are looked up with .get()."""
        return Facts(views=self.views, children=children,
                     errors=_Errors(self._apply_errors, self._capability_errors, render_errors),
                     failures=self.failures, rekeys=self.rekeys,
                     counting_since=self.counting_since, mtu=self.mtu,
                     standby=self.standby, since=self.since)

    def report(self, desired: DesiredState, children: dict[Key, tuple[str, ...]],
               render_errors: dict[Key, str], now: str) -> list[dict]:
        """The status of every service and connection (pure)."""
        facts = self.facts(children, render_errors)
        return [status_mod.entry(path, desired, facts, now)
                for path in sorted(set(desired.services) | set(desired.errors))]

    def entry(self, path: str, desired: DesiredState, children, render_errors,
              now: str) -> dict:
        """One state file's status (pure; status.entry builds it)."""
        return status_mod.entry(path, desired, self.facts(children, render_errors), now)

    def settle_entry(self, service: dict, gone=(), keys=None) -> list[tuple]:
        """Book one published entry: "since" for each status, and failures
        an ACTIVE connection has left behind; `gone`: (service id,
        connection id) of the entry it replaces that it no longer has;
        `keys`: those of its connections, in order, if the caller holds
        them already (they are then not made again). Returns the statuses
        that changed: (service, connection, namespace, status, reason)."""
        for key in gone:
            self.since.pop(key, None)
        changed = []
        ns = service.get("namespace")
        conns = service["ipsec_site_connections"]
        for key, (cid, conn) in zip(keys or [(service["id"], c) for c in conns], conns.items()):
            state = (conn["status"], conn.get("reason", ""))
            before = self.since.get(key, (None,))
            if before[0] == state and before[1] == conn["since"]:
                continue  # as it was: the value held stays
            if before[0] != state:
                changed.append((service["id"], cid, ns, *state))
                # Coming up clears what failed before. Only coming up:
                # a failure charon logs while a report still shows the
                # SA it is about to lose (the view not yet refreshed)
                # is what the next report must show.
                if conn["status"] == status_mod.ACTIVE:
                    self._drop(self._failures, (ns, cid))
            self.since[key] = self._settled = self._one_of(state, conn["since"])
        return changed

    def _one_of(self, state: tuple[str, str], since: str) -> tuple:
        """(state, since), the same tuple as the last one booked if equal:
        a cold start's 10,000 entries settle as one."""
        last = self._settled
        if last[1] == since and last[0] == state:
            return last
        return (last[0] if last[0] == state else state, since)


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
