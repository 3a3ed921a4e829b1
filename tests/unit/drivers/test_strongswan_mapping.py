"""The Neutron -> strongSwan mapping, table by table."""
from __future__ import annotations


import pytest

from vpnd.state import neutron
from vpnd.drivers.strongswan_mapping import (DH_GROUPS, ENCRYPTION, INTEGRITY, Unsupported,
    render, with_initial_contact)
from lab.factory import connection_doc, parsed, service_doc

def conn(ike=None, ipsec=None, **changes):
    doc = service_doc(conns=[connection_doc(psk="mapping-psk", ikepolicy=ike or {},
                                            ipsecpolicy=ipsec or {}, **changes)])
    return parsed(doc).connections[0]


def ike_of(rendered):
    return rendered.conn[rendered.name]


def child_of(rendered, name=None):
    return ike_of(rendered)["children"][name or rendered.name]


def test_tables_cover_every_neutron_value():
    assert set(ENCRYPTION) == set(neutron.ENCRYPTION_ALGORITHMS)
    assert set(INTEGRITY) == set(neutron.AUTH_ALGORITHMS)
    assert set(DH_GROUPS) == set(neutron.PFS_GROUPS)


def test_a_charon_that_lost_its_connections_sends_initial_contact():
    r = render(conn(), libipsec=False)
    again = with_initial_contact(r.conn)
    assert again["c1"]["unique"] == "no"
    assert {**again["c1"], "unique": "never"} == r.conn["c1"]
    assert r.conn["c1"]["unique"] == "never"  # the rendered message is untouched


def test_neutron_defaults_become_this_swanctl_configuration():
    r = render(conn(), libipsec=False)
    assert ike_of(r) == {
        "version": "1", "local_addrs": ["203.0.113.1"], "remote_addrs": ["203.0.113.2"],
        "proposals": ["aes128-sha1-modp1536"], "aggressive": "no", "mobike": "no",
        "unique": "never",
        "local": {"auth": "psk", "id": "203.0.113.1"},
        "remote": {"auth": "psk", "id": "203.0.113.2"},
        "rekey_time": "3240s", "over_time": "360s",
        "dpd_delay": "30s", "dpd_timeout": "120s",
        "children": {"c1": {
            "mode": "tunnel", "start_action": "start", "dpd_action": "trap",
            "life_time": "3600s", "rekey_time": "3240s",
            "esp_proposals": ["aes128-sha1-modp1536"],
            "local_ts": ["192.0.2.0/24"], "remote_ts": ["198.51.100.0/24"]}},
    }
    assert r.secret == {"id": "vpnd-c1", "type": "IKE", "data": "mapping-psk",
                        "owners": ["203.0.113.1", "203.0.113.2"]}
    assert "mapping-psk" not in repr(r)


@pytest.mark.parametrize("neutron_enc, swan", [
    ("3des", "3des"), ("aes-128", "aes128"), ("aes-192", "aes192"), ("aes-256", "aes256"),
])
def test_encryption(neutron_enc, swan):
    r = render(conn(ike={"encryption_algorithm": neutron_enc},
                    ipsec={"encryption_algorithm": neutron_enc}), False)
    assert ike_of(r)["proposals"] == [f"{swan}-sha1-modp1536"]
    assert child_of(r)["esp_proposals"] == [f"{swan}-sha1-modp1536"]


@pytest.mark.parametrize("aead, swan", [
    ("aes-128-gcm-16", "aes128gcm16"), ("aes-256-gcm-8", "aes256gcm8"),
    ("aes-192-ccm-12", "aes192ccm12"),
])
def test_aead_ciphers_drop_integrity_and_ike_takes_a_prf(aead, swan):
    r = render(conn(ike={"encryption_algorithm": aead, "ike_version": "v2",
                         "auth_algorithm": "sha256"},
                    ipsec={"encryption_algorithm": aead}), False)
    assert ike_of(r)["proposals"] == [f"{swan}-prfsha256-modp1536"]
    assert child_of(r)["esp_proposals"] == [f"{swan}-modp1536"]


def test_aead_for_ikev1_ike_is_refused_with_a_reason():
    with pytest.raises(Unsupported, match="IKEv1 cannot use the AEAD cipher"):
        render(conn(ike={"encryption_algorithm": "aes-128-gcm-16"}), False)


@pytest.mark.parametrize("auth, swan", [
    ("sha1", "sha1"), ("sha256", "sha256"), ("sha384", "sha384"), ("sha512", "sha512"),
    ("aes-xcbc", "aesxcbc"), ("aes-cmac", "aescmac"),
])
def test_integrity(auth, swan):
    r = render(conn(ike={"auth_algorithm": auth}, ipsec={"auth_algorithm": auth}), False)
    assert ike_of(r)["proposals"] == [f"aes128-{swan}-modp1536"]
    assert child_of(r)["esp_proposals"] == [f"aes128-{swan}-modp1536"]


