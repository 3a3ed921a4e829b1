"""What the state directory asks for, as vpnd acts on it. Pure data."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InputError
from .model import Service


@dataclass(frozen=True)
class DesiredState:
    """The state directory as vpnd will act on it."""

    services: dict[str, Service]  # file -> service (current or last valid)
    errors: dict[str, list[InputError]]  # file -> problems (file invalid now)
    # Invalid files with no valid version known to this process: whatever
    # they applied before stays as it is.
    held: frozenset[str] = field(default_factory=frozenset)
    # file -> what is unsafe but allowed about it (trust.warning)
    warnings: dict[str, str] = field(default_factory=dict)
    # file -> connection id (or JSON path) -> its problems: invalid
    # connections of a valid service (the others are applied)
    broken: dict[str, dict[str, list[InputError]]] = field(default_factory=dict)
    # file -> (service id, connection ids) as far as an invalid file's can
    # be read: it is reported under them
    ids: dict[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)

    def problems(self) -> dict[str, list[InputError]]:
        """file -> every problem in it: the service's and its connections'."""
        out = {path: list(errors) for path, errors in self.errors.items()}
        for path, conns in self.broken.items():
            out.setdefault(path, []).extend(e for errs in conns.values() for e in errs)
        return out

    def held_names(self, namespace: str) -> frozenset[str]:
        """Connections of valid services in `namespace` that are invalid
        now: whatever vpnd applied under their names stays as it is."""
        return frozenset(name for path, conns in self.broken.items()
                         if path in self.services and self.services[path].namespace == namespace
                         for name in conns)
