"""Text for a terminal: what a file name or value holds is shown, never
obeyed. A state file's name, or a value quoted in an error, may hold a
newline (a forged line of output), a terminal escape (a cleared screen, a
retitled window), a bidi override (text shown reversed) or a byte that is
not UTF-8 (a lone surrogate after os.fsdecode, which print() refuses).
Pure."""
from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text) -> str:
    """`text` with every control, bidi or unencodable character escaped."""
    return _UNSAFE.sub(_escape, str(text))
