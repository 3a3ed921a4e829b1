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
    """(book, key) of each id `service` names: its own id in the services'
    book, each connection's in its namespace's."""
    return [(None, service.id), *((service.namespace, c.id) for c in service.connections)]


class IdClaims:
    def __init__(self):
        # id -> the file that names it, or a tuple of the files (rarely
        # more than one): in book None the service ids, in book `ns` the
        # connection ids of namespace ns. Keyed by the model's own
        # strings: a claim costs its dict entry (key tuples and 1-tuples
        # of paths were 290 B a file at 10,000).
        self._books: dict[str | None, dict[str, str | tuple[str, ...]]] = {}
        # file -> the service its claims come from
        self._claimed: dict[str, Service] = {}

    def _claimants(self, book: str | None, key: str) -> tuple[str, ...]:
        found = self._books.get(book, {}).get(key, ())
        return (found,) if isinstance(found, str) else found

    def claim(self, path: str, service: Service) -> None:
        """`path` names the ids of `service` (after release, if it did before)."""
        self._claimed[path] = service
        for book, key in _keys(service):
            ids = self._books.setdefault(book, {})
            found = ids.get(key)
            ids[key] = path if found is None else (*self._claimants(book, key), path)

    def release(self, path: str) -> None:
        """`path` names no id any more."""
        service = self._claimed.pop(path, None)
        for book, key in _keys(service) if service is not None else ():
            claimants = tuple(p for p in self._claimants(book, key) if p != path)
            ids = self._books.get(book, {})
            if len(claimants) > 1:
                ids[key] = claimants
            elif claimants:
                ids[key] = claimants[0]
            else:
                ids.pop(key, None)
                if not ids:
                    self._books.pop(book, None)

    def sharing(self, path: str) -> set[str]:
        """The other files that name an id this one names."""
        service = self._claimed.get(path)
        return set() if service is None else \
            {p for book, key in _keys(service) for p in self._claimants(book, key) if p != path}

    def clashes(self, path: str, service: Service,
                standing: Container[str]) -> list[InputError]:
        """What an earlier file (by name) among those `standing` uses
        already, as the errors of `path`."""
        def first(book, key):
            earlier = [p for p in self._claimants(book, key) if p < path and p in standing]
            return min(earlier) if earlier else None
        problems = []
        if (other := first(None, service.id)) is not None:
            problems.append(InputError(path, "$.id", f"service id {service.id!r} is "
                                                     f"already used by {other}"))
        for i, conn in enumerate(service.connections):
            if (other := first(service.namespace, conn.id)) is not None:
                problems.append(InputError(
                    path, f"$.ipsec_site_connections[{i}].id",
                    f"connection id {conn.id!r} is already used in namespace "
                    f"{service.namespace} by {other}"))
        return problems
