"""Validation of state files, as Neutron validates, with precise errors."""
from __future__ import annotations

import copy
import json

import pytest

from vpnd.base.model import Dpd, Lifetime
from lab.factory import connection_doc, service_doc
from vpnd.state.validation import parse_service

MINIMAL = service_doc(conns=[connection_doc(psk="top-secret-psk")])


def parsed(**conn_changes):
    data = copy.deepcopy(MINIMAL)
    data["ipsec_site_connections"][0].update(conn_changes)
    return parse_service(data, "f.json")


def errors_of(data) -> list[str]:
    service, errors = parse_service(data, "f.json")
    assert service is None
    return [str(e) for e in errors]


def conn_errors(**conn_changes) -> list[str]:
    data = copy.deepcopy(MINIMAL)
    data["ipsec_site_connections"][0].update(conn_changes)
    return errors_of(data)


def test_neutron_defaults_fill_what_is_omitted():
    service, errors = parse_service(MINIMAL, "f.json")
    assert errors == []
    assert service.namespace == "qrouter-r1" and service.admin_state_up
    c = service.connections[0]
    assert (c.mtu, c.initiator, c.admin_state_up, c.local_id) == (1500, "bi-directional", True, "")
    assert c.dpd == Dpd("hold", 30, 120)
    assert (c.ikepolicy.ike_version, c.ikepolicy.pfs, c.ikepolicy.auth_algorithm,
            c.ikepolicy.encryption_algorithm, c.ikepolicy.phase1_negotiation_mode) == \
        ("v1", "group5", "sha1", "aes-128", "main")
    assert c.ikepolicy.lifetime == Lifetime("seconds", 3600)
    assert (c.ipsecpolicy.transform_protocol, c.ipsecpolicy.encapsulation_mode) == ("esp", "tunnel")
    assert c.external_ip == "203.0.113.1"


def test_agent_payload_with_extra_keys_is_accepted_verbatim():
    """The dict neutron-vpnaas's make_vpnservice_dict sends an agent."""
    payload = {
        "id": "5e2a4c8e", "name": "vpn", "description": "", "tenant_id": "t",
        "project_id": "t", "subnet_id": None, "router_id": "8f3b", "status": "ACTIVE",
        "admin_state_up": True, "external_v4_ip": "203.0.113.1", "external_v6_ip": None,
        "external_ip": "203.0.113.1", "subnet": {"cidr": "192.0.2.0/24"},
        "ipsec_site_connections": [{
            "id": "9c1d", "name": "to-b", "tenant_id": "t", "peer_address": "203.0.113.2",
            "peer_id": "@site-b.example", "local_id": "@site-a.example", "route_mode": "static",
            "mtu": 1400, "initiator": "response-only", "auth_mode": "psk", "psk": "k",
            "dpd_action": "restart", "dpd_interval": 10, "dpd_timeout": 40,
            "status": "DOWN", "admin_state_up": True, "vpnservice_id": "5e2a4c8e",
            "ikepolicy_id": "i", "ipsecpolicy_id": "p", "local_ep_group_id": None,
            "peer_ep_group_id": None, "peer_cidrs": ["198.51.100.0/24"],
            "local_cidrs": ["192.0.2.0/24"], "local_ip_vers": 4,
            "external_ip": "203.0.113.1",
            "ikepolicy": {"id": "i", "name": "ike", "auth_algorithm": "sha256",
                          "encryption_algorithm": "aes-256", "phase1_negotiation_mode": "main",
                          "lifetime_units": "seconds", "lifetime_value": 7200,
                          "ike_version": "v2", "pfs": "group14", "tenant_id": "t"},
            "ipsecpolicy": {"id": "p", "name": "ipsec", "transform_protocol": "esp",
                            "auth_algorithm": "sha256", "encryption_algorithm": "aes-128-gcm-16",
                            "encapsulation_mode": "tunnel", "lifetime_units": "kilobytes",
                            "lifetime_value": 100000, "pfs": "group31"},
        }],
    }
    service, errors = parse_service(json.loads(json.dumps(payload)), "f.json")
    assert errors == []
    c = service.connections[0]
    assert service.namespace == "qrouter-8f3b"
    assert (c.peer_id, c.local_id, c.mtu, c.initiator) == \
        ("@site-b.example", "@site-a.example", 1400, "response-only")
    assert c.dpd == Dpd("restart", 10, 40)
    assert c.ipsecpolicy.lifetime == Lifetime("kilobytes", 100000)


