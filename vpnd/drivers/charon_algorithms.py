"""What each Neutron algorithm needs from a running charon (pure).

A charon without the plugin for an algorithm cannot negotiate it; its VICI
get-algorithms answer says what it can, and `missing_algorithms` says
which field of a connection it cannot carry.
"""
from __future__ import annotations

from vpnd.base.model import Connection
from vpnd.drivers.strongswan_mapping import is_aead

# What each Neutron value needs from charon, as VICI get-algorithms names
# it: (category, algorithm). A charon without the plugin cannot negotiate it.
ALGORITHM_NEEDS = {
    "encryption": {
        "3des": ("encryption", "3DES_CBC"),
        **{f"aes-{k}": ("encryption", "AES_CBC") for k in (128, 192, 256)},
        **{f"aes-{k}-{mode}-{icv}": ("aead", f"AES_{mode.upper()}_{icv}")
           for k in (128, 192, 256) for mode in ("ccm", "gcm") for icv in (8, 12, 16)},
        **{f"aes-{k}-ctr": ("encryption", "AES_CTR") for k in (128, 192, 256)},
    },
    "integrity": {
        "sha1": ("integrity", "HMAC_SHA1_96"),
        "sha256": ("integrity", "HMAC_SHA2_256_128"),
        "sha384": ("integrity", "HMAC_SHA2_384_192"),
        "sha512": ("integrity", "HMAC_SHA2_512_256"),
        "aes-xcbc": ("integrity", "AES_XCBC_96"),
        "aes-cmac": ("integrity", "AES_CMAC_96"),
    },
    "prf": {
        "sha1": ("prf", "PRF_HMAC_SHA1"),
        "sha256": ("prf", "PRF_HMAC_SHA2_256"),
        "sha384": ("prf", "PRF_HMAC_SHA2_384"),
        "sha512": ("prf", "PRF_HMAC_SHA2_512"),
        "aes-xcbc": ("prf", "PRF_AES128_XCBC"),
        "aes-cmac": ("prf", "PRF_AES128_CMAC"),
    },
    "dh": {group: ("dh", name) for group, name in {
        "group2": "MODP_1024", "group5": "MODP_1536", "group14": "MODP_2048",
        "group15": "MODP_3072", "group16": "MODP_4096", "group17": "MODP_6144",
        "group18": "MODP_8192", "group19": "ECP_256", "group20": "ECP_384",
        "group21": "ECP_521", "group22": "MODP_1024_160", "group23": "MODP_2048_224",
        "group24": "MODP_2048_256", "group25": "ECP_192", "group26": "ECP_224",
        "group27": "ECP_224_BP", "group28": "ECP_256_BP", "group29": "ECP_384_BP",
        "group30": "ECP_512_BP", "group31": "CURVE_25519"}.items()},
}


def missing_algorithms(conn: Connection, available: dict[str, set[str]]) -> str | None:
    """Why charon cannot negotiate this connection, or None if it can.
    `available` is get-algorithms' answer: category -> algorithm names."""
    ike, ipsec = conn.ikepolicy, conn.ipsecpolicy
    needs = [
        ("ikepolicy.encryption_algorithm", ike.encryption_algorithm, "encryption"),
        ("ikepolicy.auth_algorithm", ike.auth_algorithm, "prf"),
        ("ikepolicy.pfs", ike.pfs, "dh"),
        ("ipsecpolicy.pfs", ipsec.pfs, "dh"),
    ]
    if not is_aead(ike.encryption_algorithm):
        needs.append(("ikepolicy.auth_algorithm", ike.auth_algorithm, "integrity"))
    if ipsec.transform_protocol != "ah":
        needs.append(("ipsecpolicy.encryption_algorithm", ipsec.encryption_algorithm,
                      "encryption"))
    if ipsec.transform_protocol == "ah" or not is_aead(ipsec.encryption_algorithm):
        needs.append(("ipsecpolicy.auth_algorithm", ipsec.auth_algorithm, "integrity"))
    for field_name, value, table in needs:
        category, algorithm = ALGORITHM_NEEDS[table][value]
        if algorithm not in available.get(category, ()):
            return (f"charon cannot do {field_name} {value} ({algorithm}): "
                    "no loaded plugin provides it")
    return None
