"""Desired state rendered for the driver: one DesiredConn per connection.

A service object is new only when its file was re-parsed, so what it
renders to is cached by identity: rendering after a change costs the
changed file only. Pure but for the cache: the driver's render function
and the record's fingerprint are passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .desired import DesiredState
from .errors import Unsupported
from .plan import DesiredConn

Key = tuple[str, str]


@dataclass
class Rendered:
    """Everything desired, by namespace, plus what could not be rendered."""

    conns: dict[str, dict[str, DesiredConn]] = field(default_factory=dict)
    errors: dict[Key, str] = field(default_factory=dict)  # -> why (ERROR)
    psks: set[str] = field(default_factory=set)

    def merge(self, other: "Rendered") -> None:
        for ns, conns in other.conns.items():
            self.conns.setdefault(ns, {}).update(conns)
        self.errors.update(other.errors)
        self.psks |= other.psks

    def children(self) -> dict[Key, tuple[str, ...]]:
        return {(ns, name): c.children for ns, conns in self.conns.items()
                for name, c in conns.items()}


class Renderer:
    def __init__(self, render, fingerprint):
        self._render = render  # Connection -> strongswan_mapping.Rendered
        self._fingerprint = fingerprint  # (*messages) -> str
        self._cache: dict[int, tuple] = {}  # id(service) -> (service, Rendered)

    def __call__(self, state: DesiredState) -> Rendered:
        out, cache = Rendered(), {}
        for service in state.services.values():
            part = self._cache.get(id(service))
            if part is None or part[0] is not service:
                part = (service, self._service(service))
            cache[id(service)] = part
            out.merge(part[1])
        self._cache = cache
        return out

    def parts(self, conn_message: dict, secret: dict) -> str:
        """Short fingerprints of what a change can touch, one per part:
        the PSK (with its owners), the IKE settings, the CHILD_SAs'."""
        [ike] = conn_message.values()
        parts = {"psk": secret,
                 "ike": {k: v for k, v in ike.items() if k != "children"},
                 "child": ike.get("children", {})}
        return ";".join(f"{name}={self._fingerprint(part)[:12]}"
                        for name, part in parts.items())

    def _service(self, service) -> Rendered:
        out = Rendered()
        ns_conns = out.conns.setdefault(service.namespace, {})
        for conn in service.connections:
            out.psks.add(conn.psk)
            if not (service.admin_state_up and conn.admin_state_up):
                continue
            try:
                r = self._render(conn)
            except Unsupported as e:
                out.errors[(service.namespace, conn.id)] = str(e)
                continue
            ns_conns[conn.id] = DesiredConn(
                name=r.name, service_id=service.id, source=service.source,
                fingerprint=self._fingerprint(r.conn, r.secret),
                parts=self.parts(r.conn, r.secret),
                conn_message=r.conn, secret_id=r.secret_id, secret_message=r.secret,
                namespace=service.namespace, model=conn, children=r.children,
                initiates=conn.initiator == "bi-directional")
        return out
