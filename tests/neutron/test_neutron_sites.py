"""Two sites driven only through Neutron: neutron-vpnaas's own L3 agent
extension loads vpnd's driver from its config path, talks to a Neutron
server stand-in (neutron-vpnaas's server code over SQLite) over
oslo.messaging, and each site's vpnd runs real charons in real
namespaces named as the L3 agent names them."""
from __future__ import annotations

import neutron  # noqa: F401  -- first: oslo.service's backend

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from neutron import privileged
from neutron.agent.l3 import legacy_router
from neutron.conf.agent import common as agent_common
from neutron.conf.agent.l3 import config as l3_config
from neutron_lib import context as n_context
from neutron_vpnaas.services.vpn import agent as vpn_agent
from neutron_vpnaas.services.vpn.device_drivers import ipsec as stock_ipsec
from oslo_concurrency import lockutils
from oslo_config import cfg

import standin
from lab.testbed import TwoSites, VpndProcess, wait_for
from vpnd.neutron_driver import driver as vpnd_driver

pytestmark = pytest.mark.system

DRIVER = "vpnd.neutron_driver.l3.VpndIPsecDriver"
PSK = "neutron-psk-one"
PSK2 = "neutron-psk-two"


class Agent:
    """One node's L3 agent, as far as VPN goes: its own conf, the real
    VPNAgent extension (which loads the driver from `vpn_device_driver`)
    and a router info for the router it hosts."""

    def __init__(self, host: str, vpnd: VpndProcess, router_id: str):
        conf = cfg.ConfigOpts()
        l3_config.register_l3_agent_config_opts(l3_config.OPTS, conf)
        conf.register_opts(vpn_agent.vpn_agent_opts, "vpnagent")
        conf.register_opts(stock_ipsec.ipsec_opts, "ipsec")
        conf.register_opts(vpnd_driver.OPTS, "vpnd")
        conf(args=[], default_config_files=[])
        conf.set_override("vpn_device_driver", [DRIVER], "vpnagent")
        conf.set_override("config_file", str(vpnd.config_path), "vpnd")
        self.conf, self.host, self.router_id = conf, host, router_id
        self.ri = legacy_router.LegacyRouter(
            router_id=router_id, agent=mock.Mock(),
            router={"id": router_id, "ha": False, "distributed": False},
            agent_conf=conf, interface_driver=mock.sentinel.interface_driver)
        # The router's own IptablesManager, in its real namespace: the NAT
        # exemption rules are neutron-vpnaas's, applied by iptables-restore.
        self.extension = vpn_agent.VPNAgent(host, conf)
        api = mock.Mock()
        api.get_router_info.side_effect = lambda rid: self.ri if rid == router_id else None
        self.extension.consume_api(api)
        (self.driver,) = self.extension.device_drivers
        assert type(self.driver).__module__ + "." + type(self.driver).__name__ == DRIVER

    def add_router(self):
        """What the L3 agent does when it gets the router."""
        self.extension.add_router(n_context.get_admin_context(), {"id": self.router_id})

    def stop(self):
        self.driver.stop()


def _nat_rules(namespace: str) -> list[str]:
    """The exemption rules as the kernel holds them (iptables-save)."""
    out = subprocess.run(["ip", "netns", "exec", namespace, "iptables-save", "-t", "nat"],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "--pol ipsec" in line]


def _exempts(namespace: str, local: str, peer: str) -> bool:
    return any(f"-s {local} -d {peer} " in r and r.endswith("-j ACCEPT")
               for r in _nat_rules(namespace))


@pytest.fixture
def root_helper(tmp_path):
    """neutron runs iptables through the global cfg.CONF's root helper and
    privsep, and locks it in lock_path: as root, run them in-process, and
    put everything back after."""
    agent_common.register_root_helper(cfg.CONF)
    agent_common.register_agent_state_opts_helper(cfg.CONF)
    lockutils.set_defaults(str(tmp_path))
    cfg.CONF.set_override("root_helper", "", "AGENT")
    privileged.default.set_client_mode(False)
    try:
        yield
    finally:
        privileged.default.set_client_mode(True)
        cfg.CONF.clear_override("root_helper", "AGENT")
        lockutils.set_defaults(None)


def _ike_sa(v: VpndProcess, vpn) -> dict | None:
    c = v.conn_status(vpn.service_id, vpn.connection_id)
    return (c or {}).get("ike_sa")


def _first_active(v: VpndProcess, vpn, seen: dict, stop: threading.Event):
    """When (monotonic) vpnd's status.json first said ACTIVE: polled every
    5 ms, so the figure is late by that much at most."""
    while not stop.is_set():
        c = v.conn_status(vpn.service_id, vpn.connection_id)
        if c and c["status"] == "ACTIVE":
            seen["at"] = time.monotonic()
            return
        time.sleep(0.005)


def _acks(vpn, status):
    def ok(report):
        for s in report.status:
            if s["id"] == vpn.service_id and s["updated_pending_status"] and \
                    s["ipsec_site_connections"].get(vpn.connection_id) == \
                    {"status": status, "updated_pending_status": True}:
                return True
        return False
    return ok


