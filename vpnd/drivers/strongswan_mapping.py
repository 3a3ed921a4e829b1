"""Neutron VPNaaS model -> strongSwan VICI messages. Pure and table-driven.

Every Neutron value that reaches strongSwan goes through one of the tables
below; the mapping table in docs/design.md is written from them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vpnd.base.bounds import children as children_of
from vpnd.base.errors import Unsupported
from vpnd.base.model import Connection, Lifetime


ENCRYPTION = {
    "3des": "3des",
    "aes-128": "aes128",
    "aes-192": "aes192",
    "aes-256": "aes256",
    **{f"aes-{k}-{mode}-{icv}": f"aes{k}{mode}{icv}"
       for k in (128, 192, 256) for mode in ("ccm", "gcm") for icv in (8, 12, 16)},
    **{f"aes-{k}-ctr": f"aes{k}ctr" for k in (128, 192, 256)},
}

INTEGRITY = {
    "sha1": "sha1",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    "aes-xcbc": "aesxcbc",
    "aes-cmac": "aescmac",
}

# With an AEAD cipher IKE still needs a PRF; Neutron's auth_algorithm names it.
PRF = {name: f"prf{alg}" for name, alg in INTEGRITY.items()}

DH_GROUPS = {
    "group2": "modp1024",
    "group5": "modp1536",
    "group14": "modp2048",
    "group15": "modp3072",
    "group16": "modp4096",
    "group17": "modp6144",
    "group18": "modp8192",
    "group19": "ecp256",
    "group20": "ecp384",
    "group21": "ecp521",
    "group22": "modp1024s160",
    "group23": "modp2048s224",
    "group24": "modp2048s256",
    "group25": "ecp192",
    "group26": "ecp224",
    "group27": "ecp224bp",
    "group28": "ecp256bp",
    "group29": "ecp384bp",
    "group30": "ecp512bp",
    "group31": "curve25519",
}

IKE_VERSION = {"v1": "1", "v2": "2"}

START_ACTION = {"bi-directional": "start", "response-only": "none"}

# Neutron's dpd_action -> CHILD_SA dpd_action. "hold" is openswan's name for
# strongSwan's "trap"; "restart-by-peer" has no strongSwan equivalent: an
# SA found dead is cleared and the peer, which restarted, initiates again.
DPD_ACTION = {
    "hold": "trap",
    "clear": "clear",
    "restart": "restart",
    "restart-by-peer": "clear",
    "disabled": "clear",
}

@dataclass(frozen=True)
class Rendered:
    """What one Neutron connection becomes in charon."""

    name: str  # IKE connection name (== Neutron connection id)
    conn: dict  # the load-conn message: {name: {...}}
    secret_id: str
    secret: dict = field(repr=False)  # the load-shared message, holds the PSK
    children: tuple[str, ...]


def secret_id(conn_id: str) -> str:
    return f"vpnd-{conn_id}"


def render(conn: Connection, libipsec: bool) -> Rendered:
    """Map one connection; raises Unsupported with a reason a user can act on."""
    _check_data_plane(conn.ipsecpolicy, libipsec)
    local_id = conn.local_id or conn.external_ip
    ike_msg = _ike_side(conn, local_id)
    children = _children(conn, _child_side(conn, libipsec))
    ike_msg["children"] = children
    return Rendered(name=conn.id, conn={conn.id: ike_msg},
                    secret_id=secret_id(conn.id), secret=_secret(conn, local_id),
                    children=tuple(children))


def _check_data_plane(ipsec, libipsec: bool) -> None:
    """What the data plane in use (or strongSwan itself) cannot carry."""
    if libipsec and ipsec.transform_protocol != "esp":
        raise Unsupported(f"transform_protocol {ipsec.transform_protocol} needs "
                          "kernel IPsec; the userspace data plane (kernel-libipsec) "
                          "does ESP only")
    if libipsec and ipsec.encapsulation_mode != "tunnel":
        raise Unsupported("encapsulation_mode transport needs kernel IPsec; the "
                          "userspace data plane (kernel-libipsec) does tunnel only")
    if ipsec.transform_protocol == "ah-esp":
        raise Unsupported("strongSwan cannot bundle AH with ESP (ah-esp)")


def _ike_side(conn: Connection, local_id: str) -> dict:
    """The IKE-level part of the load-conn message (children still empty)."""
    ike = conn.ikepolicy
    ike_msg = {
        "version": IKE_VERSION[ike.ike_version],
        "remote_addrs": [conn.peer_address],
        "proposals": [_ike_proposal(ike)],
        "aggressive": "yes" if ike.phase1_negotiation_mode == "aggressive" else "no",
        # MOBIKE would let an SA wander off the router's external address.
        "mobike": "no",
        # With "no", two ends initiating at once each honour the other's
        # INITIAL_CONTACT and can delete both IKE_SAs, leaving no tunnel.
        # vpnd ends duplicates itself (upkeep.duplicates), deterministically.
        # Only a charon that lost its connections asks (with_initial_contact).
        "unique": "never",
        "local": {"auth": "psk", **({"id": local_id} if local_id else {})},
        "remote": {"auth": "psk", "id": conn.peer_id},
        **_ike_lifetime(ike.lifetime),
        **_dpd(conn),
        "children": {},
    }
    if conn.external_ip:
        ike_msg["local_addrs"] = [conn.external_ip]
    return ike_msg


def _child_side(conn: Connection, libipsec: bool) -> dict:
    """What every CHILD_SA of the connection shares (all but its selectors)."""
    ipsec = conn.ipsecpolicy
    child = {
        "mode": ipsec.encapsulation_mode,
        "start_action": START_ACTION[conn.initiator],
        "dpd_action": _dpd_action(conn, libipsec),
        **_child_lifetime(ipsec.lifetime),
    }
    key = "ah_proposals" if ipsec.transform_protocol == "ah" else "esp_proposals"
    child[key] = [_child_proposal(ipsec)]
    return child


def _children(conn: Connection, child: dict) -> dict:
    """The CHILD_SAs by name, each with its traffic selectors."""
    children = {}
    if children_of(len(conn.local_cidrs), len(conn.peer_cidrs),
                   conn.ikepolicy.ike_version) > 1:
        # IKEv1 negotiates one subnet pair per CHILD_SA: one child per pair,
        # rather than silently using only the first.
        pairs = [(l, p) for l in conn.local_cidrs for p in conn.peer_cidrs]
        for i, (l, p) in enumerate(pairs):
            children[f"{conn.id}-{i}"] = {**child, "local_ts": [l], "remote_ts": [p]}
    else:
        children[conn.id] = {**child, "local_ts": list(conn.local_cidrs),
                             "remote_ts": list(conn.peer_cidrs)}
    return children


def _secret(conn: Connection, local_id: str) -> dict:
    """The load-shared message: the PSK, under an id of vpnd's own."""
    owners = [o for o in (local_id, conn.peer_id) if o]
    return {"id": secret_id(conn.id), "type": "IKE", "data": conn.psk, "owners": owners}


