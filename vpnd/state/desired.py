"""What the state directory asks for, as vpnd acts on it. Pure data, kept
up to date file by file (statefiles.StateDir): a change costs its own
file, not a rebuild of everything."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpnd.base.errors import InputError
from vpnd.base.model import Service

if TYPE_CHECKING:
    from vpnd.state.file_state import FileState


@dataclass
class DesiredState:
    """The state directory as vpnd will act on it. Changed only by the
    loop's thread; other threads read single entries, or take a copy."""

    services: dict[str, Service]  # file -> service (current or last valid)
    errors: dict[str, list[InputError]]  # file -> problems (file invalid now)
    # Invalid files with no valid version known to this process: whatever
    # they applied before stays as it is.
    held: set[str] = field(default_factory=set)
    # file -> what is unsafe but allowed about it (trust.warning)
    warnings: dict[str, str] = field(default_factory=dict)
    # file -> what it says that is allowed but deprecated (validation's
    # warnings, each with its JSON path)
    deprecations: dict[str, list[InputError]] = field(default_factory=dict)
    # file -> connection id (or JSON path) -> its problems: invalid
    # connections of a valid service (the others are applied)
    broken: dict[str, dict[str, list[InputError]]] = field(default_factory=dict)
    # file -> (service id, connection ids) as far as an invalid file's can
    # be read: it is reported under them
    ids: dict[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)
    # namespace -> the files of the services in it
    namespaces: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self):
        self.held = set(self.held)
        if not self.namespaces:
            for path, service in self.services.items():
                self.namespaces.setdefault(service.namespace, set()).add(path)

    def add(self, path: str, service: Service) -> None:
        self.drop(path)
        self.services[path] = service
        self.namespaces.setdefault(service.namespace, set()).add(path)

    def drop(self, path: str) -> None:
        self.held.discard(path)
        service = self.services.pop(path, None)
        if service is not None:
            paths = self.namespaces.get(service.namespace, set())
            paths.discard(path)
            if not paths:
                self.namespaces.pop(service.namespace, None)

    def record(self, path: str, file: FileState, clashes: list[InputError]) -> None:
        """What one file says, after forget(path): `clashes`, the ids an
        earlier file keeps, make it invalid (what it served stays held)."""
        parsed = file.parsed
        if parsed.errors or clashes:
            self.errors[path] = [*parsed.errors, *clashes]
        if file.warning:
            self.warnings[path] = file.warning
        if parsed.warnings:
            self.deprecations[path] = list(parsed.warnings)
        if parsed.broken:
            self.broken[path] = dict(parsed.broken)
        if file.service is None:
            self.ids[path] = parsed.ids
        if file.serves is None or clashes:
            self.held.add(path)
        else:
            self.add(path, file.serves)

    def forget(self, path: str) -> None:
        """Nothing of this file any more (before it is recorded anew)."""
        for book in (self.errors, self.warnings, self.deprecations, self.broken, self.ids):
            book.pop(path, None)
        self.drop(path)

    def problems(self) -> dict[str, list[InputError]]:
        """file -> every problem in it: the service's and its connections'."""
        out = {path: list(errors) for path, errors in list(self.errors.items())}
        for path, conns in list(self.broken.items()):
            out.setdefault(path, []).extend(e for errs in conns.values() for e in errs)
        return out

    def problems_of(self, path: str) -> list[InputError]:
        """Every problem in one file."""
        return [*self.errors.get(path, ()),
                *(e for errs in self.broken.get(path, {}).values() for e in errs)]

    def held_names(self, namespace: str) -> frozenset[str]:
        """Connections of valid services in `namespace` that are invalid
        now: whatever vpnd applied under their names stays as it is."""
        services = self.services
        return frozenset(name for path, conns in list(self.broken.items())
                         if path in services and services[path].namespace == namespace
                         for name in conns)
