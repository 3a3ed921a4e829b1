"""Logging to the systemd journal over its native protocol.

Each log event becomes one journal entry with structured fields:
VPND_EVENT, VPND_SERVICE, VPND_CONNECTION, VPND_NETNS, and IKE_SA_NAME set
to the name charon uses for the connection (its id), so that
`journalctl IKE_SA_NAME=<id>` shows charon's lines and vpnd's together.
Each event type has a fixed MESSAGE_ID. No library needed: the protocol is
a datagram of KEY=value lines.
"""
from __future__ import annotations

import array
import errno
import fcntl
import os
import re
import socket
import struct

SOCKET = "/run/systemd/journal/socket"

# Fixed ids per event type, so that `journalctl MESSAGE_ID=...` finds them.
MESSAGE_IDS = {
    "connection-up": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e51",
    "connection-down": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e52",
    "config-invalid": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e53",
    "change-applied": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e54",
    "charon-started": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e55",
    "charon-lost": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e56",
    "charon-incomplete": "5d3c1f8a9b2e4c7d8e6f0a1b2c3d4e57",
}

# vpnd's event names -> journal event types.
_EVENT_TYPES = {
    "invalid state file": "config-invalid",
    "invalid connection": "config-invalid",
    "change applied": "change-applied",
    "charon started": "charon-started",
    "charon lost": "charon-lost",
    "charon unavailable": "charon-lost",
    "charon incomplete": "charon-incomplete",
}

_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}
_FIELD = re.compile(r"[^A-Z0-9_]")


def under_journald() -> bool:
    """True when stderr is the journal stream systemd gave us."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if ":" not in stream:
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def event_type(event_dict: dict) -> str:
    event = event_dict.get("event", "")
    if event == "connection status":
        return "connection-up" if event_dict.get("status") == "ACTIVE" else "connection-down"
    return _EVENT_TYPES.get(event, re.sub(r"\W+", "-", str(event)).strip("-").lower())


def fields(level: str, event_dict: dict) -> dict[str, str]:
    """The journal entry for one structlog event (pure)."""
    kind = event_type(event_dict)
    extras = {k: v for k, v in event_dict.items() if k not in ("event", "timestamp", "level")}
    text = " ".join([str(event_dict.get("event", ""))] +
                    [f"{k}={v}" for k, v in sorted(extras.items())])
    out = {"MESSAGE": text, "PRIORITY": str(_PRIORITY.get(level, 6)),
           "SYSLOG_IDENTIFIER": "vpnd", "VPND_EVENT": kind}
    if kind in MESSAGE_IDS:
        out["MESSAGE_ID"] = MESSAGE_IDS[kind]
    for key, field in (("service", "VPND_SERVICE"), ("connection", "VPND_CONNECTION"),
                       ("netns", "VPND_NETNS")):
        if event_dict.get(key):
            out[field] = str(event_dict[key])
    if event_dict.get("connection"):
        out["IKE_SA_NAME"] = str(event_dict["connection"])
    for key, value in extras.items():
        name = "VPND_" + _FIELD.sub("_", key.upper())
        out.setdefault(name, str(value))
    return out


def encode(entry: dict[str, str]) -> bytes:
    parts = []
    for key, value in entry.items():
        # A file name that is not UTF-8 reaches here as surrogate escapes.
        data = value.encode("utf-8", "backslashreplace")
        if b"\n" in data:
            parts.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode() + b"=" + data + b"\n")
    return b"".join(parts)


class JournalLogger:
    """A structlog logger that sends each event to journald."""

    def __init__(self, path: str = SOCKET):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def msg(self, entry: dict[str, str] | None = None, **fields: str) -> None:
        # structlog passes a dict returned by the renderer as keywords.
        data = encode(entry or fields)
        try:
            self.sock.sendto(data, self.path)
        except OSError as e:
            if e.errno in (errno.EMSGSIZE, errno.ENOBUFS):
                self._send_large(data)
            # else the journal went away: logging must never stop vpnd

    def _send_large(self, data: bytes) -> None:
        """An entry too big for one datagram (a long traceback, thousands
        of errors) goes as a sealed memfd, as sd_journal_send does; if even
        that fails, a line on stderr says what was lost."""
        fd = None
        try:
            fd = os.memfd_create("vpnd-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.write(fd, data)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                        | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
            self.sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                    array.array("i", [fd]))], 0, self.path)
        except OSError as e:
            try:
                os.write(2, f"vpnd: a {len(data)}-byte journal entry was lost: {e}\n"
                         .encode())
            except OSError:
                pass
        finally:
            if fd is not None:
                os.close(fd)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def renderer(logger, method_name, event_dict):
    """structlog's last processor when logging to the journal."""
    return fields(event_dict.get("level", method_name), event_dict)