def with_initial_contact(conn_message: dict) -> dict:
    """A load-conn message for a charon that lost these connections (it
    died): with unique=no, charon sends INITIAL_CONTACT on its first IKE_SA
    to a peer it has no SA with, and the peer ends the SAs it still holds
    of the dead charon; with never, an independent peer keeps them until
    its DPD gives up. The price: this connection also honours a peer's
    INITIAL_CONTACT, which a vpnd peer (unique=never) never sends. The
    record's fingerprint is of the rendered message, so this changes no
    record: the next real change loads unique=never again."""
    return {name: {**ike, "unique": "no"} for name, ike in conn_message.items()}


def not_started(conn_message: dict) -> dict:
    """A load-conn message whose CHILD_SAs charon does not start on load
    (a connection in standby: its local address is on another node)."""
    return {name: {**ike, "children": {c: {**child, "start_action": "none"}
                                       for c, child in ike.get("children", {}).items()}}
            for name, ike in conn_message.items()}


def _ike_proposal(ike) -> str:
    enc = ENCRYPTION[ike.encryption_algorithm]
    dh = DH_GROUPS[ike.pfs]
    if is_aead(ike.encryption_algorithm):
        if ike.ike_version == "v1":
            raise Unsupported(f"IKEv1 cannot use the AEAD cipher "
                              f"{ike.encryption_algorithm} for IKE; use IKEv2 "
                              "or a non-AEAD cipher")
        return f"{enc}-{PRF[ike.auth_algorithm]}-{dh}"
    return f"{enc}-{INTEGRITY[ike.auth_algorithm]}-{dh}"


def _child_proposal(ipsec) -> str:
    dh = DH_GROUPS[ipsec.pfs]
    if ipsec.transform_protocol == "ah":
        return f"{INTEGRITY[ipsec.auth_algorithm]}-{dh}"
    enc = ENCRYPTION[ipsec.encryption_algorithm]
    if is_aead(ipsec.encryption_algorithm):
        return f"{enc}-{dh}"
    return f"{enc}-{INTEGRITY[ipsec.auth_algorithm]}-{dh}"


def is_aead(algorithm: str) -> bool:
    return "-gcm-" in algorithm or "-ccm-" in algorithm


def _soft(hard: int) -> int:
    # Rekey at 90% of the hard limit, as ipsec.conf's default margin roughly
    # does; strongSwan 5.9.8 does not derive one from the other.
    return hard * 9 // 10


def _ike_lifetime(lifetime: Lifetime) -> dict:
    if lifetime.units != "seconds":
        raise Unsupported("strongSwan has no volume limit for IKE SAs; "
                          "use lifetime units 'seconds' in the ikepolicy")
    rekey = _soft(lifetime.value)
    return {"rekey_time": f"{rekey}s", "over_time": f"{lifetime.value - rekey}s"}


def _child_lifetime(lifetime: Lifetime) -> dict:
    if lifetime.units == "seconds":
        return {"life_time": f"{lifetime.value}s",
                "rekey_time": f"{_soft(lifetime.value)}s"}
    hard = lifetime.value * 1024
    return {"life_bytes": str(hard), "rekey_bytes": str(_soft(hard))}


def _dpd(conn: Connection) -> dict:
    if conn.dpd.action == "disabled":
        return {"dpd_delay": "0s"}
    return {"dpd_delay": f"{conn.dpd.interval}s", "dpd_timeout": f"{conn.dpd.timeout}s"}


def _dpd_action(conn: Connection, libipsec: bool) -> str:
    if conn.initiator == "response-only":
        # Never initiate, not even from a trap or a DPD restart: the peer does.
        return "clear"
    if libipsec and conn.dpd.action == "hold":
        # kernel-libipsec raises no acquires: a trap would drop traffic for
        # good, so the SA is re-established at once instead.
        return "restart"
    return DPD_ACTION[conn.dpd.action]
