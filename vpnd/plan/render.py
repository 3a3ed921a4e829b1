"""Desired state rendered for the driver: one DesiredConn per connection.

Kept up to date file by file: `update(state, paths)` re-renders the
services of those files only (a service object that did not change
renders to what it did before), so rendering after a change costs the
changed file, not every file. Pure but for that cache: the driver's render
function and the record's fingerprint are passed in.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from vpnd.state.desired import DesiredState
from vpnd.base.errors import Unsupported
from vpnd.base.conns import DesiredConn

Key = tuple[str, str]
_versions = itertools.count(1)


@dataclass
class Rendered:
    """Everything desired, by namespace, plus what could not be rendered.
    Changed in place by the loop's thread: a worker that walks a whole
    namespace takes a copy of its dict first (`of`)."""

    conns: dict[str, dict[str, DesiredConn]] = field(default_factory=dict)
    errors: dict[Key, str] = field(default_factory=dict)  # -> why (ERROR)
    # file -> (namespace, its connections' names that render): what a
    # look scoped to some files needs, without walking the namespace
    by_source: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # namespace -> a number that moves whenever its connections do (never
    # given twice): what a look computed from them holds while it stands.
    versions: dict[str, int] = field(default_factory=dict)

    def version_of(self, ns: str) -> int:
        """Read before `of`: what `of` gives is then at least this new."""
        return self.versions.get(ns, 0)

    def of(self, ns: str) -> dict[str, DesiredConn]:
        """A namespace's connections: a copy (dict() holds the GIL)."""
        return dict(self.conns.get(ns, {}))

    def of_sources(self, ns: str, sources) -> dict[str, DesiredConn]:
        """The connections these files declare in `ns`."""
        conns = self.conns.get(ns, {})
        out = {}
        for source in sources:
            where, names = self.by_source.get(source, (None, ()))
            if where == ns:
                out.update((n, conns[n]) for n in names if n in conns)
        return out

    def children(self, key: Key) -> tuple[str, ...] | None:
        conn = self.conns.get(key[0], {}).get(key[1])
        return None if conn is None else conn.children


class Renderer:
    def __init__(self, render, fingerprint):
        self._render = render  # Connection -> strongswan_mapping.Rendered
        self._fingerprint = fingerprint  # (*messages) -> str
        self.rendered = Rendered()
        # file -> (the service rendered, its connections, its errors' keys)
        self._done: dict[str, tuple] = {}

    def update(self, state: DesiredState, paths) -> set[str]:
        """Re-render the services of these files; returns the PSKs of the
        services rendered anew (for the log redactor)."""
        out, psks, moved = self.rendered, set(), set()
        # Every file's old connections out first, then the new ones in: a
        # connection id one file lets go another may take in this update.
        fresh = []
        for path in paths:
            service = state.services.get(path)
            done = self._done.get(path)
            if done is not None and done[0] is service:
                continue
            fresh.append((path, service))
            if done is not None:
                _, ns, names, errors = self._done.pop(path)
                moved.add(ns)
                conns = out.conns.get(ns, {})
                for name in names:
                    conns.pop(name, None)
                if not conns:
                    out.conns.pop(ns, None)
                for key in errors:
                    out.errors.pop(key, None)
                out.by_source.pop(path, None)
        for path, service in fresh:
            if service is None:
                continue
            conns, errors = self._service(service)
            psks.update(c.psk for c in service.connections)
            out.conns.setdefault(service.namespace, {}).update(conns)
            out.errors.update(errors)
            # One tuple of the names for both (0.5 MB at 10,000 files).
            names = tuple(conns)
            out.by_source[path] = (service.namespace, names)
            self._done[path] = (service, service.namespace, names, tuple(errors))
            moved.add(service.namespace)
        for ns in moved:  # after the changes: see version_of
            out.versions[ns] = next(_versions)
        return psks

    def parts(self, conn_message: dict, secret: dict) -> str:
        """Short fingerprints of what a change can touch, one per part:
        the PSK (with its owners), the IKE settings, the CHILD_SAs'."""
        [ike] = conn_message.values()
        parts = {"psk": secret,
                 "ike": {k: v for k, v in ike.items() if k != "children"},
                 "child": ike.get("children", {})}
        return ";".join(f"{name}={self._fingerprint(part)[:12]}"
                        for name, part in parts.items())

    def _service(self, service) -> tuple[dict[str, DesiredConn], dict[Key, str]]:
        conns, errors = {}, {}
        for conn in service.connections:
            if not (service.admin_state_up and conn.admin_state_up):
                continue
            try:
                r = self._render(conn)
            except Unsupported as e:
                errors[(service.namespace, conn.id)] = str(e)
                continue
            conns[conn.id] = DesiredConn(
                name=r.name, service_id=service.id, source=service.source,
                fingerprint=self._fingerprint(r.conn, r.secret),
                parts=self.parts(r.conn, r.secret),
                conn_message=None, secret_id=r.secret_id, secret_message=None,
                namespace=service.namespace, model=conn, children=r.children,
                initiates=conn.initiator == "bi-directional", render=self._render)
        return conns, errors
