"""Neutron VPNaaS vocabulary: the allowed values and the defaults.

Taken from neutron-lib's VPN API definition and neutron-vpnaas's database
defaults, so that a file Neutron would accept is accepted here and one it
would reject is rejected with the same reasoning.
"""

INITIATORS = ("bi-directional", "response-only")

ENCRYPTION_ALGORITHMS = (
    "3des", "aes-128", "aes-192", "aes-256",
    *(f"aes-{k}-{mode}-{icv}" for mode in ("ccm", "gcm") for icv in (8, 12, 16)
      for k in (128, 192, 256)),
    # neutron-lib's vpn-aes-ctr extension
    "aes-128-ctr", "aes-192-ctr", "aes-256-ctr",
)

AUTH_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac")

# Listed by neutron-lib's API (vpn.py) but gone from neutron-vpnaas 29's
# database: its migration 842256a43ce2 rewrites them to these. Older
# servers still send them, so vpnd accepts them, with a warning.
REMOVED_IN_29 = {
    "auth_algorithm": {"sha1": "sha256"},
    "encryption_algorithm": {"3des": "aes-256"},
}

PFS_GROUPS = ("group2", "group5", *(f"group{n}" for n in range(14, 32)))

DPD_ACTIONS = ("clear", "disabled", "hold", "restart", "restart-by-peer")

TRANSFORM_PROTOCOLS = ("ah", "ah-esp", "esp")

ENCAPSULATION_MODES = ("transport", "tunnel")

# neutron-lib accepts only seconds in the API; the database model (and so
# the agent payload) also carries kilobytes.
LIFETIME_UNITS = ("seconds", "kilobytes")
LIFETIME_MIN = 60

IKE_VERSIONS = ("v1", "v2")

PHASE1_MODES = ("main", "aggressive")

MIN_MTU = {4: 68, 6: 1280}
MAX_MTU = 65535  # the largest IPv4 or IPv6 (non-jumbogram) packet
# What a tunnel can carry, within strongSwan's 32-bit time values and
# 64-bit byte counts (with room for the 90 % rekey margin).
MAX_DPD_SECONDS = 86400
MAX_LIFETIME = {"seconds": 2**31 - 1, "kilobytes": 2**44}
# A VICI value carries a 16-bit length; identities and PSKs stay far below.
MAX_PSK_LENGTH = 1024
MAX_ID_LENGTH = 255

DEFAULT_LIFETIME = {"units": "seconds", "value": 3600}

IKEPOLICY_DEFAULTS = {
    "auth_algorithm": "sha1",
    "encryption_algorithm": "aes-128",
    "phase1_negotiation_mode": "main",
    "ike_version": "v1",
    "pfs": "group5",
}

IPSECPOLICY_DEFAULTS = {
    "transform_protocol": "esp",
    "auth_algorithm": "sha1",
    "encryption_algorithm": "aes-128",
    "encapsulation_mode": "tunnel",
    "pfs": "group5",
}

CONNECTION_DEFAULTS = {
    "mtu": 1500,
    "initiator": "bi-directional",
    "admin_state_up": True,
    "local_id": "",
}

DPD_DEFAULTS = {"action": "hold", "interval": 30, "timeout": 120}
