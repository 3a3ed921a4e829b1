"""vpnd against a charon configured by hand, and namespaces that come late."""
from __future__ import annotations

import os
import signal
import textwrap
import time

import pytest

from conftest import service
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.drivers.vici_client import ViciClient
from lab.hand_charon import start_charon
from lab.testbed import ip, kill_namespace_processes, wait_for

PSK = "independent-peer-psk-5d0"


@pytest.fixture
def hand_configured_peer(lab, tmp_path, request):
    """gw-b runs a charon that vpnd never touches, set up as an operator
    would by hand: strongswan.conf + swanctl.conf + swanctl --load-all.
    IKEv1 and Neutron's default proposals unless the test asks otherwise
    (indirect parameter: the IKE version, or a dict of version, ike, esp)."""
    param = getattr(request, "param", 1)
    param = param if isinstance(param, dict) else {"version": param}
    version = param["version"]
    ike = param.get("ike", "aes128-sha1-modp1536")
    esp = param.get("esp", "aes128-sha1-modp1536")
    # What Neutron's defaults mean, written from strongSwan's documentation:
    # IKEv1 main mode, aes128-sha1-modp1536 for IKE and ESP, tunnel mode.
    swanctl_conf = textwrap.dedent(f"""\
        connections {{
            to-a {{
                version = {version}
                local_addrs = {lab.b.wan4}
                remote_addrs = {lab.a.wan4}
                proposals = {ike}
                local {{
                    auth = psk
                    id = {lab.b.wan4}
                }}
                remote {{
                    auth = psk
                    id = {lab.a.wan4}
                }}
                children {{
                    to-a {{
                        local_ts = {lab.b.lan4}
                        remote_ts = {lab.a.lan4}
                        esp_proposals = {esp}
                        mode = tunnel
                        start_action = none
                    }}
                }}
            }}
        }}
        secrets {{
            ike-a {{
                id-a = {lab.a.wan4}
                id-b = {lab.b.wan4}
                secret = "{PSK}"
            }}
        }}
        """)
    proc, sock = start_charon(lab.b.gw, tmp_path / "peer", swanctl_conf)
    try:
        yield ViciClient(str(sock))
    finally:
        proc.terminate()
        proc.wait(15)


def minimal_service(lab, ike_version=1):
    """As little as Neutron requires: everything else takes Neutron's
    defaults (but for the IKE version, if asked)."""
    doc = {
        "id": "svc-a", "router_id": "r-a", "namespace": lab.a.gw,
        "external_ip": lab.a.wan4,
        "ipsec_site_connections": [{
            "id": "to-b", "peer_address": lab.b.wan4, "peer_id": lab.b.wan4,
            "local_cidrs": [lab.a.lan4], "peer_cidrs": [lab.b.lan4], "psk": PSK}]}
    if ike_version != 1:
        doc["ipsec_site_connections"][0]["ikepolicy"] = {"ike_version": f"v{ike_version}"}
    return doc


def test_neutron_defaults_interoperate_with_a_hand_written_peer(lab, vpnd_factory,
                                                                 hand_configured_peer):
    a = vpnd_factory("a")
    a.write("svc.json", minimal_service(lab))
    a.start()
    a.wait_conn("svc-a", "to-b")
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    sas = hand_configured_peer.live_state().sas
    assert [(sa.name, sa.state) for sa in sas] == [("to-a", "ESTABLISHED")]


@pytest.mark.parametrize("hand_configured_peer", [1, 2], indirect=True, ids=["ikev1", "ikev2"])
@pytest.mark.fault
def test_a_killed_charon_has_the_peer_clear_the_sas_that_died_with_it(
        lab, vpnd_factory, hand_configured_peer, request, figure):
    """The hand-configured peer runs no DPD: without INITIAL_CONTACT from
    the new charon it would keep the dead SAs beside the new ones for good
    (IKEv1: strongSwan adopts the dead CHILD_SA into the new IKE_SA)."""
    version = request.node.callspec.params["hand_configured_peer"]
    a = vpnd_factory("a")
    a.write("svc.json", minimal_service(lab, version))
    a.start()
    a.wait_conn("svc-a", "to-b")

    def peer_sas():
        return [sa for sa in hand_configured_peer.live_state().sas if sa.name == "to-a"]
    wait_for(lambda: [sa.state for sa in peer_sas()] == ["ESTABLISHED"], 30,
             what="one IKE_SA at the peer")
    dead = {sa.uniqueid for sa in peer_sas()}
    spawner = CharonSpawner(str(a.run_dir), True)
    old_pid = spawner.pid(lab.a.gw)
    os.kill(old_pid, signal.SIGKILL)
    t0 = time.monotonic()

    def only_a_new_one():
        sas = peer_sas()
        # One IKE_SA, the new one, carrying traffic on one CHILD_SA. (IKEv1
        # may keep a REKEYED one beside it until its lifetime: unused.)
        return (len(sas) == 1 and sas[0].state == "ESTABLISHED"
                and sas[0].uniqueid not in dead
                and [c.state for c in sas[0].children].count("INSTALLED") == 1)
    wait_for(only_a_new_one, 30, interval=0.05,
             what="the peer holding only the new IKE_SA of the restarted charon")
    figure(f"kill -9 of charon: one IKE_SA at an independent IKEv{version} peer after (s)",
           f"{time.monotonic() - t0:.2f}")
    a.wait_conn("svc-a", "to-b", timeout=30)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    assert only_a_new_one()  # and no second one came up meanwhile
    # The reload asked the new charon for INITIAL_CONTACT.
    assert "with INITIAL_CONTACT" in a.log_path.read_text()


