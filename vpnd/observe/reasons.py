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
# The peer's answer when our proposal matched but its kernel could not
# install the CHILD_SA is the same NO_PROPOSAL_CHOSEN: said honestly.
NO_PROPOSAL = "no proposal chosen (algorithms do not match the peer's, or its kernel " \
              "cannot carry them)"
# charon's kernel-netlink refused to add the SAs (a kernel without ESP, or
# without one algorithm): the IKE_SA is up, the tunnel never is.
KERNEL_REFUSED = "the kernel refused the CHILD_SA (no ESP, or not for these algorithms: " \
                 "see vpnd doctor, or set charon.libipsec: true)"
TS_UNACCEPTABLE = "traffic selectors unacceptable (CIDRs do not match the peer's)"
PEER_UNREACHABLE = "peer unreachable (no answer to IKE)"
DELETED_BY_PEER = "deleted by the peer"

_TABLE = [
    (re.compile(r"unable to install (inbound and outbound )?IPsec SA \(SAD\) in kernel|"
                r"unable to add SAD entry", re.I), KERNEL_REFUSED),
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


# What the peer says after our own kernel refused (it answers our failed
# install, or deletes the half-made SA) must not hide that cause.
_AFTER_KERNEL = frozenset({NO_PROPOSAL, DELETED_BY_PEER})


def replaces(old: str | None, new: str) -> bool:
    """Whether a newly classified reason replaces the one a connection has
    (until it is ACTIVE again, which clears it)."""
    return old != new and not (old == KERNEL_REFUSED and new in _AFTER_KERNEL)


def classify(message: str) -> str | None:
    for pattern, reason in _TABLE:
        if pattern.search(message):
            return reason
    return None
