"""One state file judged on its own: its bytes decoded (jsondoc) and
validated (validation), all of its problems in one Parsed.

Whatever a file holds, the answer is a Parsed naming the file: never an
exception (a bug in validation is logged, and only that file is the
worse for it), and never more than MAX_ERRORS problems of one kind, so
that a file of thousands of mistakes costs a status entry of twenty.
StateDir reads the directory through parse_bytes; `vpnd check` and the
tests read single files through read_file and check_file.
"""
from __future__ import annotations

from vpnd.base.errors import InputError
from vpnd.base.model import Service
from vpnd.state import jsondoc
from vpnd.state.safe_read import Unreadable, read_trusted
from vpnd.state.validation import Parsed, parse_confined
from vpnd.system import log

# A state file is a few kilobytes; an agent payload with many connections
# some hundreds. Anything larger is refused unread (config: state_file_max_bytes).
MAX_BYTES = 1 << 20
# At most this many problems of one file are reported (and logged); the
# rest are counted.
MAX_ERRORS = 20


def read_file(path: str, limit: int = MAX_BYTES) -> tuple[Service | None, list[InputError]]:
    """Read, decode and validate one file, all or nothing. Whatever it
    holds, the answer is a service or errors naming the file: never an
    exception, never a hang."""
    errors = (parsed := read_parsed(path, limit)).all_errors
    return (None, errors) if errors else (parsed.service, [])


def check_file(path: str, limit: int = MAX_BYTES) -> tuple[list[InputError], list[InputError]]:
    """`vpnd check` of one named file: its errors, and its warnings (values
    accepted but deprecated), which read_file has no place for."""
    parsed = read_parsed(path, limit)
    return parsed.all_errors, list(parsed.warnings)


def read_parsed(path: str, limit: int = MAX_BYTES) -> Parsed:
    """What the file at `path` says, read safely (safe_read.read_trusted)."""
    try:
        raw, _ = read_trusted(path, limit, None)
    except Unreadable as e:
        return Parsed(None, [e.problem])
    except Exception as e:  # noqa: BLE001 - a bug must not stop the others
        return _not_validated(path, e)
    return parse_bytes(path, raw)


def parse_bytes(path: str, raw: bytes) -> Parsed:
    """What `raw` says, validated as if `path` held it (a kept copy is
    judged under the name of the file it is a copy of)."""
    try:
        data, errors = jsondoc.decode(raw, path)
        if errors:
            return Parsed(None, errors)
        parsed = parse_confined(data, path)
    except Exception as e:  # noqa: BLE001 - a bug must not stop the others
        return _not_validated(path, e)
    return _bounded(path, parsed)


def _not_validated(path: str, e: Exception) -> Parsed:
    log.get().exception("validation failed", file=path)
    return Parsed(None, [InputError(path, "$", f"vpnd could not validate this file "
                                               f"({type(e).__name__}); see its log")])


def _bounded(path: str, parsed: Parsed) -> Parsed:
    """At most MAX_ERRORS problems (and broken connections, and warnings)
    reported; the rest are counted."""
    def cut(errors):
        if len(errors) <= MAX_ERRORS:
            return errors
        more = len(errors) - MAX_ERRORS
        return [*errors[:MAX_ERRORS],
                InputError(path, "$", f"and {more} more problem{'s' * (more > 1)}")]
    broken = {key: cut(errs) for key, errs in list(parsed.broken.items())[:MAX_ERRORS]}
    if len(parsed.broken) > MAX_ERRORS:
        more = len(parsed.broken) - MAX_ERRORS
        broken["$.ipsec_site_connections"] = [InputError(
            path, "$.ipsec_site_connections", f"and {more} more invalid connections")]
    return Parsed(parsed.service, cut(parsed.errors), broken, parsed.ids,
                  cut(parsed.warnings))
