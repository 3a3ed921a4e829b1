"""Seeded mutations of a Neutron agent payload, for the fault suite.

`payloads(seed, n)` yields n state-file bodies (bytes): the payload
neutron-vpnaas's server sends its agents (make_vpnservice_dict), each
mutated one to three times, in its structure (a value replaced by one
from VALUES, a key dropped or added, a connection repeated) or in its text
(cut short, a byte flipped, a key given twice, a byte order mark, deep
nesting). The same seed gives the same documents.

Addresses are documentation ones only, and the namespace is one that the
caller says (the tests name one that does not exist, so that nothing a
payload says can send a packet).
"""
from __future__ import annotations

import copy
import json
import random

PSK = "fuzz-psk-3f9a"

# Values that have broken parsers before, or sit at a bound.
VALUES = [
    0, -1, 1, 59, 60, 67, 68, 1279, 1280, 1500, 65535, 65536, 86400, 86401,
    2**31 - 1, 2**31, 2**44, 2**44 + 1, 2**63, 10**30, 1.5, -0.0, 1e308,
    True, False, None, "", " ", "0", "-1", "65536", "86401", "1" * 30,
    "x" * 300, "x" * 70_000, "\u0000", "é", "\u202e", "@", "@name", "@" + "n" * 300,
    "user@host.example", "a b", "'quoted'", "198.51.100.7", "2001:db8::7",
    "203.0.113.300", "192.0.2.0/24", "192.0.2.1/24", "2001:db8:1::/64", "0.0.0.0/0",
    "peer.example.test", "-leading.example", "qrouter-x", "../etc",
    "bi-directional", "response-only", "v1", "v2", "v3", "aes-128", "aes-256-gcm-16",
    "sha1", "sha512", "md5", "group2", "group31", "group1", "esp", "ah", "ah-esp",
    "transport", "tunnel", "seconds", "kilobytes", "hold", "restart", "clear",
    "disabled", "aggressive",
    [], [1], ["192.0.2.0/24", "198.51.100.0/24"], [{"cidr": "192.0.2.0/25"}],
    {}, {"cidr": "192.0.2.0/24"}, {"units": "kilobytes", "value": 2**44},
    {"action": "restart", "interval": 10, "timeout": 5},
]
# Text that, put anywhere in a document, has broken parsers before.
SNIPPETS = ["\ufeff", "\x00", "\\ud800", "NaN", "Infinity", "}", "]", ",", "\"",
            "1" * 5000, "[" * 5000, "{\"a\":" * 2000]


def agent_payload(namespace: str, service_id: str = "fz") -> dict:
    """What neutron-vpnaas's server sends for one router: every field."""
    def conn(i, v6=False):
        local, peer = (("2001:db8:1::/64", "2001:db8:2::/64") if v6
                       else ("192.0.2.0/25", "198.51.100.0/25"))
        return {
            "id": f"{service_id}-c{i}", "name": f"conn {i}", "tenant_id": "t1",
            "peer_address": "2001:db8::2" if v6 else "203.0.113.2",
            "peer_id": "2001:db8::2" if v6 else "203.0.113.2",
            "local_id": "", "route_mode": "static", "mtu": 1400,
            "initiator": "bi-directional", "auth_mode": "psk", "psk": PSK,
            "dpd": {"action": "hold", "interval": 30, "timeout": 120},
            "dpd_action": "hold", "dpd_interval": 30, "dpd_timeout": 120,
            "admin_state_up": True, "status": "PENDING_CREATE",
            "external_ip": "2001:db8::1" if v6 else "203.0.113.1",
            "local_ep_group_id": "lg", "peer_ep_group_id": "pg",
            "local_cidrs": [local], "peer_cidrs": [peer],
            "ikepolicy": {"id": "ike1", "auth_algorithm": "sha256",
                          "encryption_algorithm": "aes-128", "pfs": "group14",
                          "ike_version": "v2", "phase1_negotiation_mode": "main",
                          "lifetime_units": "seconds", "lifetime_value": 3600,
                          "lifetime": {"units": "seconds", "value": 3600}},
            "ipsecpolicy": {"id": "ipsec1", "transform_protocol": "esp",
                            "auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
                            "encapsulation_mode": "tunnel", "pfs": "group14",
                            "lifetime_units": "seconds", "lifetime_value": 3600},
        }
    return {"id": service_id, "router_id": f"r-{service_id}", "namespace": namespace,
            "name": "vpn", "description": "", "tenant_id": "t1", "subnet_id": None,
            "admin_state_up": True, "status": "ACTIVE",
            "external_v4_ip": "203.0.113.1", "external_v6_ip": "2001:db8::1",
            "subnet": None, "ipsec_site_connections": [conn(0), conn(1, v6=True)]}


def _paths(node, prefix=()):
    """Every (path, value) in a document, containers included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _parent(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _mutate_structure(doc: dict, rng: random.Random) -> None:
    paths = [p for p, _ in _paths(doc) if p]
    path = rng.choice(paths)
    parent, key = _parent(doc, path), path[-1]
    what = rng.random()
    if what < 0.6:
        parent[key] = copy.deepcopy(rng.choice(VALUES))
    elif what < 0.75 and isinstance(parent, dict):
        del parent[key]
    elif what < 0.85 and isinstance(parent, dict):
        parent[rng.choice(["extra", "psk2", "ikepolicy_id", key + "_"])] = rng.choice(VALUES)
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))  # a repeated entry, same ids
    else:
        parent[key] = [copy.deepcopy(parent[key])]  # a value wrapped in a list


def _mutate_text(text: str, rng: random.Random) -> str:
    what = rng.random()
    at = rng.randrange(len(text) + 1)
    if what < 0.25:
        return text[:at]  # cut short
    if what < 0.5:
        return text[:at] + rng.choice(SNIPPETS) + text[at:]
    if what < 0.7:
        key = rng.choice(['"psk": ', '"id": ', '"mtu": ', '"peer_id": '])
        if key in text:
            return text.replace(key, f'{key}"twice", {key}', 1)  # a key given twice
        return text
    if what < 0.85:
        return "\ufeff" + text
    depth = rng.choice([10, 100, 1000, 100_000])
    return text.replace('"subnet": null', f'"subnet": {"[" * depth}{"]" * depth}', 1)


def payloads(seed: int, n: int, namespace: str):
    """(index, bytes) for n mutated payloads; encoded as UTF-8 except now
    and then as UTF-16, or with a byte flipped."""
    rng = random.Random(seed)
    base = agent_payload(namespace)
    for i in range(n):
        doc = copy.deepcopy(base)
        doc["id"] = f"fz{i}"
        for conn in doc["ipsec_site_connections"]:
            conn["id"] = conn["id"].replace("fz-", f"fz{i}-")
        for _ in range(rng.randint(1, 3)):
            _mutate_structure(doc, rng)
        text = json.dumps(doc)
        if rng.random() < 0.25:
            text = _mutate_text(text, rng)
        raw = text.encode("utf-8", "surrogatepass")
        roll = rng.random()
        if roll < 0.02:
            raw = text.encode("utf-16", "surrogatepass")
        elif roll < 0.06 and raw:
            at = rng.randrange(len(raw))
            raw = raw[:at] + bytes([raw[at] ^ (1 << rng.randrange(8))]) + raw[at + 1:]
        yield i, raw
