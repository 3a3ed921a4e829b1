"""A two-site lab in network namespaces, for the demo and the tests.

    host-a --- gw-a ===== WAN ===== gw-b --- host-b
  192.0.2.0/24      203.0.113.0/24      198.51.100.0/24
  2001:db8:a::/64   2001:db8:f::/64     2001:db8:b::/64

Documentation addresses only, and no route between the two LANs except
the tunnel: a ping from host-a to host-b passes only through IPsec. Every
name carries a random tag so that two runs cannot collide; `destroy`
removes every namespace and kills every process left in them.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def in_ns(ns: str, *cmd: str, check: bool = True, timeout: float = 30):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=check,
                          capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Site:
    gw: str  # namespace names
    host: str
    wan4: str
    wan6: str
    lan4: str  # CIDRs
    lan6: str
    gw_lan4: str
    gw_lan6: str
    host4: str
    host6: str


class TwoSites:
    def __init__(self, prefix: str = "vt"):
        self.tag = f"{prefix}{secrets.token_hex(3)}"
        self.a = Site(gw=f"{self.tag}-gwa", host=f"{self.tag}-ha",
                      wan4="203.0.113.1", wan6="2001:db8:f::1",
                      lan4="192.0.2.0/24", lan6="2001:db8:a::/64",
                      gw_lan4="192.0.2.1", gw_lan6="2001:db8:a::1",
                      host4="192.0.2.10", host6="2001:db8:a::10")
        self.b = Site(gw=f"{self.tag}-gwb", host=f"{self.tag}-hb",
                      wan4="203.0.113.2", wan6="2001:db8:f::2",
                      lan4="198.51.100.0/24", lan6="2001:db8:b::/64",
                      gw_lan4="198.51.100.1", gw_lan6="2001:db8:b::1",
                      host4="198.51.100.10", host6="2001:db8:b::10")
        self.namespaces = [self.a.gw, self.a.host, self.b.gw, self.b.host]

    def create(self) -> "TwoSites":
        try:
            for ns in self.namespaces:
                ip("netns", "add", ns)
                ip("-n", ns, "link", "set", "lo", "up")
                # IPv6 DAD would delay the addresses by seconds.
                in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                      "net.ipv6.conf.default.accept_dad=0")
            self._link(self.a.gw, "wan", self.b.gw, "wan",
                       [f"{self.a.wan4}/24", f"{self.a.wan6}/64"],
                       [f"{self.b.wan4}/24", f"{self.b.wan6}/64"])
            for site in (self.a, self.b):
                plen4, plen6 = site.lan4.split("/")[1], site.lan6.split("/")[1]
                self._link(site.gw, "lan", site.host, "eth0",
                           [f"{site.gw_lan4}/{plen4}", f"{site.gw_lan6}/{plen6}"],
                           [f"{site.host4}/{plen4}", f"{site.host6}/{plen6}"])
                in_ns(site.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                      "net.ipv6.conf.all.forwarding=1")
                ip("-n", site.host, "route", "add", "default", "via", site.gw_lan4)
                ip("-n", site.host, "-6", "route", "add", "default", "via", site.gw_lan6)
        except BaseException:
            self.destroy()
            raise
        return self

    def _link(self, ns1, if1, ns2, if2, addrs1, addrs2):
        ip("link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2,
           "netns", ns2)
        for ns, ifname, addrs in ((ns1, if1, addrs1), (ns2, if2, addrs2)):
            for addr in addrs:
                ip("-n", ns, "addr", "add", addr, "dev", ifname, "nodad")
            ip("-n", ns, "link", "set", ifname, "up")

    def ping(self, src_ns: str, dst: str, count: int = 1, timeout: float = 2) -> bool:
        cmd = ["ping", "-n", "-c", str(count), "-W", str(int(timeout)), dst]
        if ":" in dst:
            cmd.insert(1, "-6")
        return in_ns(src_ns, *cmd, check=False, timeout=count * timeout + 10).returncode == 0

    def destroy(self) -> None:
        for ns in self.namespaces:
            kill_namespace_processes(ns)
            ip("netns", "del", ns, check=False)

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()


def kill_namespace_processes(ns: str, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, whatever still runs in a namespace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in ip("netns", "pids", ns, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not ip("netns", "pids", ns, check=False).stdout.split():
                return
            time.sleep(0.05)


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
