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