@pytest.mark.parametrize("group, swan", [
    ("group2", "modp1024"), ("group5", "modp1536"), ("group14", "modp2048"),
    ("group15", "modp3072"), ("group16", "modp4096"), ("group17", "modp6144"),
    ("group18", "modp8192"), ("group19", "ecp256"), ("group20", "ecp384"),
    ("group21", "ecp521"), ("group22", "modp1024s160"), ("group23", "modp2048s224"),
    ("group24", "modp2048s256"), ("group25", "ecp192"), ("group26", "ecp224"),
    ("group27", "ecp224bp"), ("group28", "ecp256bp"), ("group29", "ecp384bp"),
    ("group30", "ecp512bp"), ("group31", "curve25519"),
])
def test_dh_groups_for_ike_and_pfs(group, swan):
    r = render(conn(ike={"pfs": group}, ipsec={"pfs": group}), False)
    assert ike_of(r)["proposals"] == [f"aes128-sha1-{swan}"]
    assert child_of(r)["esp_proposals"] == [f"aes128-sha1-{swan}"]


@pytest.mark.parametrize("version, mode, expected", [
    ("v1", "main", ("1", "no")), ("v1", "aggressive", ("1", "yes")), ("v2", "main", ("2", "no")),
])
def test_ike_version_and_phase1_mode(version, mode, expected):
    r = render(conn(ike={"ike_version": version, "phase1_negotiation_mode": mode}), False)
    assert (ike_of(r)["version"], ike_of(r)["aggressive"]) == expected


@pytest.mark.parametrize("initiator, start", [("bi-directional", "start"),
                                              ("response-only", "none")])
def test_initiator(initiator, start):
    assert child_of(render(conn(initiator=initiator), False))["start_action"] == start


@pytest.mark.parametrize("action, initiator, libipsec, child_action, delay", [
    ("hold", "bi-directional", False, "trap", "30s"),
    ("clear", "bi-directional", False, "clear", "30s"),
    ("restart", "bi-directional", False, "restart", "30s"),
    ("restart-by-peer", "bi-directional", False, "clear", "30s"),
    ("disabled", "bi-directional", False, "clear", "0s"),
    # kernel-libipsec raises no acquires: a trap would drop traffic for good.
    ("hold", "bi-directional", True, "restart", "30s"),
    # response-only never initiates: no trap, no restart.
    ("hold", "response-only", True, "clear", "30s"),
    ("hold", "response-only", False, "clear", "30s"),
    ("restart", "response-only", False, "clear", "30s"),
])
def test_dpd(action, initiator, libipsec, child_action, delay):
    r = render(conn(dpd_action=action, initiator=initiator), libipsec)
    assert child_of(r)["dpd_action"] == child_action
    assert ike_of(r)["dpd_delay"] == delay


def test_lifetimes_set_both_rekey_and_hard_limits():
    r = render(conn(ike={"lifetime_value": 1000},
                    ipsec={"lifetime_units": "kilobytes", "lifetime_value": 1000}), False)
    assert (ike_of(r)["rekey_time"], ike_of(r)["over_time"]) == ("900s", "100s")
    assert (child_of(r)["life_bytes"], child_of(r)["rekey_bytes"]) == ("1024000", "921600")


def test_ike_lifetime_in_kilobytes_is_refused():
    with pytest.raises(Unsupported, match="no volume limit for IKE SAs"):
        render(conn(ike={"lifetime_units": "kilobytes", "lifetime_value": 1000}), False)


@pytest.mark.parametrize("protocol, mode, key, proposal", [
    ("esp", "transport", "esp_proposals", "aes128-sha1-modp1536"),
    ("ah", "tunnel", "ah_proposals", "sha1-modp1536"),
])
def test_ah_and_transport_mode_with_kernel_ipsec(protocol, mode, key, proposal):
    r = render(conn(ipsec={"transform_protocol": protocol, "encapsulation_mode": mode}), False)
    assert child_of(r)["mode"] == mode and child_of(r)[key] == [proposal]


@pytest.mark.parametrize("ipsec, reason", [
    ({"transform_protocol": "ah"}, "does ESP only"),
    ({"encapsulation_mode": "transport"}, "does tunnel only"),
])
def test_what_userspace_esp_cannot_do_is_refused(ipsec, reason):
    with pytest.raises(Unsupported, match=reason):
        render(conn(ipsec=ipsec), libipsec=True)


def test_ah_esp_bundles_are_refused():
    with pytest.raises(Unsupported, match="cannot bundle AH with ESP"):
        render(conn(ipsec={"transform_protocol": "ah-esp"}), False)


