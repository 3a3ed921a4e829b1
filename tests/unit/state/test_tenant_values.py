"""A tenant chooses a connection's values: none of them may cost without
bound, spoil a neighbour, or make a PSK any peer's (issue 20)."""
from __future__ import annotations

import pytest
from vici.protocol import Message

from lab.factory import connection_doc, service_doc
from lab.hostile_input import cidrs, ikev1_cross
from vpnd.base import bounds
from vpnd.drivers.strongswan_mapping import render
from vpnd.state.validation import parse_confined

PSK = "tenant-psk-7f3a"


def errors_of(doc) -> list[str]:
    return [f"{e.path}: {e.message}" for e in parse_confined(doc, "t.json").all_errors]


def test_an_ikev1_cross_product_is_refused_by_its_count_with_its_path():
    doc = service_doc(conns=[ikev1_cross(600, 600), connection_doc("good", PSK)])
    parsed = parse_confined(doc, "t.json")
    # 600 CIDRs a side are refused before one of them is parsed.
    assert [e.path for e in parsed.broken["cross"]] == [
        "$.ipsec_site_connections[0].local_cidrs", "$.ipsec_site_connections[0].peer_cidrs"]
    assert "more than the 64" in parsed.broken["cross"][0].message
    assert [c.id for c in parsed.service.connections] == ["good"]


def test_ikev1_pairs_beyond_the_bound_are_an_error_ikev2_of_the_same_cidrs_is_not():
    doc = service_doc(conns=[ikev1_cross(9, 8)])
    [error] = errors_of(doc)
    assert error.startswith("$.ipsec_site_connections[0]: IKEv1 makes a CHILD_SA of each")
    assert "9 x 8 = 72" in error
    v2 = connection_doc("v2", PSK, local_cidrs=cidrs(64, 0), peer_cidrs=cidrs(64, 1),
                        ikepolicy={"ike_version": "v2"})
    assert errors_of(service_doc(conns=[v2])) == []
    assert errors_of(service_doc(conns=[ikev1_cross(8, 8)])) == []


def test_a_file_declares_at_most_its_bound_of_child_sas_and_keeps_the_first():
    per = bounds.IKEV1_PAIRS
    n = bounds.CHILDREN_PER_FILE // per + 2
    doc = service_doc(conns=[ikev1_cross(8, 8, f"x{i}") for i in range(n)])
    parsed = parse_confined(doc, "t.json")
    kept = len(parsed.service.connections)
    assert kept == bounds.CHILDREN_PER_FILE // per
    assert sorted(parsed.broken) == sorted(f"x{i}" for i in range(kept, n))
    assert "more than the 10000 one file may declare" in parsed.broken[f"x{kept}"][0].message


def test_more_connections_than_the_file_bound_are_refused_unread():
    doc = service_doc(conns=[{}] * (bounds.CHILDREN_PER_FILE + 1))
    parsed = parse_confined(doc, "t.json")
    assert parsed.service is None
    assert [e.path for e in parsed.errors] == ["$.ipsec_site_connections"]
    assert not parsed.broken  # not one of them was looked at


@pytest.mark.parametrize("conn", [
    connection_doc("v2", "p" * 1024, peer_id="@" + "a" * 254, local_id="@" + "b" * 254,
                   local_cidrs=[f"2001:db8:{i:x}::/48" for i in range(64)],
                   peer_cidrs=[f"2001:db8:1:{i:x}::/64" for i in range(64)],
                   ikepolicy={"ike_version": "v2"}),
    connection_doc("i" * 120, "p" * 1024, peer_id="@" + "a" * 254,
                   local_cidrs=cidrs(8, 0), peer_cidrs=cidrs(8, 1)),
], ids=["ikev2-64x64", "ikev1-8x8"])
def test_the_largest_bounded_connection_renders_far_inside_what_charon_accepts(conn):
    [c] = parse_confined(service_doc(conns=[conn]), "t.json").service.connections
    r = render(c, libipsec=True)
    assert len(r.children) == bounds.children(len(c.local_cidrs), len(c.peer_cidrs),
                                              c.ikepolicy.ike_version)
    size = len(Message.serialize(r.conn))
    assert size < bounds.VICI_MESSAGE_MAX // 4, size
    assert len(Message.serialize(r.secret)) < bounds.VICI_MESSAGE_MAX // 4


ANY = ["0.0.0.0", "::", "0::0", "0:0::0", "::0", "%any", "*",
       "198.51.100.1-198.51.100.9", "0.0.0.0-255.255.255.255", "0", "0x0", "0x7f.1",
       "198.51.100"]


@pytest.mark.parametrize("value", ANY)
def test_a_peer_id_that_means_more_than_one_peer_is_refused(value):
    errors = errors_of(service_doc(conns=[connection_doc("c1", PSK, peer_id=value)]))
    assert errors and errors[0].startswith("$.ipsec_site_connections[0].peer_id: ")


@pytest.mark.parametrize("value", ANY)
def test_a_peer_address_that_means_more_than_one_peer_is_refused(value):
    errors = errors_of(service_doc(conns=[connection_doc("c1", PSK, peer_address=value)]))
    assert errors and errors[0].startswith("$.ipsec_site_connections[0].peer_address: ")


@pytest.mark.parametrize("key", ["external_ip", "local_id"])
def test_the_unspecified_address_is_not_a_local_address_either(key):
    doc = service_doc(conns=[connection_doc("c1", PSK, **{key: "0.0.0.0"})])
    assert [e.split(":")[0] for e in errors_of(doc)] == [f"$.ipsec_site_connections[0].{key}"]


@pytest.mark.parametrize("value", ["198.51.100.7", "2001:db8::7", "vpn.example.com",
                                   "@peer-7", "ops@vpn.example.com", "host1"])
def test_one_named_peer_is_still_accepted(value):
    doc = service_doc(conns=[connection_doc("c1", PSK, peer_id=value)])
    assert errors_of(doc) == []


def test_a_lone_surrogate_is_its_connections_error_never_its_neighbours():
    doc = service_doc(conns=[connection_doc("bad", "psk-\ud800-x"),
                             connection_doc("bad-id", PSK, peer_id="@\udcff"),
                             connection_doc("good", PSK)])
    parsed = parse_confined(doc, "t.json")
    assert [c.id for c in parsed.service.connections] == ["good"]
    [psk_error] = parsed.broken["bad"]
    assert psk_error.path == "$.ipsec_site_connections[0].psk"
    assert "psk-" not in psk_error.message and "\ud800" not in psk_error.message
    [id_error] = parsed.broken["bad-id"]
    assert id_error.path == "$.ipsec_site_connections[1].peer_id"
    id_error.message.encode("utf-8")  # the error itself is printable text


@pytest.mark.parametrize("value", [0, False, [], {}])
def test_a_wrong_type_is_an_error_never_absent(value):
    doc = service_doc(conns=[connection_doc("c1", PSK, external_ip=value)])
    assert [e.split(":")[0] for e in errors_of(doc)] == ["$.ipsec_site_connections[0].external_ip"]