def test_api_nested_shapes_are_accepted():
    service, errors = parsed(dpd={"action": "clear", "interval": 5, "timeout": 20},
                             ikepolicy={"lifetime": {"units": "seconds", "value": 600}})
    assert errors == []
    c = service.connections[0]
    assert c.dpd == Dpd("clear", 5, 20)
    assert c.ikepolicy.lifetime == Lifetime("seconds", 600)


def test_local_cidrs_default_to_the_service_subnet_and_endpoint_groups_work():
    data = copy.deepcopy(MINIMAL)
    data["subnet"] = {"cidr": "192.0.2.0/25"}
    conn = data["ipsec_site_connections"][0]
    del conn["local_cidrs"], conn["peer_cidrs"]
    conn["peer_ep_group"] = {"type": "cidr", "endpoints": ["198.51.100.0/25", "198.51.100.128/25"]}
    service, errors = parse_service(data, "f.json")
    assert errors == []
    assert service.connections[0].local_cidrs == ("192.0.2.0/25",)
    assert service.connections[0].peer_cidrs == ("198.51.100.0/25", "198.51.100.128/25")


def test_external_ip_is_chosen_by_the_peer_family():
    data = copy.deepcopy(MINIMAL)
    data.pop("external_ip")
    data["external_v4_ip"], data["external_v6_ip"] = "203.0.113.1", "2001:db8:f::1"
    conn = data["ipsec_site_connections"][0]
    conn.update(peer_address="2001:db8:f::2", peer_id="2001:db8:f::2",
                local_cidrs=["2001:db8:a::/64"], peer_cidrs=["2001:db8:b::/64"])
    service, errors = parse_service(data, "f.json")
    assert errors == []
    assert service.connections[0].external_ip == "2001:db8:f::1"


P = "f.json: $.ipsec_site_connections[0]"


