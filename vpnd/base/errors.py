"""Error types that reach a user."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputError:
    """One problem in one input file, located by a JSON path ("$.a[0].b")."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ConfigError(Exception):
    """The daemon configuration (vpnd.yaml) is unusable."""


class DriverError(Exception):
    """A call to the IKE daemon failed; the message is safe to show."""


class DriverUnavailable(DriverError):
    """The IKE daemon of a namespace cannot be reached (not running, hung)."""


class CharonNotAnswering(DriverUnavailable):
    """The IKE daemon took a connection but missed a call's deadline
    (stopped, wedged, overloaded)."""


class Unsupported(Exception):
    """The IKE daemon, or the data plane in use, cannot do what a connection
    asks for; the message says why, for the connection's ERROR status."""


def shown(value, limit: int = 64) -> str:
    """A value as an error quotes it: its repr, cut to `limit` characters
    (a 70,000-character value must not make a 70,000-character log line)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"
