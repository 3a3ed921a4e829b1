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


# charon 5.9.8's own lines when kernel-netlink cannot add the SAs (seen on
# this project's kernel, which has no ESP: tests/system/test_kernel_esp.py).
KERNEL_LINES = [
    "unable to add SAD entry with SPI c51c0d8f (FAILED)",
    "unable to install inbound and outbound IPsec SA (SAD) in kernel",
]


@pytest.mark.parametrize("message", KERNEL_LINES)
def test_a_kernel_refusal_is_named_as_the_kernels(message):
    assert reasons.classify(message) == reasons.KERNEL_REFUSED
    assert "kernel" in reasons.KERNEL_REFUSED and "libipsec" in reasons.KERNEL_REFUSED


def test_what_the_peer_says_after_our_kernel_refused_does_not_hide_it():
    k = reasons.KERNEL_REFUSED
    for after in ("received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built",
                  "received DELETE for IKE_SA c1[1]"):
        assert not reasons.replaces(k, reasons.classify(after))
    # A cause of its own still replaces it, and the kernel's replaces others.
    assert reasons.replaces(k, reasons.AUTH_FAILED)
    assert reasons.replaces(reasons.NO_PROPOSAL, k)
    assert reasons.replaces(None, reasons.NO_PROPOSAL)
    assert not reasons.replaces(reasons.NO_PROPOSAL, reasons.NO_PROPOSAL)


def test_no_proposal_says_the_peers_kernel_may_be_why():
    # The peer of a kernel without ESP gets NO_PROPOSAL_CHOSEN for a
    # proposal that matched: the reason must not send it to the algorithms only.
    assert "kernel" in reasons.NO_PROPOSAL
