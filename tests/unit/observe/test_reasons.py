"""charon's log lines -> reasons an operator can act on."""
from __future__ import annotations

import pytest

from vpnd.observe import reasons


@pytest.mark.parametrize("message, reason", [
    ("received AUTHENTICATION_FAILED notify error", reasons.AUTH_FAILED),
    ("tried 1 shared key for '203.0.113.1' - '203.0.113.2', but MAC mismatched",
     reasons.AUTH_FAILED),
    ("received NO_PROPOSAL_CHOSEN notify error", reasons.NO_PROPOSAL),
    ("no acceptable proposal found", reasons.NO_PROPOSAL),
    ("received TS_UNACCEPTABLE notify, no CHILD_SA built", reasons.TS_UNACCEPTABLE),
    ("giving up after 4 retransmits", reasons.PEER_UNREACHABLE),
    ("DPD check timed out, enforcing DPD action", reasons.PEER_UNREACHABLE),
    ("no matching peer config found", None),  # names no connection: not attributable
    ("received DELETE for IKE_SA c1[3]", reasons.DELETED_BY_PEER),
    ("IKE_SA c1[1] established between 203.0.113.1...203.0.113.2", None),
    ("sending DPD request", None),
])
def test_classify(message, reason):
    assert reasons.classify(message) == reason
