"""The record of what vpnd applied, kept in data_dir across restarts.

It is how vpnd knows what it owns and what changed: charon does not list
proposals, lifetimes or secrets back, so each applied connection is stored
with a fingerprint of exactly what was sent (fingerprint.py). Its files'
format is record_format.py's.
"""
from __future__ import annotations

import os
import threading
from types import MappingProxyType
from typing import Mapping

from vpnd.apply import record_format
from vpnd.apply.fingerprint import Fingerprinter
from vpnd.base.conns import AppliedConn, Intent
from vpnd.system.files import open_append, read_own, write_atomically

RECORD_FILE = "applied.json"
# Each change as it lands, one JSON line, until the next save folds them
# into RECORD_FILE: a vpnd killed mid-look knows on restart what it had
# already done, and repeats no termination of an SA it re-established.
JOURNAL_FILE = "applied.journal"
# The journal is folded into RECORD_FILE once it has grown past the record
# itself: each change then costs its line, and the fold's cost, O(record),
# is spread over about as many changes as the record has connections.


class Record:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, RECORD_FILE)
        self.journal_path = os.path.join(data_dir, JOURNAL_FILE)
        self._journal: int | None = None  # its fd, opened on the first change
        self.problem: str | None = None  # what could not be written, if anything
        # Namespaces are looked at in parallel threads; their changes and
        # the saves that fold them in go one at a time.
        self._lock = threading.Lock()
        self.fingerprinter: Fingerprinter | None = None  # set by load()
        # namespace -> connection name -> AppliedConn
        self.namespaces: dict[str, dict[str, AppliedConn]] = {}
        # namespace -> connection name -> a change begun, not yet recorded
        self.intents: dict[str, dict[str, Intent]] = {}
        # state file -> the (namespace, name) it applied: a change looks
        # up its own, not every connection
        self.by_source: dict[str, tuple[tuple[str, str], ...]] = {}
        self._journal_bytes = 0  # written since the last fold
        self._record_bytes = 0  # RECORD_FILE's size at the last fold
        # namespace -> a number that moves whenever what it applied does
        # (never given twice): what a look computed from it holds while it
        # stands. A namespace not in it has applied nothing since load().
        self.versions: dict[str, int] = {}
        self._changes = 0

    def load(self, create_key: bool = True) -> "Record":
        """Read the fingerprint key (Fingerprinter: `create_key` false for
        a dry run, which writes none), the record and its journal. Files
        here are read only if they are plainly vpnd's (files.read_own):
        else NotOurs."""
        self.fingerprinter = Fingerprinter(self.data_dir, create_key)
        try:
            raw = read_own(self.path)
            namespaces, intents = record_format.read_document(raw)
            self._record_bytes = len(raw)
        except FileNotFoundError:
            namespaces, intents = {}, {}
        self.namespaces, self.by_source = {}, {}
        self.versions.clear()
        for ns, conns in namespaces.items():
            for name, applied in conns.items():
                self._set(ns, name, applied)
        self.intents = intents
        self._replay()
        return self

    def _replay(self) -> None:
        """Changes journaled after the last save (a vpnd that was killed)."""
        try:
            lines = read_own(self.journal_path).decode().splitlines()
        except FileNotFoundError:
            return
        self._journal_bytes = sum(len(line) + 1 for line in lines)
        for line in lines:
            try:
                ns, name, what = record_format.read_journal_line(line)
            except (ValueError, KeyError, TypeError):
                break  # a line torn by the kill: what follows cannot exist
            if isinstance(what, Intent):  # a change begun
                self.intents.setdefault(ns, {})[name] = what
            else:
                self._set(ns, name, record_format.applied_from_json(name, what)
                          if what else None)

    def save_if_due(self) -> None:
        """After a change: fold the journal in only once it has grown as
        large as the record (or a write failed, and the journal misses
        what the record must get)."""
        if self.problem or self._journal_bytes > self._record_bytes:
            self.save()

    def save(self) -> None:
        """Fold everything into applied.json. A full or read-only data_dir
        is not fatal: what is in memory is right, `problem` says what could
        not be written, and the next save (the loop retries) catches up."""
        try:
            self._save()
            self.problem = None
        except OSError as e:
            self.problem = f"cannot write {self.path}: {e.strerror or e}"

    def _save(self) -> None:
        with self._lock:
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
            size = 0

            def counted(pieces):
                nonlocal size
                for piece in pieces:
                    size += len(piece)
                    yield piece
            write_atomically(self.path, counted(record_format.document_pieces(
                self.namespaces, self.intents)), 0o600)
            self._record_bytes = size
            if self._journal is not None:  # folded in: start it afresh
                os.ftruncate(self._journal, 0)
            self._journal_bytes = 0

    def applied(self, namespace: str) -> Mapping[str, AppliedConn]:
        """A read-only view: callers that keep it past a change copy it."""
        return MappingProxyType(self.namespaces.get(namespace, {}))

    def version_of(self, namespace: str) -> int:
        return self.versions.get(namespace, 0)

    def applied_from(self, namespace: str, sources) -> dict[str, AppliedConn]:
        """What these state files applied in `namespace`."""
        conns = self.namespaces.get(namespace, {})
        return {name: conns[name] for source in sources
                for ns, name in self.by_source.get(source, ()) if ns == namespace
                and name in conns}

    def intended(self, namespace: str) -> Mapping[str, Intent]:
        return MappingProxyType(self.intents.get(namespace, {}))

    def intend(self, namespace: str, name: str, intent: Intent) -> None:
        """Journal a change before its first action (see plan.Intent)."""
        self.intend_many(namespace, [(name, intent)])

    def intend_many(self, namespace: str, intents: list[tuple[str, Intent]]) -> None:
        """Journal changes before their first actions, in one write (a
        batch of thousands pipelined at once)."""
        if not intents:
            return
        with self._lock:
            book = self.intents.setdefault(namespace, {})
            for name, intent in intents:
                book[name] = intent
            try:
                self._write_lines([record_format.intent_entry(namespace, name, intent)
                                   for name, intent in intents])
            except OSError as e:
                self.problem = f"cannot write {self.journal_path}: {e.strerror or e}"

    def set(self, namespace: str, name: str, applied: AppliedConn | None) -> None:
        """Record one change as it lands (journaled at once, saved later)."""
        with self._lock:
            self._set(namespace, name, applied)
            try:
                self._write_lines([record_format.change_entry(namespace, name, applied)])
            except OSError as e:
                self.problem = f"cannot write {self.journal_path}: {e.strerror or e}"

    def _write_lines(self, entries) -> None:
        if self._journal is None:
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
            # Not through a link or into a file someone else put there.
            self._journal = open_append(self.journal_path, 0o600)
        # One write: a kill (or a full disk) tears at most its last line,
        # and replay stops at a torn line (what follows it cannot exist).
        data = record_format.journal_lines(entries)
        written = os.write(self._journal, data)
        self._journal_bytes += written
        if written < len(data):  # a short write: the disk is full
            raise OSError(28, "journal write cut short (no space left)")

    def _set(self, namespace: str, name: str, applied: AppliedConn | None) -> None:
        self.intents.get(namespace, {}).pop(name, None)  # the change is done
        conns = self.namespaces.setdefault(namespace, {})
        old = conns.pop(name, None)
        # A tuple each: a state file applies one connection, or a few.
        if old is not None:
            left = tuple(k for k in self.by_source.get(old.source, ()) if k != (namespace, name))
            if left:
                self.by_source[old.source] = left
            else:
                self.by_source.pop(old.source, None)
        if applied is not None:
            conns[name] = applied
            self.by_source[applied.source] = (*self.by_source.get(applied.source, ()),
                                              (namespace, name))
        self._changes += 1
        self.versions[namespace] = self._changes

    def fingerprint(self, *messages: dict) -> str:
        """The fingerprint of what is sent (fingerprint.Fingerprinter),
        under the key load() read: it lives in data_dir, beside the record."""
        if self.fingerprinter is None:
            raise RuntimeError("Record.load() reads the fingerprint key first")
        return self.fingerprinter(*messages)
