"""State file bytes -> a JSON document, with bounds (pure).

Python's json module accepts what a state file must not be: UTF-16 (it
guesses the encoding), NaN and Infinity, integers of thousands of digits,
nesting deep enough to exhaust the stack, and the same key twice (the last
one silently wins). Each of these is a clear error here, naming the file.
"""
from __future__ import annotations

import codecs
import json
import math
import sys

from vpnd.base.errors import InputError, shown

MAX_INT_DIGITS = 20  # nothing in a state file needs more than a 64-bit number


class _Refused(ValueError):
    pass


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits "
                       f"(at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"a number too large to use: {text[:40]}")
    return value


def _constant(name: str):
    raise _Refused(f"{name} is not a number JSON allows")


# Values this short are shared, not held once per file: at 10,000 files the
# same algorithm names, CIDRs and addresses would cost 0.7 kB a connection.
_SHARED_MAX = 64
# Values that are each connection's own: sharing them would only cost the
# table (and a PSK is never shared). Peer CIDRs too, most often: 10,000 of
# them grew the interpreter's table of shared strings by 0.9 MB.
_OWN = frozenset({"id", "psk", "peer_address", "peer_id", "name", "description",
                  "peer_cidrs"})


def _object(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"the key {shown(key)} appears twice in one object")
        if key not in _OWN:
            value = _shared(value)
        result[_shared(key)] = value
    return result


def _shared(value):
    if type(value) is str:
        return sys.intern(value) if len(value) <= _SHARED_MAX else value
    if type(value) is list:
        return [_shared(v) if type(v) is str else v for v in value]
    return value


def decode(raw: bytes, file: str) -> tuple[object, list[InputError]]:
    """(the document, []) or (None, [the error])."""
    def fail(message):
        return None, [InputError(file, "$", message)]

    if not raw.strip():
        return fail("empty file")
    if raw.startswith(codecs.BOM_UTF8):
        return fail("starts with a byte order mark: save it as UTF-8 without one")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return fail("UTF-16 text: save it as UTF-8")
    if b"\x00" in raw:
        return fail("has NUL bytes: UTF-16 or binary, not UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return fail(f"not UTF-8 text (byte {e.start})")
    try:
        return json.loads(text, parse_int=_int, parse_float=_float,
                          parse_constant=_constant, object_pairs_hook=_object), []
    except _Refused as e:
        return fail(f"not valid JSON here: {e}")
    except json.JSONDecodeError as e:
        return fail(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    except RecursionError:
        return fail("nested too deeply")
