"""What vpnd holds of one state file between two looks at it (pure).

One frozen value a file: the stamp and digest that tell whether it must
be read or parsed again, what it says now (validation's Parsed, not a
copy of its fields), and the last valid version it serves meanwhile. A
file that becomes invalid keeps serving its last valid version, so a
typo never tears a tunnel down; a service with some invalid connections
serves the last valid version of each of those.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from vpnd.base.model import Service
from vpnd.state.validation import Parsed


def digest(raw: bytes, st) -> bytes:
    """What a file says and who may change it: the same bytes under
    another owner or mode are not the same file (trust.py decides on both)."""
    return hashlib.blake2b(raw + b"\0%d:%d" % (st.st_uid, st.st_mode),
                           digest_size=16).digest()


# What a valid file without a problem says besides its service: nothing,
# one value for all of them (its own Parsed, with its empty books and the
# ids it names, was 380 B a file at 10,000). Never changed.
CLEAN = Parsed(None)


@dataclass(frozen=True, slots=True)
class FileState:
    stamp: object  # of its stat and the dir's standing: the same stamp is not read again
    digest: bytes  # of the bytes read, with who may write them (b"" if none were)
    parsed: Parsed  # what it says now, but for the service (`service`): its problems
    last_valid: Service | None  # what it last said validly, all of it
    # Valid now, with its invalid connections' last valid versions.
    service: Service | None
    warning: str | None = None  # unsafe but allowed (readable by others)

    @classmethod
    def judged(cls, stamp, digest: bytes, parsed: Parsed, warning: str | None,
               last_valid: Service | None) -> FileState:
        """A file as read now; `last_valid`: what it last said validly (now,
        if it is valid: the caller's to say, as it reads a kept copy only
        when it must)."""
        service = None if parsed.service is None else \
            _merged(parsed.service, parsed.broken, last_valid)
        if service is not None and not (parsed.errors or parsed.broken or parsed.warnings):
            parsed = CLEAN
        return cls(stamp, digest, parsed, last_valid, service, warning)

    @property
    def serves(self) -> Service | None:
        """What vpnd acts on for this file: valid now, else its last valid version."""
        return self.service or self.last_valid


def _merged(service: Service, broken, last_valid: Service | None) -> Service:
    """A service with invalid connections: its valid ones, and the last
    valid version of each invalid one that had one (a typo in one
    connection tears no tunnel down)."""
    if last_valid is None or not broken:
        return service
    kept = tuple(c for c in last_valid.connections if c.id in broken)
    return dataclasses.replace(service, connections=(*service.connections, *kept))
