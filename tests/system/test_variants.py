"""IKEv1 and aggressive mode, several subnets, names instead of addresses,
and a change that must not disturb a neighbour's traffic."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import connection, service, wait_converged
from lab.testbed import in_ns, wait_for

PSK = "variants-psk-5f0"


def test_ikev1_aggressive_with_several_subnets_gets_one_child_per_pair(lab, vpnd_factory):
    ike = {"ike_version": "v1", "phase1_negotiation_mode": "aggressive",
           "encryption_algorithm": "aes-256", "auth_algorithm": "sha256", "pfs": "group14"}
    a_cidrs = ["192.0.2.0/25", "192.0.2.128/25"]
    b_cidrs = ["198.51.100.0/25", "198.51.100.128/25"]
    # kernel-libipsec routes each CHILD_SA from a gateway address inside its
    # local subnet: give each gateway one in the upper halves too.
    in_ns(lab.a.gw, "ip", "addr", "add", "192.0.2.254/24", "dev", "lan")
    in_ns(lab.b.gw, "ip", "addr", "add", "198.51.100.254/24", "dev", "lan")
    a, b = vpnd_factory("a"), vpnd_factory("b")
    a.write("svc.json", service("svc-a", lab.a, [connection(
        "c1", lab.a, lab.b, PSK, ikepolicy=ike, local_cidrs=a_cidrs, peer_cidrs=b_cidrs)]))
    b.write("svc.json", service("svc-b", lab.b, [connection(
        "c1", lab.b, lab.a, PSK, ikepolicy=ike, local_cidrs=b_cidrs, peer_cidrs=a_cidrs,
        initiator="response-only")]))
    a.start(), b.start()
    status = a.wait_conn("svc-a", "c1", timeout=60)
    # IKEv1 negotiates one subnet pair per CHILD_SA: all four are there.
    assert sorted(status["child_sas"]) == ["c1-0", "c1-1", "c1-2", "c1-3"]
    pairs = {(c["local_ts"][0], c["remote_ts"][0]) for c in status["child_sas"].values()}
    assert pairs == {(l, p) for l in a_cidrs for p in b_cidrs}
    assert status["ike_sa"]["version"] == "1"
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


@pytest.fixture
def hosts_file(lab):
    """Name resolution inside gw-a's namespace (ip netns exec binds
    /etc/netns/<ns>/hosts over /etc/hosts): gw-b.example.test."""
    d = Path("/etc/netns") / lab.a.gw
    d.mkdir(parents=True)
    (d / "hosts").write_text(f"127.0.0.1 localhost\n{lab.b.wan4} gw-b.example.test\n")
    yield d / "hosts"
    shutil.rmtree(d)


def test_peer_by_host_name_and_identities_by_name(lab, vpnd_factory, hosts_file):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    a.write("svc.json", service("svc-a", lab.a, [connection(
        "c1", lab.a, lab.b, PSK, peer_address="gw-b.example.test",
        local_id="@site-a.example.test", peer_id="@site-b.example.test")]))
    b.write("svc.json", service("svc-b", lab.b, [connection(
        "c1", lab.b, lab.a, PSK, local_id="@site-b.example.test",
        peer_id="@site-a.example.test", initiator="response-only")]))
    b.start()
    b.wait_conn("svc-b", "c1", "DOWN", reason="waiting for the peer", timeout=15)
    a.start()  # only a initiates, to a name it resolves in its namespace
    a.wait_conn("svc-a", "c1", timeout=60)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    sa = subprocess.run(["swanctl", "--list-sas", "--uri", f"unix://{a.socket(lab.a.gw)}"],
                        capture_output=True, text=True).stdout
    assert "'site-a.example.test'" in sa and "'site-b.example.test'" in sa


def test_changing_one_connection_leaves_a_neighbours_traffic_uninterrupted(lab, vpnd_factory):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [
            connection("c4", me, peer, PSK),
            connection("c6", me, peer, PSK, v6=True, external_ip=me.wan6)]))
        v.start()
    for v, side in ((a, "a"), (b, "b")):
        v.wait_conn(f"svc-{side}", "c4"), v.wait_conn(f"svc-{side}", "c6")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c4", "c6"])
    before = {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}

    # 40 pings, 0.2 s apart, through c6 while c4 is re-keyed with a new PSK.
    pinger = subprocess.Popen(["ip", "netns", "exec", lab.a.host, "ping", "-6", "-n",
                               "-i", "0.2", "-c", "40", "-W", "1", lab.b.host6],
                              stdout=subprocess.PIPE, text=True)
    try:
        for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
            v.write("svc.json", service(f"svc-{side}", me, [
                connection("c4", me, peer, "variants-psk-rotated"),
                connection("c6", me, peer, PSK, v6=True, external_ip=me.wan6)]))
        wait_for(lambda: {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas
                          }.get("c4") not in (None, before["c4"]), 30, what="c4 replaced")
        a.wait_conn("svc-a", "c4")
        out, _ = pinger.communicate(timeout=60)
    finally:
        if pinger.poll() is None:
            pinger.kill()
    assert " 0% packet loss" in out, out
    after = {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}
    assert after["c6"] == before["c6"]
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


def test_mtu_is_applied_to_the_tunnel_traffic(lab, vpnd_factory):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [connection("c1", me, peer, PSK,
                                                                   mtu=1300)]))
        v.start()
    status = a.wait_conn("svc-a", "c1")
    # Both ends initiate: until a late initiation has landed and vpnd has
    # ended the duplicate it makes, the SA ids below are not yet the ones
    # that stay.
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    wait_for(lambda: (a.conn_status("svc-a", "c1") or {}).get("mtu") == "applied", 15,
             what="mtu applied")
    route = in_ns(lab.a.gw, "ip", "route", "show", "table", "220").stdout
    assert f"{lab.b.lan4} " in route and "mtu 1300" in route
    # From LAN A: 1300 bytes with DF pass the gateway, 1301 do not.
    fits = in_ns(lab.a.host, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s",
                 str(1300 - 28), lab.b.host4, check=False)
    too_big = in_ns(lab.a.host, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s",
                    str(1301 - 28), lab.b.host4, check=False)
    assert fits.returncode == 0, fits.stdout
    assert too_big.returncode != 0 and "mtu = 1300" in too_big.stdout + too_big.stderr, \
        too_big.stdout + too_big.stderr
    assert status["status"] == "ACTIVE"

    # Raised to the device's MTU (ipsec0: 1400) or above: the route MTU
    # comes off, and status says so; the SA is not touched.
    ids = [sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas]
    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK,
                                                            mtu=1500)]))
    wait_for(lambda: (a.conn_status("svc-a", "c1") or {}).get("mtu") == "above the device MTU",
             15, what="mtu above the device's")
    wait_for(lambda: "mtu 1300" not in in_ns(lab.a.gw, "ip", "route", "show", "table",
                                              "220").stdout, 15, what="the route MTU gone")
    # From the gateway itself (LAN A's host still caches the path MTU it
    # was told), 1301 bytes with DF now pass.
    bigger = in_ns(lab.a.gw, "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s",
                   str(1301 - 28), "-I", lab.a.gw_lan4, lab.b.host4, check=False)
    assert bigger.returncode == 0, bigger.stdout + bigger.stderr
    assert [sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas] == ids


# Each plugin in charon's load list earns its place on the wire: two real
# charons negotiate what Neutron names, with only those plugins loaded.
@pytest.mark.parametrize("ike, esp, ike_algs, esp_algs", [
    ({"encryption_algorithm": "aes-256", "auth_algorithm": "sha512", "pfs": "group31"},
     {"encryption_algorithm": "aes-128-gcm-16", "pfs": "group19"},
     "AES_CBC-256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519", "AES_GCM_16-128"),
    ({"encryption_algorithm": "3des", "auth_algorithm": "aes-xcbc", "pfs": "group5"},
     {"encryption_algorithm": "aes-192-ccm-12", "pfs": "group28"},
     "3DES_CBC/AES_XCBC_96/PRF_AES128_XCBC/MODP_1536", "AES_CCM_12-192"),
    ({"encryption_algorithm": "aes-128", "auth_algorithm": "aes-cmac", "pfs": "group20"},
     {"encryption_algorithm": "aes-256", "auth_algorithm": "aes-cmac", "pfs": "group14"},
     "AES_CBC-128/AES_CMAC_96/PRF_AES128_CMAC/ECP_384", "AES_CBC-256/AES_CMAC_96"),
], ids=["openssl-sha2-x25519-gcm", "3des-xcbc-ccm-brainpool", "cmac"])
def test_algorithm_families_negotiate_with_the_plugins_vpnd_loads(
        lab, vpnd_factory, ike, esp, ike_algs, esp_algs):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [connection(
            "c1", me, peer, PSK, ikepolicy={"ike_version": "v2", **ike},
            ipsecpolicy={"transform_protocol": "esp", "encapsulation_mode": "tunnel", **esp},
            initiator="bi-directional" if side == "a" else "response-only")]))
        v.start()
    status = a.wait_conn("svc-a", "c1", timeout=60)
    assert status["ike_sa"]["algorithms"] == ike_algs
    assert status["child_sas"]["c1"]["algorithms"].startswith(esp_algs)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


def test_ipv4_in_ipv6_and_ipv6_in_ipv4_carry_traffic(lab, vpnd_factory):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        # c46: LAN IPv4 over the IPv6 WAN; c64: LAN IPv6 over the IPv4 WAN.
        c46 = connection("c46", me, peer, PSK, external_ip=me.wan6,
                         peer_address=peer.wan6, peer_id=peer.wan6)
        c64 = connection("c64", me, peer, PSK, v6=True, external_ip=me.wan4,
                         peer_address=peer.wan4, peer_id=peer.wan4)
        v.write("svc.json", service(f"svc-{side}", me, [c46, c64]))
        v.start()
    for v, side in ((a, "a"), (b, "b")):
        v.wait_conn(f"svc-{side}", "c46"), v.wait_conn(f"svc-{side}", "c64")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c46", "c64"])
    assert lab.ping(lab.a.host, lab.b.host4, count=3)
    assert lab.ping(lab.a.host, lab.b.host6, count=3)
    status = {c: a.conn_status("svc-a", c) for c in ("c46", "c64")}
    assert status["c46"]["child_sas"]["c46"]["remote_ts"] == [lab.b.lan4]
    assert status["c64"]["child_sas"]["c64"]["remote_ts"] == [lab.b.lan6]
    # Each CHILD_SA carried what went through it.
    sas = {sa.name: sa for sa in b.vici(lab.b.gw).live_state().sas}
    assert sas["c46"].children[0].packets_in >= 3 and sas["c64"].children[0].packets_in >= 3
