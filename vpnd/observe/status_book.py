"""The status report, kept up to date entry by entry.

A change marks what it moved (the files read, the connections whose
views or books moved: dirty.Dirty); `refresh` rebuilds those entries
only, and keeps each entry's JSON text (packed: entry_text), so that
status.json is written from ready pieces. At 10,000 connections a change
then costs its own entry, not a report of everything. Pure: the caller
writes the file and the log lines.
"""
from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterator

from vpnd.observe import status as status_mod
from vpnd.observe.entry_text import EntryTexts
from vpnd.observe.observed import Observed
from vpnd.plan.render import Rendered
from vpnd.state.desired import DesiredState


class StatusBook:
    def __init__(self):
        # state file -> its entry, as packed JSON text only (the dicts
        # would cost 1 kB a connection more, the text 0.4 kB), and what it
        # adds to the counts
        self.texts: dict[str, bytes] = {}
        self.packer = EntryTexts()
        self.tallies: dict[str, tuple[int, ...]] = {}  # as _tally, one of _shared
        # state file -> its (service id, connection id)s; the one pair
        # itself for a file of one connection (_packed)
        self.ids: dict[str, tuple] = {}
        self.order: list[str] = []  # the files, sorted (status.json's order)
        self.counts: Counter = Counter()  # summary: services, connections, ACTIVE, invalid
        self.version = 0  # moves whenever an entry does
        # Equal tallies are one tuple: at 10,000 files nearly all are alike.
        self._shared: dict[tuple[int, ...], tuple[int, ...]] = {}

    def refresh(self, paths: set[str], now: str, desired: DesiredState,
                observed: Observed, rendered: Rendered) -> list[tuple]:
        """Rebuild the entries of these files (and drop those of files gone)
        from the desired state, observed state and what was rendered;
        returns the statuses that changed (observed.settle_entry)."""
        changed = []
        for path in paths:
            old = self.tallies.pop(path, None)
            if old is not None:
                self.counts.subtract(dict(zip(TALLIED, old)))
            old_keys = _unpacked(self.ids.pop(path, ()))
            if path not in desired.services and path not in desired.errors:
                if old is not None:
                    del self.texts[path]
                    self.order.pop(bisect.bisect_left(self.order, path))
                    for key in old_keys:
                        observed.since.pop(key, None)
                    self.version += 1
                continue
            entry = observed.entry(path, desired, Children(rendered), rendered.errors, now)
            keys = _keys(entry)
            if keys == old_keys:
                keys = old_keys  # the tuples observed.since is keyed by: held once
            changed += observed.settle_entry(entry, set(old_keys) - set(keys), keys)
            if old is None:
                bisect.insort(self.order, path)
            self.texts[path] = self.packer.pack(json.dumps(entry, separators=(",", ":")))
            self.ids[path] = _packed(keys)
            self.tallies[path] = tally = self._share(_tally(entry))
            self.counts.update(dict(zip(TALLIED, tally)))
            self.version += 1
        return changed

    def _share(self, tally: tuple[int, ...]) -> tuple[int, ...]:
        if len(self._shared) > 1000:  # files of many connections: bounded
            self._shared.clear()
        return self._shared.setdefault(tally, tally)

    def report(self) -> list[dict]:
        """Every entry, in file order (metrics, tests): parsed back from
        its text, so it costs only who asks. A scrape asks from its own
        thread while the loop may be between dropping an entry's text and
        its place in the order: it reads copies (made without a switch of
        thread) and leaves out what is half gone or half come."""
        order, texts = list(self.order), self.texts.copy()
        unpack = self.packer.unpack
        return [json.loads(unpack(texts[p])) for p in order if p in texts]

    def fragments(self) -> Iterator[bytes]:
        """Every entry's JSON text (UTF-8), in file order, unpacked as
        the writer takes them (the loop's thread: nothing moves meanwhile)."""
        unpack, texts = self.packer.unpack, self.texts
        return (unpack(texts[p]) for p in self.order)

    def summary(self) -> str:
        """'3 services, 5/6 connections ACTIVE, 1 invalid file'."""
        c = self.counts
        text = f"{c['services']} services, {c['active']}/{c['connections']} connections ACTIVE"
        if c["invalid"]:
            text += f", {c['invalid']} invalid file{'s' if c['invalid'] > 1 else ''}"
        return text


# What a tally counts, in its order.
TALLIED = ("services", "invalid", "problems", "connections", "active")


def _tally(entry: dict) -> tuple[int, ...]:
    """What one entry adds to the counts (TALLIED)."""
    conns = entry["ipsec_site_connections"].values()
    return (int(bool(entry.get("id"))),
            int(bool(entry.get("errors"))),
            # files with any problem, a connection's included (the metric)
            int(bool(entry.get("errors") or any(c.get("errors") for c in conns))),
            len(conns),
            sum(1 for c in conns if c["status"] == status_mod.ACTIVE))


def _keys(entry: dict) -> tuple[tuple[str, str], ...]:
    return tuple((entry["id"], cid) for cid in entry["ipsec_site_connections"])


def _packed(keys: tuple) -> tuple:
    """The keys as held: a file of one connection holds its pair alone
    (a tuple of one pair a file was 0.5 MB at 10,000)."""
    return keys[0] if len(keys) == 1 else keys


def _unpacked(held: tuple) -> tuple:
    # A pair's first item is a service id or None (an invalid file's), never a pair.
    return (held,) if held and not isinstance(held[0], tuple) else held


class Children:
    """(namespace, connection) -> its CHILD_SA names, looked up."""

    def __init__(self, rendered: Rendered):
        self.rendered = rendered

    def get(self, key, default=None):
        found = self.rendered.children(key)
        return default if found is None else found
