"""Why a connection is down, read from what charon logs about it.

Pure: charon's log messages (VICI `log` events, levels 0-1) in, a short
reason an operator can act on out. The table is ordered: the first pattern
that matches wins. Messages that say nothing about failure give None.

Each reason is one a real charon brings about in a test
(tests/system/test_reasons_on_the_wire.py, test_behaviour.py). Not here:
"the peer's identities match no connection" - the responder logs "no
matching peer config found" before it has picked a connection, so the
line names none (`<2>`, not `<c1 2>`) and cannot be put on one; the
initiator gets AUTHENTICATION_FAILED, which says "PSK or identities".
"""
from __future__ import annotations

import re

AUTH_FAILED = "authentication failed (PSK or identities do not match the peer's)"
NO_PROPOSAL = "no proposal chosen (algorithms do not match the peer's)"
TS_UNACCEPTABLE = "traffic selectors unacceptable (CIDRs do not match the peer's)"
PEER_UNREACHABLE = "peer unreachable (no answer to IKE)"
DELETED_BY_PEER = "deleted by the peer"

_TABLE = [
    (re.compile(r"AUTHENTICATION_FAILED|MAC mismatched|with pre-shared key failed|"
                r"verification of AUTH payload|INVALID_HASH_INFORMATION|"
                r"message parsing failed.*(hash|auth)", re.I), AUTH_FAILED),
    (re.compile(r"NO_PROPOSAL_CHOSEN|no acceptable proposal found|"
                r"no proposal (chosen|found)", re.I), NO_PROPOSAL),
    (re.compile(r"TS_UNACCEPT|no acceptable traffic selectors|traffic selectors .* unacceptable|"
                r"INVALID_ID_INFORMATION", re.I), TS_UNACCEPTABLE),
    (re.compile(r"giving up after \d+ retransmits|peer not responding|"
                r"DPD check timed out|establishing .* timed out", re.I), PEER_UNREACHABLE),
    (re.compile(r"received DELETE for IKE_SA", re.I), DELETED_BY_PEER),
]


def classify(message: str) -> str | None:
    for pattern, reason in _TABLE:
        if pattern.search(message):
            return reason
    return None
