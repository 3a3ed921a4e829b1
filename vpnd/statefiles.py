"""Reading the state directory: one JSON file per VPN service.

Files are re-parsed only when they change (inode, size, mtime). A file that
becomes invalid keeps serving its last valid version, so a typo never tears
a tunnel down; its errors are reported beside it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .desired import DesiredState
from .errors import InputError
from .model import Service
from .validation import parse_service


def is_state_file(name: str) -> bool:
    """*.json, but not what editors and atomic writers leave behind."""
    return (name.endswith(".json") and not name.startswith((".", "#", "~"))
            and not name.endswith("~"))


def read_file(path: str) -> tuple[Service | None, list[InputError]]:
    """Parse and validate one file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        return None, [InputError(path, "$", f"cannot read: {e.strerror}")]
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        return None, [InputError(path, "$", "not UTF-8 text")]
    except json.JSONDecodeError as e:
        return None, [InputError(path, "$", f"not valid JSON: {e.msg} "
                                            f"at line {e.lineno} column {e.colno}")]
    return parse_service(data, path)


@dataclass
class _Entry:
    stamp: tuple
    service: Service | None  # valid now
    errors: list[InputError]
    last_valid: Service | None  # what this file last said validly


class StateDir:
    def __init__(self, path: str):
        self.path = path
        self._entries: dict[str, _Entry] = {}

    def scan(self) -> tuple[DesiredState, set[str]]:
        """Re-read what changed; returns the state and the files that changed."""
        try:
            names = sorted(n for n in os.listdir(self.path) if is_state_file(n))
        except FileNotFoundError:
            names = []
        changed = set(self._entries) - {os.path.join(self.path, n) for n in names}
        for gone in changed:
            del self._entries[gone]
        for name in names:
            path = os.path.join(self.path, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                changed.add(path)
                self._entries.pop(path, None)
                continue
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            entry = self._entries.get(path)
            if entry is not None and entry.stamp == stamp:
                continue
            service, errors = read_file(path)
            last_valid = service or (entry.last_valid if entry else None)
            self._entries[path] = _Entry(stamp, service, errors, last_valid)
            changed.add(path)
        return self._state(), changed

    def _state(self) -> DesiredState:
        services, errors, held = {}, {}, set()
        seen_ids: dict[str, str] = {}
        seen_conns: dict[tuple[str, str], str] = {}
        for path in sorted(self._entries):
            entry = self._entries[path]
            if entry.errors:
                errors[path] = list(entry.errors)
            service = entry.service or entry.last_valid
            if service is None:
                held.add(path)
                continue
            clash = _clashes(path, service, seen_ids, seen_conns)
            if clash:
                # The earlier file (by name) keeps the id; this one is invalid.
                errors.setdefault(path, []).extend(clash)
                held.add(path)
                continue
            seen_ids[service.id] = path
            for conn in service.connections:
                seen_conns[(service.namespace, conn.id)] = path
            services[path] = service
        return DesiredState(services, errors, frozenset(held))


def _clashes(path, service, seen_ids, seen_conns) -> list[InputError]:
    problems = []
    if service.id in seen_ids:
        problems.append(InputError(path, "$.id", f"service id {service.id!r} is "
                                                 f"already used by {seen_ids[service.id]}"))
    for i, conn in enumerate(service.connections):
        other = seen_conns.get((service.namespace, conn.id))
        if other:
            problems.append(InputError(
                path, f"$.ipsec_site_connections[{i}].id",
                f"connection id {conn.id!r} is already used in namespace "
                f"{service.namespace} by {other}"))
    return problems
