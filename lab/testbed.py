"""A two-site lab in network namespaces, and vpnd processes to run in it,
for the demo and the tests.

    host-a --- gw-a ===== WAN ===== gw-b --- host-b
  192.0.2.0/24      203.0.113.0/24      198.51.100.0/24
  2001:db8:a::/64   2001:db8:f::/64     2001:db8:b::/64

Documentation addresses only, and no route between the two LANs except
the tunnel: a ping from host-a to host-b passes only through IPsec. Every
name carries a random tag so that two runs cannot collide; `destroy`
removes every namespace and kills every process left in them.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vpnd.drivers.charon_process import CharonSpawner
from vpnd.drivers.vici_client import ViciClient


def ip(*args: str, check: bool = True, wrap=()) -> subprocess.CompletedProcess:
    """`ip ...`; `wrap` prefixes the command (nsenter into another mount ns)."""
    return subprocess.run([*wrap, "ip", *args], check=check, capture_output=True, text=True)


def in_ns(ns: str, *cmd: str, check: bool = True, timeout: float = 30, wrap=()):
    return subprocess.run([*wrap, "ip", "netns", "exec", ns, *cmd], check=check,
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
    def __init__(self, prefix: str = "vt", wrap=(), gateways: tuple[str, str] | None = None):
        # wrap: a command prefix to build the lab elsewhere, e.g. inside the
        # mount namespace of a booted systemd, whose /run/netns it must use.
        # gateways: the two gateway namespaces' names, where something else
        # names them (Neutron: qrouter-<router id>).
        self.wrap = tuple(wrap)
        self.tag = f"{prefix}{secrets.token_hex(3)}"
        gw_a, gw_b = gateways or (f"{self.tag}-gwa", f"{self.tag}-gwb")
        self.a = Site(gw=gw_a, host=f"{self.tag}-ha",
                      wan4="203.0.113.1", wan6="2001:db8:f::1",
                      lan4="192.0.2.0/24", lan6="2001:db8:a::/64",
                      gw_lan4="192.0.2.1", gw_lan6="2001:db8:a::1",
                      host4="192.0.2.10", host6="2001:db8:a::10")
        self.b = Site(gw=gw_b, host=f"{self.tag}-hb",
                      wan4="203.0.113.2", wan6="2001:db8:f::2",
                      lan4="198.51.100.0/24", lan6="2001:db8:b::/64",
                      gw_lan4="198.51.100.1", gw_lan6="2001:db8:b::1",
                      host4="198.51.100.10", host6="2001:db8:b::10")
        self.namespaces = [self.a.gw, self.a.host, self.b.gw, self.b.host]

    def create(self) -> "TwoSites":
        try:
            for ns in self.namespaces:
                self.ip("netns", "add", ns)
                self.ip("-n", ns, "link", "set", "lo", "up")
                # IPv6 DAD would delay the addresses by seconds.
                self.in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                           "net.ipv6.conf.default.accept_dad=0")
            self._link(self.a.gw, "wan", self.b.gw, "wan",
                       [f"{self.a.wan4}/24", f"{self.a.wan6}/64"],
                       [f"{self.b.wan4}/24", f"{self.b.wan6}/64"])
            for site in (self.a, self.b):
                plen4, plen6 = site.lan4.split("/")[1], site.lan6.split("/")[1]
                self._link(site.gw, "lan", site.host, "eth0",
                           [f"{site.gw_lan4}/{plen4}", f"{site.gw_lan6}/{plen6}"],
                           [f"{site.host4}/{plen4}", f"{site.host6}/{plen6}"])
                self.in_ns(site.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                           "net.ipv6.conf.all.forwarding=1")
                self.ip("-n", site.host, "route", "add", "default", "via", site.gw_lan4)
                self.ip("-n", site.host, "-6", "route", "add", "default", "via", site.gw_lan6)
        except BaseException:
            self.destroy()
            raise
        return self

    def ip(self, *args: str, check: bool = True):
        return ip(*args, check=check, wrap=self.wrap)

    def in_ns(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30):
        return in_ns(ns, *cmd, check=check, timeout=timeout, wrap=self.wrap)

    def _link(self, ns1, if1, ns2, if2, addrs1, addrs2):
        self.ip("link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2,
                "netns", ns2)
        for ns, ifname, addrs in ((ns1, if1, addrs1), (ns2, if2, addrs2)):
            for addr in addrs:
                self.ip("-n", ns, "addr", "add", addr, "dev", ifname, "nodad")
            self.ip("-n", ns, "link", "set", ifname, "up")

    def ping(self, src_ns: str, dst: str, count: int = 1, timeout: float = 2) -> bool:
        cmd = ["ping", "-n", "-c", str(count), "-W", str(int(timeout)), dst]
        if ":" in dst:
            cmd.insert(1, "-6")
        return self.in_ns(src_ns, *cmd, check=False,
                          timeout=count * timeout + 10).returncode == 0

    def destroy(self) -> None:
        for ns in self.namespaces:
            kill_namespace_processes(ns, wrap=self.wrap)
            self.ip("netns", "del", ns, check=False)

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()


def kill_namespace_processes(ns: str, timeout: float = 5.0, wrap=()) -> None:
    """SIGTERM, then SIGKILL, whatever still runs in a namespace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = ip("netns", "pids", ns, check=False, wrap=wrap).stdout.split()
        if not pids:
            return
        # Through the wrapper: pids are those of its PID namespace.
        subprocess.run([*wrap, "kill", f"-{sig.name[3:]}", *pids], capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not ip("netns", "pids", ns, check=False, wrap=wrap).stdout.split():
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


def wait_steady(predicate, steady: float, timeout: float, interval: float = 0.2,
                what: str = "condition") -> None:
    """Poll until predicate() has been truthy for `steady` seconds running."""
    since = [None]

    def held():
        if not predicate():
            since[0] = None
            return False
        since[0] = since[0] or time.monotonic()
        return time.monotonic() - since[0] >= steady
    wait_for(held, timeout, interval, what=f"{what}, steady for {steady:g}s")


class VpndProcess:
    """One `vpnd run` process with its own directories under `base`."""

    def __init__(self, base: Path, **config):
        self.base = base
        self.state_dir = base / "state"
        self.run_dir = base / "run"
        self.data_dir = base / "data"
        self.state_dir.mkdir(parents=True)
        self.config_path = base / "vpnd.yaml"
        settings = {"state_dir": str(self.state_dir), "run_dir": str(self.run_dir),
                    "data_dir": str(self.data_dir),
                    "log_format": "json", "charon": {"libipsec": True}, **config}
        self.config_path.write_text(json.dumps(settings))  # JSON is YAML
        self.log_path = base / "vpnd.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wrap=(), env: dict | None = None) -> "VpndProcess":
        """`wrap` prefixes the command (run it in another mount namespace);
        `env` adds to its environment (VPND_FAILPOINT)."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "vpnd", "--config", str(self.config_path), "run"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        log.close()
        return self

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def signal(self, signum) -> None:
        self.proc.send_signal(signum)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            spawner = CharonSpawner(str(self.run_dir), True)
            spawner.stop_all(spawner.namespaces())

    # --- state files -------------------------------------------------------

    def write(self, name: str, content) -> Path:
        """Atomically (write + rename), as config management does; mode
        0600, as a file that holds PSKs should be."""
        path = self.state_dir / name
        tmp = self.state_dir / f".{name}.tmp"
        tmp.write_text(content if isinstance(content, str) else json.dumps(content))
        tmp.chmod(0o600)
        os.replace(tmp, path)
        return path

    def remove(self, name: str) -> None:
        (self.state_dir / name).unlink()

    # --- observing -----------------------------------------------------------

    def status_document(self) -> dict | None:
        try:
            return json.loads((self.run_dir / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def conn_status(self, service_id: str, conn_id: str) -> dict | None:
        doc = self.status_document() or {}
        for s in doc.get("services", []):
            if s["id"] == service_id:
                return s["ipsec_site_connections"].get(conn_id)
        return None

    def wait_conn(self, service_id, conn_id, status="ACTIVE", timeout=60, reason=None):
        def ok():
            c = self.conn_status(service_id, conn_id)
            if c and c["status"] == status and (reason is None or reason in c.get("reason", "")):
                return c
            return None
        try:
            return wait_for(ok, timeout, what=f"{service_id}/{conn_id} {status}")
        except TimeoutError:
            raise AssertionError(f"{conn_id} never became {status}: last "
                                 f"{self.conn_status(service_id, conn_id)}\n"
                                 f"log tail:\n{self.log_tail()}") from None

    def log_tail(self, n=30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def socket(self, namespace: str) -> str:
        return str(CharonSpawner(str(self.run_dir), True).socket_path(namespace))

    def vici(self, namespace: str) -> ViciClient:
        return ViciClient(self.socket(namespace), timeout=10)

    def charon_log(self, namespace: str) -> str:
        path = CharonSpawner(str(self.run_dir), True).log_path(namespace)
        return path.read_text() if path.exists() else ""

    def cli(self, *args: str, wrap=()) -> subprocess.CompletedProcess:
        return subprocess.run([*wrap, sys.executable, "-m", "vpnd", "--config",
                               str(self.config_path), *args],
                              capture_output=True, text=True, timeout=60)

    def reconcile_passes(self) -> int:
        """Reconcile passes logged so far (any trigger)."""
        return sum(1 for line in self.log_path.read_text().splitlines()
                   if '"reconciled"' in line)
