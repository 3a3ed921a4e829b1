"""An HA router pair with real keepalived, for the failover test.

    LAN A host ── lan bridge ──┬── node1 (router ns: vpnd, charon, keepalived)
    192.0.2.10   (VIP .1)      └── node2 (router ns: vpnd, charon, keepalived)
                                      │ wan bridge (VIP 203.0.113.50)
                               peer (a hand-configured charon) ── LAN B host

Both bridges live in a switch namespace of their own; keepalived (VRRP,
multicast on the wan bridge only) puts the WAN VIP and the LAN gateway
address on the master. Documentation addresses only; everything is in
namespaces this lab creates, and destroy() removes it all.
"""
from __future__ import annotations

import secrets
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .testbed import ip, kill_namespace_processes

VIP, LAN_VIP = "203.0.113.50", "192.0.2.1"
PEER_WAN, PEER_LAN, HOST_B = "203.0.113.2", "198.51.100.1", "198.51.100.10"
HOST_A = "192.0.2.10"


@dataclass
class Node:
    ns: str
    wan: str
    lan: str
    priority: int
    keepalived: subprocess.Popen | None = None


class HaLab:
    def __init__(self, work: Path):
        tag = f"vh{secrets.token_hex(3)}"
        self.tag, self.work = tag, Path(work)
        self.switch, self.peer, self.host_a, self.host_b = (
            f"{tag}-sw", f"{tag}-peer", f"{tag}-ha", f"{tag}-hb")
        self.nodes = [Node(f"{tag}-n1", "203.0.113.11", "192.0.2.2", 150),
                      Node(f"{tag}-n2", "203.0.113.12", "192.0.2.3", 100)]
        self.namespaces = [self.switch, self.peer, self.host_a, self.host_b,
                           *(n.ns for n in self.nodes)]

    def create(self) -> "HaLab":
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def _create(self) -> None:
        for ns in self.namespaces:
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        sw = self.switch
        for bridge in ("brw", "brl"):
            ip("-n", sw, "link", "add", bridge, "type", "bridge")
            ip("-n", sw, "link", "set", bridge, "up")

        def plug(ns, inside, port, bridge, address):
            ip("-n", ns, "link", "add", inside, "type", "veth", "peer", "name", port,
               "netns", sw)
            ip("-n", sw, "link", "set", port, "master", bridge, "up")
            ip("-n", ns, "addr", "add", address, "dev", inside)
            ip("-n", ns, "link", "set", inside, "up")
        for i, node in enumerate(self.nodes, 1):
            plug(node.ns, "wan", f"w{i}", "brw", f"{node.wan}/24")
            plug(node.ns, "lan", f"l{i}", "brl", f"{node.lan}/24")
            ip("netns", "exec", node.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        plug(self.peer, "wan", "wp", "brw", f"{PEER_WAN}/24")
        plug(self.host_a, "eth0", "lh", "brl", f"{HOST_A}/24")
        ip("-n", self.host_a, "route", "add", "default", "via", LAN_VIP)
        ip("-n", self.peer, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
           "netns", self.host_b)
        ip("-n", self.peer, "addr", "add", f"{PEER_LAN}/24", "dev", "lan")
        ip("-n", self.peer, "link", "set", "lan", "up")
        ip("-n", self.host_b, "addr", "add", f"{HOST_B}/24", "dev", "eth0")
        ip("-n", self.host_b, "link", "set", "eth0", "up")
        ip("-n", self.host_b, "route", "add", "default", "via", PEER_LAN)
        ip("netns", "exec", self.peer, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def start_keepalived(self, node: Node) -> None:
        d = self.work / node.ns
        d.mkdir(parents=True, exist_ok=True)
        (d / "keepalived.conf").write_text(textwrap.dedent(f"""\
            global_defs {{
                router_id {node.ns}
            }}
            vrrp_instance router {{
                state BACKUP
                interface wan
                virtual_router_id 51
                priority {node.priority}
                advert_int 1
                virtual_ipaddress {{
                    {VIP}/24 dev wan
                    {LAN_VIP}/24 dev lan
                }}
            }}
            """))
        log = open(d / "keepalived.log", "ab")
        node.keepalived = subprocess.Popen(
            ["ip", "netns", "exec", node.ns, "keepalived", "--vrrp", "--dont-fork",
             "--log-console", "--use-file", str(d / "keepalived.conf"),
             "--pid", str(d / "keepalived.pid"), "--vrrp_pid", str(d / "vrrp.pid")],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop_keepalived(self, node: Node) -> None:
        if node.keepalived is not None and node.keepalived.poll() is None:
            node.keepalived.send_signal(signal.SIGTERM)
            node.keepalived.wait(15)
        node.keepalived = None

    def holds_vip(self, node: Node) -> bool:
        out = subprocess.run(["ip", "-n", node.ns, "-o", "addr", "show", "dev", "wan"],
                             capture_output=True, text=True).stdout
        return f" {VIP}/" in out

    def destroy(self) -> None:
        for node in self.nodes:
            try:
                self.stop_keepalived(node)
            except (OSError, subprocess.TimeoutExpired):
                if node.keepalived is not None:
                    node.keepalived.kill()
        for ns in self.namespaces:
            kill_namespace_processes(ns)
            ip("netns", "del", ns, check=False)
