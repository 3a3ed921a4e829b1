"""What one state file may cost: the bounds validation enforces.

A tenant chooses a connection's CIDRs and policies; with IKEv1 every local
x peer pair becomes a CHILD_SA of its own, so a 22 kB file of 600 CIDRs a
side asked for 360,000 of them (5 s of the loop and 400 MB before any VICI
call). These bounds are counted on the raw values, before anything is
built, and they keep every rendered load-conn message far inside the
512 KiB charon's VICI accepts (the largest a bounded connection can render
is measured in tests/unit/test_bounds.py). Pure.
"""
from __future__ import annotations

# CIDRs on one side of one connection (local_cidrs, peer_cidrs or an
# endpoint group). Site-to-site peers list a handful; 64 /32s of a side in
# one IKEv2 CHILD_SA already make a 1 kB traffic-selector payload.
CIDRS_PER_SIDE = 64
# CHILD_SAs one IKEv1 connection may ask for (local x peer CIDRs).
IKEV1_PAIRS = 64
# CHILD_SAs one file may declare in all: one file costs at most what a full
# node of one-CIDR connections costs (the bench's 10,000).
CHILDREN_PER_FILE = 10_000
# What charon's VICI refuses (VICI_MESSAGE_SIZE_MAX in strongSwan 5.9).
VICI_MESSAGE_MAX = 512 * 1024


def children(local: int, peer: int, ike_version: str) -> int:
    """How many CHILD_SAs a connection of these CIDR counts becomes
    (strongswan_mapping.render makes exactly these)."""
    if ike_version == "v1" and (local > 1 or peer > 1):
        return local * peer
    return 1