@pytest.mark.parametrize("changes, expected", [
    ({"peer_cidrs": ["198.51.100.1/24"]},
     f"{P}.peer_cidrs[0]: '198.51.100.1/24' has host bits set; did you mean 198.51.100.0/24?"),
    ({"peer_cidrs": ["not-a-cidr"]}, f"{P}.peer_cidrs[0]: 'not-a-cidr' is not a valid CIDR"),
    ({"peer_cidrs": []}, f"{P}.peer_cidrs: must list at least one CIDR"),
    ({"peer_cidrs": ["198.51.100.0/24", "2001:db8::/64"]},
     f"{P}.peer_cidrs: mixes IPv4 and IPv6 CIDRs"),
    ({"peer_cidrs": ["2001:db8:b::/64"]},
     f"{P}.peer_cidrs: IP version differs from local_cidrs (IPv6 vs IPv4)"),
    ({"peer_address": "2001:db8:f::2"},
     f"{P}.peer_address: is IPv6 but the local address 203.0.113.1 is IPv4"),
    ({"peer_address": "not a host!"},
     f"{P}.peer_address: 'not a host!' is neither an IP address nor a host name"),
    ({"psk": ""}, f"{P}.psk: must be a non-empty string"),
    ({"mtu": 67}, f"{P}.mtu: must be at least 68 for IPv4, not 67"),
    ({"mtu": "x"}, f"{P}.mtu: must be an integer, not a string"),
    ({"initiator": "sometimes"},
     f"{P}.initiator: 'sometimes' is not one of: bi-directional, response-only"),
    ({"dpd_interval": 30, "dpd_timeout": 30},
     f"{P}.dpd_timeout: must be greater than the DPD interval (30 <= 30)"),
    ({"dpd_action": "explode"},
     f"{P}.dpd_action: 'explode' is not one of: clear, disabled, hold, restart, restart-by-peer"),
    ({"dpd_interval": 5, "dpd": {"interval": 6}}, f"{P}.dpd.interval: contradicts {P[8:]}.dpd_interval"),
    ({"admin_state_up": "yes"}, f"{P}.admin_state_up: must be true or false, not a string"),
    ({"ikepolicy": {"lifetime_value": 59}},
     f"{P}.ikepolicy.lifetime_value: must be at least 60, not 59"),
    ({"ikepolicy": {"lifetime": {"units": "hours"}}},
     f"{P}.ikepolicy.lifetime.units: 'hours' is not one of: seconds, kilobytes"),
    ({"ikepolicy": {"ike_version": "v3"}}, f"{P}.ikepolicy.ike_version: 'v3' is not one of: v1, v2"),
    ({"ikepolicy": {"phase1_negotiation_mode": "quick"}},
     f"{P}.ikepolicy.phase1_negotiation_mode: 'quick' is not one of: main, aggressive"),
    ({"ipsecpolicy": {"encryption_algorithm": "des"}},
     f"{P}.ipsecpolicy.encryption_algorithm: 'des' is not one of: 3des, aes-128"),
    ({"ipsecpolicy": {"auth_algorithm": "md5"}},
     f"{P}.ipsecpolicy.auth_algorithm: 'md5' is not one of: sha1, sha256"),
    ({"ipsecpolicy": {"pfs": "group1"}}, f"{P}.ipsecpolicy.pfs: 'group1' is not one of: group2, group5, group14"),
    ({"ipsecpolicy": {"transform_protocol": "gre"}},
     f"{P}.ipsecpolicy.transform_protocol: 'gre' is not one of: ah, ah-esp, esp"),
    ({"ipsecpolicy": {"encapsulation_mode": "beet"}},
     f"{P}.ipsecpolicy.encapsulation_mode: 'beet' is not one of: transport, tunnel"),
    ({"id": "bad id"}, f"{P}.id: 'bad id' is not a usable id"),
    ({"peer_id": ""}, f"{P}.peer_id: must not be empty"),
    ({"local_cidrs": None, "peer_ep_group": {"type": "subnet", "endpoints": []}},
     f"{P}.local_cidrs: is required (or an endpoint group, or the service's subnet)"),
    # Values no tunnel could carry (found by fuzzing agent payloads).
    ({"mtu": 65536}, f"{P}.mtu: must be at most 65535, not 65536"),
    ({"mtu": 10**19}, f"{P}.mtu: must be at most 65535"),
    ({"dpd_interval": 10**19, "dpd_timeout": 10**19 + 1}, f"{P}.dpd_interval: must be at most 86400"),
    ({"ikepolicy": {"lifetime_value": 10**12}},
     f"{P}.ikepolicy.lifetime_value: must be at most 2147483647"),
    ({"ipsecpolicy": {"lifetime_units": "kilobytes", "lifetime_value": 2**45}},
     f"{P}.ipsecpolicy.lifetime_value: must be at most 17592186044416"),
    ({"psk": "p" * 1025}, f"{P}.psk: longer than 1024 characters"),
    ({"peer_id": "x" * 300}, f"{P}.peer_id: 300 characters, more than the 255 allowed"),
    ({"peer_id": "two words"},
     f"{P}.peer_id: 'two words' is neither an IP address, a host name, an @name nor user@host"),
    ({"local_id": "@"}, f"{P}.local_id: '@' is neither an IP address"),
    ({"peer_id": {}}, f"{P}.peer_id: must be a string, not an object"),
])
def test_each_problem_names_file_path_and_reason(changes, expected):
    errors = conn_errors(**changes)
    assert any(e.startswith(expected) for e in errors), errors


