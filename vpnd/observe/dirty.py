"""What moved since status was last built, so that only those entries are
rebuilt (status_book.py). Observed marks it, each time one of its books
changes (observed.py); this module says what a change marks."""
from __future__ import annotations

import threading

from vpnd.observe.status import NamespaceView

Key = tuple[str, str]  # (namespace, connection id)


class Dirty:
    """What moved: connections, and whole namespaces (a charon lost or
    found). Marked from any thread; taken by the loop's, which rebuilds
    just those entries."""

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

    def view_moved(self, ns: str, old: NamespaceView | None, new: NamespaceView) -> None:
        """Mark the connections whose view moved from `old` to `new`: all
        of the namespace's when its charon was lost or found."""
        if old is None or not (old.answering and new.answering):
            if old != new:
                self.namespace(ns)
            return
        if old.live is new.live:
            return
        a, b = old.live, new.live
        for name in a.conns ^ b.conns:
            self.key((ns, name))
        for name in a.by_name.keys() | b.by_name.keys():
            if a.by_name.get(name) != b.by_name.get(name):
                self.key((ns, name))