CTR = {"version": 2, "ike": "aes256ctr-sha256-modp2048", "esp": "aes128ctr-sha256-modp2048"}


def ctr_service(lab):
    doc = minimal_service(lab, 2)
    conn = doc["ipsec_site_connections"][0]
    conn["ikepolicy"] = {"ike_version": "v2", "encryption_algorithm": "aes-256-ctr",
                         "auth_algorithm": "sha256", "pfs": "group14"}
    conn["ipsecpolicy"] = {"encryption_algorithm": "aes-128-ctr", "auth_algorithm": "sha256",
                           "pfs": "group14"}
    return doc


@pytest.mark.parametrize("hand_configured_peer", [CTR], indirect=True, ids=["aes-ctr"])
def test_aes_ctr_comes_up_against_a_hand_written_peer(lab, vpnd_factory, hand_configured_peer):
    a = vpnd_factory("a")
    a.write("svc.json", ctr_service(lab))
    a.start()
    a.wait_conn("svc-a", "to-b")
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    [sa] = hand_configured_peer.live_state().sas
    assert sa.algorithms.startswith("AES_CTR-256"), sa.algorithms
    assert [c.algorithms.split("/")[0] for c in sa.children] == ["AES_CTR-128"]


def test_aes_ctr_is_an_error_with_the_reason_where_charon_cannot_do_it(lab, vpnd_factory,
                                                                      tmp_path):
    """A charon of someone else's, with plugins that have no counter mode."""
    proc, sock = start_charon(lab.a.gw, tmp_path / "mine", load=(
        "random nonce aes sha1 sha2 hmac gmp kernel-libipsec kernel-netlink "
        "socket-default vici"))
    try:
        a = vpnd_factory("a", charon={"mode": "external", "sockets": {lab.a.gw: str(sock)}})
        a.write("svc.json", ctr_service(lab))
        a.start()
        a.wait_conn("svc-a", "to-b", "ERROR", reason=(
            "charon cannot do ikepolicy.encryption_algorithm aes-256-ctr (AES_CTR): "
            "no loaded plugin provides it"))
        assert "to-b" not in ViciClient(str(sock)).live_state().conns
        a.stop()
    finally:
        proc.terminate()
        proc.wait(15)


def test_external_mode_drives_a_charon_it_did_not_start(lab, vpnd_factory, tmp_path,
                                                        hand_configured_peer):
    proc, sock = start_charon(lab.a.gw, tmp_path / "mine")
    try:
        a = vpnd_factory("a", charon={"mode": "external", "sockets": {lab.a.gw: str(sock)}})
        a.write("svc.json", minimal_service(lab))
        a.start()
        a.wait_conn("svc-a", "to-b")
        assert lab.ping(lab.a.host, lab.b.host4, count=2)
        assert not (a.run_dir / "charon").exists()  # it started nothing
        a.remove("svc.json")
        wait_for(lambda: "to-b" not in ViciClient(str(sock)).live_state().conns, 15,
                 what="connection unloaded from the external charon")
        a.stop()
    finally:
        proc.terminate()
        proc.wait(15)


def test_namespace_that_appears_later_is_served_without_restart(lab, vpnd_factory):
    late = f"{lab.tag}-late"
    a = vpnd_factory("a")
    svc = service("svc-late", lab.a, [])
    svc["namespace"] = late
    svc["ipsec_site_connections"] = [{
        "id": "c-late", "peer_address": "198.18.0.1", "peer_id": "198.18.0.1",
        "local_cidrs": ["192.0.2.0/25"], "peer_cidrs": ["198.18.2.0/24"],
        "psk": PSK, "initiator": "response-only"}]
    a.write("late.json", svc)
    a.start()
    a.wait_conn("svc-late", "c-late", "DOWN", reason=f"namespace {late} does not exist")
    try:
        ip("netns", "add", late)
        ip("-n", late, "addr", "add", f"{lab.a.wan4}/32", "dev", "lo")  # its local address
        a.wait_conn("svc-late", "c-late", "DOWN", reason="waiting for the peer",
                    timeout=30)
        assert "c-late" in a.vici(late).live_state().conns
    finally:
        a.cleanup()
        kill_namespace_processes(late)
        ip("netns", "del", late, check=False)