def test_psk_never_appears_in_errors():
    errors = conn_errors(psk=["top-secret-psk"], mtu=1)
    assert errors and not any("top-secret-psk" in e for e in errors)


def test_all_problems_of_a_file_are_reported_at_once():
    errors = conn_errors(mtu=1, initiator="x", dpd_timeout=1)
    assert len(errors) == 3


@pytest.mark.parametrize("identity", ["203.0.113.2", "2001:db8::2", "gw-b.example.test",
                                      "@site-b", "@#a1b2c3", "vpn@example.test"])
def test_identities_charon_accepts_are_accepted(identity):
    service, errors = parsed(peer_id=identity)
    assert not errors and service.connections[0].peer_id == identity


def test_ipv6_mtu_minimum_is_1280():
    errors = conn_errors(local_cidrs=["2001:db8:a::/64"], peer_cidrs=["2001:db8:b::/64"],
                         peer_address="2001:db8:f::2", external_ip="2001:db8:f::1", mtu=1279)
    assert errors == [f"{P}.mtu: must be at least 1280 for IPv6, not 1279"]


@pytest.mark.parametrize("data, expected", [
    ([], "f.json: $: the file must hold a JSON object, not a list"),
    ({"id": "s"}, "f.json: $: needs router_id or namespace"),
    ({"id": "s", "namespace": "a/b"}, "f.json: $.namespace: 'a/b' is not a valid network namespace name"),
    ({"router_id": "r"}, "f.json: $.id: must not be empty"),
    ({"id": "s", "router_id": "r", "ipsec_site_connections": {}},
     "f.json: $.ipsec_site_connections: must be a list, not an object"),
    ({"id": "s", "router_id": "r", "external_v4_ip": "2001:db8::1"},
     "f.json: $.external_v4_ip: must be an IPv4 address"),
    # A value of the wrong type is an error, never "absent".
    ({"id": "s", "router_id": {}}, "f.json: $.router_id: must be a string, not an object"),
    ({"id": "s", "namespace": [], "router_id": "r"},
     "f.json: $.namespace: must be a string, not a list"),
])
def test_service_level_problems(data, expected):
    errors = errors_of(data)
    assert any(e.startswith(expected) for e in errors), errors


def test_duplicate_connection_ids_in_one_file():
    data = copy.deepcopy(MINIMAL)
    data["ipsec_site_connections"].append(copy.deepcopy(data["ipsec_site_connections"][0]))
    assert errors_of(data) == ["f.json: $.ipsec_site_connections[1].id: 'c1' is already "
                               "used by $.ipsec_site_connections[0]"]


def test_an_error_quotes_only_the_start_of_a_long_value():
    from vpnd.base.errors import shown
    assert shown("short") == "'short'"
    long = shown("x" * 70_000)
    assert long.startswith("'xxx") and long.endswith("... (70000 characters)")
    assert len(long) < 100


def test_values_alike_in_many_connections_are_one_object():
    # Read from two files (two JSON documents): the local side, DPD, the
    # local address and the policies are shared; a peer_id that is the
    # peer_address is that string. What differs stays each one's own.
    a, _ = parse_service(json.loads(json.dumps(MINIMAL)), "a.json")
    other = copy.deepcopy(MINIMAL)
    other["id"] = "svc2"
    other["ipsec_site_connections"][0].update(id="c2")
    b, _ = parse_service(json.loads(json.dumps(other)), "b.json")
    [x], [y] = a.connections, b.connections
    for field in ("local_cidrs", "dpd", "external_ip", "ikepolicy", "ipsecpolicy"):
        assert getattr(x, field) is getattr(y, field), field
    assert x.peer_id is x.peer_address and x.peer_id == y.peer_id
    # Peer CIDRs are each connection's own even when equal: in the table
    # of shared values, 10,000 unique ones would only churn it (6184946).
    assert x.peer_cidrs == y.peer_cidrs and x.peer_cidrs[0] is not y.peer_cidrs[0]