@pytest.fixture
def world(root_helper):
    # A short base: charon's VICI socket is run_dir/charon/qrouter-<uuid>/
    # charon.vici, and a unix socket takes 107 bytes (pytest's tmp_path is
    # too deep for Neutron's 44-character namespaces).
    base = Path(tempfile.mkdtemp(prefix="vn", dir="/tmp"))
    try:
        yield from _world(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _world(tmp_path):
    with standin.Neutron() as n:
        a = n.site("host-a", "203.0.113.1", "192.0.2.0/24")
        b = n.site("host-b", "203.0.113.2", "198.51.100.0/24")
        lab = TwoSites("vn", gateways=(f"qrouter-{a.router_id}", f"qrouter-{b.router_id}"))
        agents, vpnds = [], []
        try:
            lab.create()
            for name in ("a", "b"):
                vpnds.append(VpndProcess(tmp_path / name, resync_interval=3600).start())
            for site, v in zip((a, b), vpnds):
                agents.append(Agent(site.host, v, site.router_id))
                agents[-1].add_router()
            yield n, lab, (a, b), vpnds, agents
        finally:
            for agent in agents:
                agent.stop()
            for v in vpnds:
                v.cleanup()
            lab.destroy()


def test_two_sites_through_neutron(world, figure):
    n, lab, (a, b), (va, vb), (agent_a, agent_b) = world
    ab = n.vpn(a, b.external_ip, [b.local_cidr], PSK)
    ba = n.vpn(b, a.external_ip, [a.local_cidr], PSK)
    seen, stop = {}, threading.Event()
    poller = threading.Thread(target=_first_active, args=(va, ab, seen, stop), daemon=True)
    poller.start()
    try:
        # The payload went in verbatim, with the namespace the agent knows.
        path = va.state_dir / f"neutron-{ab.service_id}.json"
        wait_for(path.exists, 30, what="site A's state file")
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        va.wait_conn(ab.service_id, ab.connection_id, "ACTIVE", timeout=60)
        report = n.wait_report(_acks(ab, "ACTIVE"), timeout=10)
        poller.join(5)
        took = report.at - seen["at"]
        figure("update_status ACTIVE after vpnd's status.json said ACTIVE (s)", round(took, 3))
        assert took <= 2.0
        n.wait_conn_status(ab.connection_id, "ACTIVE")
        n.wait_status(ab.service_id, "ACTIVE")
        assert lab.ping(lab.a.host, lab.b.host4, count=1, timeout=2) or \
            wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 20, what="ping A to B")
        vb.wait_conn(ba.service_id, ba.connection_id, "ACTIVE", timeout=60)
        n.wait_conn_status(ba.connection_id, "ACTIVE")
        assert _exempts(lab.a.gw, a.local_cidr, b.local_cidr)
        assert _exempts(lab.b.gw, b.local_cidr, a.local_cidr)
    finally:
        stop.set()

    # An agent restart: a new driver, a full sync. Nothing is written to
    # charon and the tunnel keeps its IKE_SA. (The file first takes the
    # rows as they are now, ACTIVE, not PENDING_CREATE: the payload carries
    # its rows' status, and a status that moved is a payload that moved.)
    agent_a.add_router()
    before_sa = _ike_sa(va, ab)["uniqueid"]
    writes = va.status_document()["vici_writes"]
    mtime = path.stat().st_mtime_ns
    fetched = len(n.fetches)
    agent_a.stop()
    agent_a2 = Agent("host-a", va, a.router_id)
    try:
        agent_a2.add_router()
        wait_for(lambda: len(n.fetches) > fetched, 10, what="the restarted agent's sync")
        assert path.stat().st_mtime_ns == mtime
        doc = va.status_document()
        assert doc["vici_writes"] == writes
        assert _ike_sa(va, ab)["uniqueid"] == before_sa

        # A PSK change through the server re-establishes the tunnel.
        n.update_psk(ab.connection_id, PSK2)
        n.update_psk(ba.connection_id, PSK2)
        wait_for(lambda: (_ike_sa(va, ab) or {}).get("uniqueid") not in (None, before_sa)
                 and va.conn_status(ab.service_id, ab.connection_id)["status"] == "ACTIVE",
                 60, what="a new IKE_SA with the new PSK")
        wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 30, what="ping after the PSK change")
        assert PSK2 not in va.log_path.read_text() and PSK2 not in vb.log_path.read_text()

        # Deleting the connection (and its service) removes the file and
        # the SAs, and Neutron is told.
        after = len(n.reports)
        n.delete_vpn(ab)
        wait_for(lambda: not path.exists(), 10, what="site A's file removed")
        wait_for(lambda: not any(s["id"] == ab.service_id
                                 for s in (va.status_document() or {}).get("services", [])),
                 30, what="site A's status entry gone")
        n.wait_report(lambda r: any(
            s["id"] == ab.service_id and s["status"] == "DOWN"
            and s["ipsec_site_connections"].get(ab.connection_id, {}).get("status") == "DOWN"
            for s in r.status), after=after, timeout=10)
        vici = va.vici(lab.a.gw)
        try:
            live = vici.live_state()
        finally:
            vici.close()
        assert ab.connection_id not in live.conns and not live.sas
        wait_for(lambda: not _nat_rules(lab.a.gw), 10, what="site A's NAT exemption removed")
        assert _exempts(lab.b.gw, b.local_cidr, a.local_cidr)
    finally:
        agent_a2.stop()
