"""kernel_esp.conns_need parses an address only when it may be IPv6 (a
full look asks it of every connection): the family it says is the one
parsing every address would."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from vpnd.drivers import kernel_esp

POLICY = SimpleNamespace(encryption_algorithm="aes-128", auth_algorithm="sha256")


def conn(peer, local, up=True, policy=POLICY):
    return SimpleNamespace(admin_state_up=up, ipsecpolicy=policy, peer_address=peer,
                           external_ip=local)


def parsing_all(c) -> int:
    return kernel_esp._family(c.peer_address) or kernel_esp._family(c.external_ip) or 4


@pytest.mark.parametrize("peer, local", [
    ("203.0.113.2", "203.0.113.1"), ("2001:db8::2", "2001:db8::1"),
    ("vpn.example.org", "2001:db8::1"), ("vpn.example.org", "203.0.113.1"),
    ("203.0.113.2", "2001:db8::1"), ("2001:db8::2", "203.0.113.1"),
    ("vpn.example.org", "gw.example.org"), ("not:an:address", "203.0.113.1"),
    ("not:an:address", "2001:db8::1"),
])
def test_the_family_of_a_connection_is_what_parsing_every_address_says(peer, local):
    c = conn(peer, local)
    assert kernel_esp.conns_need([c]) == ({("aes-128", "sha256")}, {parsing_all(c)})


def test_every_policy_pair_and_family_in_use_counts_and_none_of_a_connection_down():
    other = SimpleNamespace(encryption_algorithm="aes-256", auth_algorithm="sha512")
    conns = [conn("203.0.113.2", "203.0.113.1"), conn("2001:db8::2", "2001:db8::1", policy=other),
             conn("203.0.113.3", "203.0.113.1"),
             conn("2001:db8::3", "2001:db8::1", up=False,
                  policy=SimpleNamespace(encryption_algorithm="3des", auth_algorithm="sha1"))]
    assert kernel_esp.conns_need(conns) == ({("aes-128", "sha256"), ("aes-256", "sha512")},
                                            {4, 6})
