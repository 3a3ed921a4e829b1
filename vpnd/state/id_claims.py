"""Which state file names which id (pure).

A service id is unique in the state dir, a connection id in its
namespace. Two files may name the same one: the earlier file by name
keeps it and the later one is invalid, until the earlier one lets it go
(then the later one may come in, with nothing of its own changed). The
claims say who names what, so that a change to one file finds the files
whose standing moves with it without looking at the others.
"""
from __future__ import annotations

from collections.abc import Container

from vpnd.base.errors import InputError
from vpnd.base.model import Service


def _keys(service: Service) -> list[tuple]:
    return [("service", service.id),
            *(("connection", service.namespace, c.id) for c in service.connections)]


class IdClaims:
    def __init__(self):
        # ("service", id) or ("connection", namespace, id) -> the files
        # that name it (a tuple: almost always one).
        self._claims: dict[tuple, tuple[str, ...]] = {}
        # file -> the service its claims come from
        self._claimed: dict[str, Service] = {}

    def claim(self, path: str, service: Service) -> None:
        """`path` names the ids of `service` (after release, if it did before)."""
        self._claimed[path] = service
        for key in _keys(service):
            self._claims[key] = (*self._claims.get(key, ()), path)

    def release(self, path: str) -> None:
        """`path` names no id any more."""
        service = self._claimed.pop(path, None)
        for key in _keys(service) if service is not None else ():
            claimants = tuple(p for p in self._claims.get(key, ()) if p != path)
            if claimants:
                self._claims[key] = claimants
            else:
                self._claims.pop(key, None)

    def sharing(self, path: str) -> set[str]:
        """The other files that name an id this one names."""
        service = self._claimed.get(path)
        return set() if service is None else \
            {p for key in _keys(service) for p in self._claims.get(key, ()) if p != path}

    def clashes(self, path: str, service: Service,
                standing: Container[str]) -> list[InputError]:
        """What an earlier file (by name) among those `standing` uses
        already, as the errors of `path`."""
        def first(key):
            earlier = [p for p in self._claims.get(key, ()) if p < path and p in standing]
            return min(earlier) if earlier else None
        problems = []
        if (other := first(("service", service.id))) is not None:
            problems.append(InputError(path, "$.id", f"service id {service.id!r} is "
                                                     f"already used by {other}"))
        for i, conn in enumerate(service.connections):
            if (other := first(("connection", service.namespace, conn.id))) is not None:
                problems.append(InputError(
                    path, f"$.ipsec_site_connections[{i}].id",
                    f"connection id {conn.id!r} is already used in namespace "
                    f"{service.namespace} by {other}"))
        return problems
