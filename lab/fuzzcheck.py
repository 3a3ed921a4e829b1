"""The guarantees one fuzzed document must keep, in-process: valid or a
clean error naming the file, never an exception, and short; what is
valid renders to
VICI messages charon can be sent (every value fits VICI's 16-bit length,
none is None); no error repeats the PSK. Shared by the unit test and
scripts/faults."""
from __future__ import annotations

from collections import Counter

from vici.protocol import Message

from vpnd.state import jsondoc
from vpnd.drivers.strongswan_mapping import render
from vpnd.base.errors import InputError, Unsupported
from vpnd.state.validation import parse_confined

from .fuzz import PSK


def _has_none(node) -> bool:
    if node is None:
        return True
    if isinstance(node, dict):
        return any(_has_none(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_none(v) for v in node)
    return False


def check(raw: bytes, path: str, tally: Counter) -> tuple[bool, list]:
    """Raise AssertionError naming the broken guarantee; returns (wholly
    valid, the rendered (conn, secret) messages of its valid connections)."""
    data, errors = jsondoc.decode(raw, path)
    service = None
    if not errors:
        parsed = parse_confined(data, path)
        service, errors = parsed.service, parsed.all_errors
        # Confined: a service with errors is one whose connections hold them.
        assert parsed.errors == [] or service is None, parsed
        assert (service is None) <= bool(parsed.errors), parsed
    assert all(isinstance(e, InputError) and e.file == path for e in errors), errors
    assert not any(PSK in str(e) for e in errors), "an error repeats the PSK"
    # Bounded log volume: an error quotes at most the start of a value.
    assert all(len(str(e)) <= 1024 for e in errors), max(map(str, errors), key=len)[:200]
    if service is None:
        tally["refused"] += 1
        return False, []
    tally["valid" if not errors else "valid service, invalid connections"] += 1
    out = []
    for conn in service.connections:
        try:
            r = render(conn, libipsec=True)
        except Unsupported:
            tally["unsupported connections"] += 1
            continue
        for message in (r.conn, r.secret):
            assert not _has_none(message), message
            Message.serialize(message)  # raises if a value is too long for VICI
        tally["rendered connections"] += 1
        out.append((r.conn, r.secret))
    return not errors, out