def test_ikev2_carries_all_subnets_in_one_child():
    r = render(conn(ike={"ike_version": "v2"}, local_cidrs=["192.0.2.0/25", "192.0.2.128/25"],
                    peer_cidrs=["198.51.100.0/24"]), False)
    assert r.children == ("c1",)
    assert child_of(r)["local_ts"] == ["192.0.2.0/25", "192.0.2.128/25"]


def test_ikev1_gets_one_child_per_subnet_pair():
    r = render(conn(local_cidrs=["192.0.2.0/25", "192.0.2.128/25"],
                    peer_cidrs=["198.51.100.0/25", "198.51.100.128/25"]), False)
    assert len(r.children) == 4
    pairs = {(child_of(r, n)["local_ts"][0], child_of(r, n)["remote_ts"][0]) for n in r.children}
    assert pairs == {(l, p) for l in ("192.0.2.0/25", "192.0.2.128/25")
                     for p in ("198.51.100.0/25", "198.51.100.128/25")}


def test_identities_by_name_and_default_local_id():
    r = render(conn(local_id="@site-a", peer_id="@site-b"), False)
    assert ike_of(r)["local"]["id"] == "@site-a" and ike_of(r)["remote"]["id"] == "@site-b"
    assert r.secret["owners"] == ["@site-a", "@site-b"]


def test_retransmission_is_sized_by_the_shortest_dpd_budget():
    from vpnd.drivers.charon_conf import RETRANSMIT_BASE, RETRANSMIT_TRIES, charon_settings
    fast = conn(ike={"ike_version": "v2"}, dpd_interval=2, dpd_timeout=10)
    slow = conn(ike={"ike_version": "v2"})  # 30 / 120
    settings = charon_settings([slow, fast])
    total = sum(settings["retransmit_timeout"] * RETRANSMIT_BASE ** n
                for n in range(RETRANSMIT_TRIES + 1))
    assert settings["retransmit_tries"] == RETRANSMIT_TRIES
    # Dead within 10 s: up to 2 x 2 s before the first probe, 6 s of probes.
    assert total == pytest.approx(6, rel=0.02)
    assert charon_settings([conn(dpd_action="disabled")]) == {}
    assert charon_settings([conn()]) == {}  # IKEv1 has its own dpd_timeout


AVAILABLE = {  # what get-algorithms says on Debian 12 with vpnd's plugin list
    "encryption": {"AES_CBC", "3DES_CBC"},
    "aead": {"AES_GCM_16", "AES_GCM_12", "AES_GCM_8", "AES_CCM_16", "AES_CCM_12", "AES_CCM_8"},
    "integrity": {"HMAC_SHA1_96", "HMAC_SHA2_256_128", "HMAC_SHA2_384_192",
                  "HMAC_SHA2_512_256", "AES_XCBC_96"},
    "prf": {"PRF_HMAC_SHA1", "PRF_HMAC_SHA2_256", "PRF_HMAC_SHA2_384", "PRF_HMAC_SHA2_512",
            "PRF_AES128_XCBC"},
    "dh": {"MODP_1024", "MODP_1536", "MODP_2048", "ECP_256", "CURVE_25519"},
}


@pytest.mark.parametrize("ike, ipsec, reason", [
    ({}, {}, None),
    ({"ike_version": "v2", "encryption_algorithm": "aes-256-gcm-16"},
     {"encryption_algorithm": "aes-128-ccm-8"}, None),
    ({"pfs": "group31"}, {"pfs": "group31"}, None),
    ({"auth_algorithm": "aes-cmac"}, {},
     "charon cannot do ikepolicy.auth_algorithm aes-cmac (PRF_AES128_CMAC): "
     "no loaded plugin provides it"),
    ({}, {"auth_algorithm": "aes-cmac"},
     "charon cannot do ipsecpolicy.auth_algorithm aes-cmac (AES_CMAC_96)"),
    ({}, {"pfs": "group30"}, "charon cannot do ipsecpolicy.pfs group30 (ECP_512_BP)"),
])
def test_missing_algorithms(ike, ipsec, reason):
    from vpnd.drivers.charon_algorithms import missing_algorithms
    found = missing_algorithms(conn(ike=ike, ipsec=ipsec), AVAILABLE)
    assert (found is None) if reason is None else found.startswith(reason)


def test_every_neutron_value_needs_a_named_algorithm():
    from vpnd.drivers.charon_algorithms import ALGORITHM_NEEDS
    assert set(ALGORITHM_NEEDS["encryption"]) == set(neutron.ENCRYPTION_ALGORITHMS)
    assert set(ALGORITHM_NEEDS["integrity"]) == set(ALGORITHM_NEEDS["prf"]) == \
        set(neutron.AUTH_ALGORITHMS)
    assert set(ALGORITHM_NEEDS["dh"]) == set(neutron.PFS_GROUPS)
