"""HA routers with real keepalived (lab/ha.py): the tunnel follows the VIP
when the master's keepalived stops, and back when it returns; the backup
holds no SA and says it is in standby."""
from __future__ import annotations

import re
import subprocess
import textwrap
import time

import pytest

from conftest import require_system
from lab.ha import HOST_B, PEER_WAN, VIP, HaLab
from lab.testbed import wait_for
from lab.hand_charon import start_charon
from vpnd.plan.standby import reason

PSK = "ha-psk-9c2"


def peer_conf() -> str:
    return textwrap.dedent(f"""\
        connections {{
            to-ha {{
                version = 2
                local_addrs = {PEER_WAN}
                remote_addrs = {VIP}
                proposals = aes128-sha256-modp2048
                dpd_delay = 2s
                local {{
                    auth = psk
                    id = {PEER_WAN}
                }}
                remote {{
                    auth = psk
                    id = {VIP}
                }}
                children {{
                    to-ha {{
                        local_ts = 198.51.100.0/24
                        remote_ts = 192.0.2.0/24
                        esp_proposals = aes128-sha256-modp2048
                        start_action = none
                        dpd_action = clear
                    }}
                }}
            }}
        }}
        secrets {{
            ike-ha {{
                id-a = {VIP}
                id-b = {PEER_WAN}
                secret = "{PSK}"
            }}
        }}
        """)


def ha_service(node) -> dict:
    return {"id": "svc-ha", "namespace": node.ns, "external_ip": VIP,
            "ipsec_site_connections": [{
                "id": "c1", "peer_address": PEER_WAN, "peer_id": PEER_WAN,
                "local_cidrs": ["192.0.2.0/24"], "peer_cidrs": ["198.51.100.0/24"],
                "psk": PSK, "dpd_action": "restart", "dpd_interval": 2, "dpd_timeout": 10,
                "ikepolicy": {"ike_version": "v2", "auth_algorithm": "sha256", "pfs": "group14"},
                "ipsecpolicy": {"auth_algorithm": "sha256", "pfs": "group14"}}]}


@pytest.fixture
def ha(tmp_path):
    require_system()
    lab = HaLab(tmp_path / "ha").create()
    try:
        yield lab
    finally:
        lab.destroy()


@pytest.mark.fault
def test_the_tunnel_follows_the_vip_both_ways(ha, vpnd_factory, tmp_path, figure):
    peer, _sock = start_charon(ha.peer, tmp_path / "peer", peer_conf())
    try:
        vpnds = []
        for i, node in enumerate(ha.nodes):
            v = vpnd_factory(f"n{i + 1}")
            v.write("svc.json", ha_service(node))
            vpnds.append(v)
        n1, n2 = ha.nodes
        v1, v2 = vpnds
        for node in ha.nodes:
            ha.start_keepalived(node)
        wait_for(lambda: ha.holds_vip(n1), 30, what="node1 VRRP master")
        v1.start(), v2.start()
        v1.wait_conn("svc-ha", "c1", timeout=60)
        v2.wait_conn("svc-ha", "c1", "DOWN", reason=reason(VIP), timeout=30)
        assert not v2.vici(n2.ns).live_state().sas

        def failover(old, new, v_old, v_new, what):
            pinger = subprocess.Popen(["ip", "netns", "exec", ha.host_a, "ping", "-n", "-i",
                                       "0.2", "-W", "1", "-w", "30", HOST_B],
                                      stdout=subprocess.PIPE, text=True)
            t0 = time.monotonic()
            what()
            wait_for(lambda: ha.holds_vip(new), 30, interval=0.05, what="the VIP moved")
            moved = time.monotonic() - t0
            v_new.wait_conn("svc-ha", "c1", timeout=60)
            active = time.monotonic() - t0
            wait_for(lambda: not v_old.vici(old.ns).live_state().sas, 30, interval=0.1,
                     what="no SA left on the old master")
            out, _ = pinger.communicate(timeout=60)
            sent, got = map(int, re.search(r"(\d+) packets transmitted, (\d+) received",
                                           out).groups())
            v_old.wait_conn("svc-ha", "c1", "DOWN", reason=reason(VIP), timeout=30)
            return moved, active, sent - got

        moved, active, lost = failover(n1, n2, v1, v2, lambda: ha.stop_keepalived(n1))
        figure("HA failover (master keepalived stopped): VIP moved, tunnel ACTIVE (s), "
               "pings lost at 5/s", f"{moved:.1f}, {active:.1f}, {lost}")
        moved, active, lost = failover(n2, n1, v2, v1, lambda: ha.start_keepalived(n1))
        figure("HA failback (keepalived back on node1): VIP moved, tunnel ACTIVE (s), "
               "pings lost at 5/s", f"{moved:.1f}, {active:.1f}, {lost}")
    finally:
        peer.terminate()
        peer.wait(15)
