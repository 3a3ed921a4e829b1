"""The one place the tests build state files.

Neutron agent-shaped documents with documentation addresses only. Each
builder returns a fresh dict, so a test may change what it got.
"""
from __future__ import annotations

import json
from pathlib import Path

# The minimal service: one connection from 192.0.2.0/24 (behind
# 203.0.113.1) to 198.51.100.0/24 (behind 203.0.113.2); Neutron's
# defaults fill the rest.
LOCAL_IP, PEER_IP = "203.0.113.1", "203.0.113.2"
LOCAL_CIDR, PEER_CIDR = "192.0.2.0/24", "198.51.100.0/24"


def connection_doc(conn_id: str = "c1", psk: str = "factory-psk-1", **overrides) -> dict:
    """A minimal ipsec_site_connection; keyword arguments replace fields."""
    return {"id": conn_id, "peer_address": PEER_IP, "peer_id": PEER_IP,
            "local_cidrs": [LOCAL_CIDR], "peer_cidrs": [PEER_CIDR], "psk": psk,
            **overrides}


def service_doc(service_id: str = "svc", conns=None, **overrides) -> dict:
    """A service with `conns` (default: one minimal connection). Without a
    namespace in `overrides` it names a router, as Neutron does."""
    doc = {"id": service_id, "external_ip": LOCAL_IP,
           "ipsec_site_connections": [connection_doc()] if conns is None else list(conns),
           **overrides}
    if "namespace" not in doc:
        doc.setdefault("router_id", "r1")
    return doc


def parsed(doc: dict, file: str = "f.json"):
    """The service a valid document becomes (asserting it is valid)."""
    from vpnd.state.validation import parse_service
    service, errors = parse_service(doc, file)
    assert not errors, errors
    return service


def write_service(directory: Path, name: str, doc: dict) -> Path:
    path = Path(directory) / name
    path.write_text(json.dumps(doc))
    return path


def many_service(namespace: str, n: int, initiator: str = "response-only") -> dict:
    """A service with n connections to distinct benchmark peers (198.18.0.0/15)."""
    conns = [connection_doc(f"c{i}", f"psk-{i}-xyz", peer_address=f"198.19.0.{i % 250 + 1}",
                            peer_id=f"198.19.0.{i % 250 + 1}", local_cidrs=["198.18.1.0/24"],
                            peer_cidrs=[f"198.19.{i // 250}.{i % 250 + 1}/32"],
                            initiator=initiator) for i in range(n)]
    return service_doc(f"svc-{namespace}", conns, namespace=namespace,
                       external_ip="198.18.0.1")


# --- the two-site lab (lab/testbed.py) ----------------------------------------

def site_connection(conn_id, local, peer, psk, v6=False, **overrides) -> dict:
    """A connection from one lab site to the other, with every field an
    agent sends."""
    conn = {
        "id": conn_id,
        "peer_address": peer.wan6 if v6 else peer.wan4,
        "peer_id": peer.wan6 if v6 else peer.wan4,
        "local_cidrs": [local.lan6 if v6 else local.lan4],
        "peer_cidrs": [peer.lan6 if v6 else peer.lan4],
        "psk": psk,
        "mtu": 1500,
        "initiator": "bi-directional",
        "dpd_action": "restart",
        "dpd_interval": 30,
        "dpd_timeout": 120,
        "admin_state_up": True,
        "ikepolicy": {"ike_version": "v2", "auth_algorithm": "sha256",
                      "encryption_algorithm": "aes-128", "pfs": "group14",
                      "phase1_negotiation_mode": "main",
                      "lifetime_units": "seconds", "lifetime_value": 3600},
        "ipsecpolicy": {"transform_protocol": "esp", "auth_algorithm": "sha256",
                        "encryption_algorithm": "aes-128", "encapsulation_mode": "tunnel",
                        "pfs": "group14", "lifetime_units": "seconds",
                        "lifetime_value": 3600},
    }
    conn.update(overrides)
    return conn


def site_service(service_id, local, conns, v6=False) -> dict:
    return {"id": service_id, "router_id": f"router-{service_id}",
            "namespace": local.gw, "admin_state_up": True,
            "external_ip": local.wan6 if v6 else local.wan4,
            "name": "a name Neutron sends and vpnd ignores",
            "ipsec_site_connections": conns}
