"""vpnd under a real systemd: boots systemd as PID 1 of a new PID + mount
namespace, installs vpnd with the documented command, and drives it with
systemctl, as an operator would.

systemd-tmpfiles empties /tmp at boot, so /tmp, /run and /var/tmp get
fresh tmpfs mounts first; the checkout is bind-mounted outside them. What
the install writes outside those (/opt/vpnd, /etc/vpnd, units, /var/lib/vpnd)
is on this machine's disk: scripts/uninstall removes it, also on failure.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import connection, require_system, service
from vpnd.drivers.charon_units import unit_name
from lab.kernel import kernel_has_esp
from lab.testbed import TwoSites, wait_for, wait_steady

PSK = "systemd-test-psk-c41"
ROOT = Path(__file__).resolve().parents[2]
INSTALLED = [Path("/opt/vpnd"), Path("/etc/vpnd"), Path("/usr/local/bin/vpnd"),
             Path("/etc/systemd/system/vpnd.service"),
             Path("/etc/systemd/system/vpnd-charon@.service"), Path("/var/lib/vpnd"),
             Path("/usr/local/share/man/man8/vpnd.8"),
             Path("/usr/local/share/man/man5/vpnd.yaml.5")]


class BootedSystemd:
    def __init__(self):
        self.tag = secrets.token_hex(3)
        self.src = Path(f"/var/lib/vpnd-systemd-test-{self.tag}")
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None

    def boot(self) -> "BootedSystemd":
        self.src.mkdir()
        script = f"""
            set -e
            mount --bind {ROOT} {self.src}
            mount -t proc proc /proc
            mount -t tmpfs tmpfs /tmp
            mount -t tmpfs tmpfs /run
            mount -t tmpfs tmpfs /var/tmp
            # The journal in memory: nothing on this machine's /var/log.
            mkdir -p /run/systemd/journald.conf.d
            printf '[Journal]\nStorage=volatile\n' > /run/systemd/journald.conf.d/volatile.conf
            exec env container=vpnd-test-{self.tag} /lib/systemd/systemd --system
        """
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private",
             "sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def systemd_pid():
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                                      capture_output=True, text=True).stdout.split()
            for pid in children:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
            if self.proc.poll() is not None:
                pytest.fail(f"systemd could not boot here (exit {self.proc.returncode})")
            return None
        self.pid = wait_for(systemd_pid, 30, what="systemd as PID 1 of the new namespace")
        state = wait_for(lambda: self.run("systemctl", "is-system-running", check=False)
                         .stdout.strip() in ("running", "degraded") and
                         self.run("systemctl", "is-system-running", check=False).stdout.strip(),
                         60, what="systemd to finish booting")
        assert state in ("running", "degraded")
        return self

    @property
    def wrap(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "--"]

    def run(self, *cmd: str, check: bool = True, timeout: float = 300):
        result = subprocess.run([*self.wrap, *cmd], capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def show(self, unit: str, prop: str) -> str:
        return self.run("systemctl", "show", "-P", prop, unit).stdout.strip()

    def poweroff(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None and self.pid:
            subprocess.run([*self.wrap, "systemctl", "poweroff"], capture_output=True)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                # A unit that will not stop: SIGKILL to PID 1 ends the
                # whole PID namespace, every process in it.
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(30)
        if self.src.exists():
            self.src.rmdir()


@pytest.fixture(scope="module")
def systemd():
    require_system()
    if not os.access("/lib/systemd/systemd", os.X_OK):
        pytest.fail("needs /lib/systemd/systemd (apt: systemd) to boot a real systemd")
    leftovers = [str(p) for p in INSTALLED if p.exists()]
    if leftovers:
        pytest.fail(f"refusing to install over an existing vpnd: {leftovers}")
    booted = BootedSystemd()
    # systemd-tmpfiles creates it at boot on this machine's disk.
    journal_dir_existed = Path("/var/log/journal").exists()
    try:
        booted.boot()
        # Debian's strongswan.service would run in this machine's own network
        # namespace: keep it out of the way (runtime mask, gone with /run).
        booted.run("systemctl", "mask", "--runtime", "--now", "strongswan.service")
        booted.run("sh", "-c", f"cd {booted.src} && scripts/install", timeout=600)
        yield booted
    finally:
        try:
            if booted.pid:
                booted.run("sh", "-c", f"cd {booted.src} && scripts/uninstall", check=False)
        finally:
            booted.poweroff()
            subprocess.run(["sh", "-c", f"cd {ROOT} && scripts/uninstall"],
                           capture_output=True)
            if not journal_dir_existed:
                shutil.rmtree("/var/log/journal", ignore_errors=True)


@pytest.fixture(scope="module")
def site(systemd):
    """Two sites inside systemd's namespaces; gw-a is served by the installed
    vpnd.service (charon.mode systemd), gw-b by a second vpnd in spawn mode
    run as a transient unit."""
    lab = TwoSites(prefix="vs", wrap=systemd.wrap).create()
    try:
        config = ("charon:\n  mode: systemd\n  libipsec: true\n"
                  "status_interval: 10\nresync_interval: 30\n")
        systemd.run("sh", "-c", f"printf '%s' '{config}' > /etc/vpnd/vpnd.yaml")
        peer_dir = f"/run/vpnd-peer-{systemd.tag}"
        peer_config = json.dumps({"state_dir": f"{peer_dir}/state", "run_dir": f"{peer_dir}/run",
                                  "data_dir": f"{peer_dir}/data", "log_format": "json",
                                  "charon": {"libipsec": True}})
        systemd.run("mkdir", "-p", f"{peer_dir}/state")
        systemd.run("sh", "-c", f"printf '%s' '{peer_config}' > {peer_dir}/vpnd.yaml")
        write(systemd, f"{peer_dir}/state/b.json",
              service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)]))
        systemd.run("systemd-run", "--unit", "vpnd-peer-b", "/opt/vpnd/bin/vpnd",
                    "--config", f"{peer_dir}/vpnd.yaml", "run")
        yield lab
    finally:
        systemd.run("systemctl", "stop", "vpnd-peer-b", check=False)
        systemd.run("sh", "-c", f"/opt/vpnd/bin/vpnd --config /run/vpnd-peer-{systemd.tag}"
                    "/vpnd.yaml stop-charons", check=False)
        systemd.run("systemctl", "stop", "vpnd.service", check=False)
        systemd.run("sh", "-c", "systemctl stop 'vpnd-charon@*'", check=False)
        lab.destroy()


def write(systemd: BootedSystemd, path: str, content: dict) -> None:
    """Atomically, as config management does."""
    data = json.dumps(content).replace("'", "'\\''")
    systemd.run("sh", "-c", f"printf '%s' '{data}' > {path}.tmp && mv {path}.tmp {path}")


def status(systemd) -> dict:
    return json.loads(systemd.run("cat", "/run/vpnd/status.json").stdout)


def conn(systemd, sid="svc-a", cid="c1") -> dict:
    for s in status(systemd)["services"]:
        if s["id"] == sid:
            return s["ipsec_site_connections"].get(cid, {})
    return {}


def ike_sas(systemd, socket: str) -> list[tuple[str, str]]:
    """(unique id, state) of one charon's IKE_SAs, from swanctl's
    "c1: #2, ESTABLISHED, IKEv2, ..." lines."""
    out = systemd.run("swanctl", "--list-sas", "--uri", f"unix://{socket}").stdout
    return sorted(re.findall(r"^\S+: #(\d+), (\w+), ", out, re.M))


def ike_ids(systemd, lab) -> list[str]:
    """Unique ids of gw-a's IKE_SAs."""
    return [uid for uid, _ in ike_sas(systemd, f"/run/vpnd/charon/{lab.a.gw}/charon.vici")]


def wait_settled(systemd, lab) -> None:
    """Until each gateway has one IKE_SA, ESTABLISHED, for a second: an
    initiation still pending at either end (a CONNECTING IKE_SA,
    retransmitting) would land later as a duplicate, and vpnd's ending
    of it would change the ids this file compares."""
    sockets = [f"/run/vpnd/charon/{lab.a.gw}/charon.vici",
               f"/run/vpnd-peer-{systemd.tag}/run/charon/{lab.b.gw}/charon.vici"]

    def settled():
        return all([state for _, state in ike_sas(systemd, socket)] == ["ESTABLISHED"]
                   for socket in sockets)
    wait_steady(settled, 1.0, 90, what="one ESTABLISHED IKE_SA at each gateway")


def history(systemd) -> str:
    """What vpnd and charon said of c1: the message of a failed assertion."""
    return systemd.run("journalctl", "--no-pager", "-o", "short-monotonic",
                       "IKE_SA_NAME=c1", "+", "VPND_CONNECTION=c1", check=False).stdout


def test_install_fits_the_configuration_to_this_kernel_and_man_works(systemd):
    """Before `site` rewrites vpnd.yaml: the installed one says libipsec
    exactly when this kernel has no ESP (asked here on our own), and the
    man pages are found."""
    installed = systemd.run("cat", "/etc/vpnd/vpnd.yaml").stdout
    want = "false" if kernel_has_esp() else "true"
    assert f"\n  libipsec: {want} " in installed, installed
    assert "\n  mode: systemd" in installed
    assert systemd.run("man", "-w", "vpnd").stdout.strip().endswith("man8/vpnd.8")
    assert systemd.run("man", "-w", "vpnd.yaml").stdout.strip().endswith("man5/vpnd.yaml.5")


def test_the_installed_vpnd_has_its_bytecode(systemd):
    """The service cannot write its bytecode (ProtectSystem=strict): the
    install compiled every module, or each start would compile vpnd anew."""
    check = ("import importlib.util, os, pathlib, vpnd\n"
             "sources = list(pathlib.Path(vpnd.__file__).parent.rglob('*.py'))\n"
             "print(len(sources), [str(p) for p in sources\n"
             "                     if not os.path.exists(importlib.util.cache_from_source(p))])")
    count, missing = systemd.run("/opt/vpnd/bin/python", "-I", "-c", check).stdout.split(" ", 1)
    assert int(count) > 50 and missing.strip() == "[]", missing


def test_units_verify_and_are_hardened(systemd):
    result = systemd.run("systemd-analyze", "verify", "/etc/systemd/system/vpnd.service",
                         "/etc/systemd/system/vpnd-charon@.service", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    security = systemd.run("systemd-analyze", "security", "--no-pager", "vpnd.service",
                           check=False).stdout
    exposure = float(security.strip().splitlines()[-1].split("exposure level for vpnd.service:")
                     [1].split()[0])
    assert exposure < 6.0, security  # "MEDIUM" or better, with what vpnd needs


# In the fault suite too: the restart case below builds on this start.
@pytest.mark.fault
def test_start_is_ready_only_after_the_first_reconcile(systemd, site):
    write(systemd, "/etc/vpnd/state.d/a.json",
          service("svc-a", site.a, [connection("c1", site.a, site.b, PSK)]))
    systemd.run("systemctl", "start", "vpnd.service", timeout=180)
    # start returned: READY=1 came, so the first pass has been applied.
    assert systemd.show("vpnd.service", "ActiveState") == "active"
    first = status(systemd)
    assert [s["id"] for s in first["services"]] == ["svc-a"]
    # The namespace's charon runs as its own unit.
    assert systemd.show(unit_name(site.a.gw), "ActiveState") == "active"
    wait_for(lambda: conn(systemd).get("status") == "ACTIVE", 60, what="svc-a ACTIVE")
    assert wait_for(lambda: site.ping(site.a.host, site.b.host4), 30, what="ping")
    text = wait_for(lambda: "1/1 connections ACTIVE" in systemd.show("vpnd.service", "StatusText")
                    and systemd.show("vpnd.service", "StatusText"), 15, what="STATUS line")
    assert text.startswith("1 services")
    assert "1 services, 1/1 connections ACTIVE" in systemd.run(
        "systemctl", "status", "--no-pager", "vpnd.service", check=False).stdout


def test_dropped_file_applies_and_reload_returns_when_applied(systemd, site):
    before = status(systemd)["reloads"]
    write(systemd, "/etc/vpnd/state.d/more.json",
          service("svc-more", site.a, [connection("c2", site.a, site.b, PSK,
                                                   local_cidrs=["192.0.2.0/25"],
                                                   initiator="response-only")]))
    systemd.run("systemctl", "reload", "vpnd.service", timeout=180)
    after = status(systemd)
    assert after["reloads"] == before + 1
    assert "svc-more" in [s["id"] for s in after["services"]]
    assert conn(systemd, "svc-more", "c2").get("reason") == "waiting for the peer to initiate"


@pytest.mark.fault
def test_restart_keeps_the_tunnel_and_its_sa(systemd, site, figure):
    wait_for(lambda: conn(systemd).get("status") == "ACTIVE", 60, what="svc-a ACTIVE")
    wait_settled(systemd, site)
    ids = ike_ids(systemd, site)
    pid = systemd.show("vpnd.service", "MainPID")
    pinger = subprocess.Popen([*systemd.wrap, "ip", "netns", "exec", site.a.host, "ping",
                               "-n", "-i", "0.2", "-c", "25", "-W", "1", site.b.host4],
                              stdout=subprocess.PIPE, text=True)
    systemd.run("systemctl", "restart", "vpnd.service", timeout=180)
    out, _ = pinger.communicate(timeout=60)
    assert systemd.show("vpnd.service", "MainPID") != pid
    loss = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    figure("systemctl restart vpnd, pings at 5/s", f"{loss[1]} sent, "
                                                   f"{int(loss[1]) - int(loss[2])} lost")
    assert " 0% packet loss" in out, out
    assert ike_ids(systemd, site) == ids, history(systemd)
    systemd.run("systemctl", "stop", "vpnd.service", timeout=120)
    assert ike_ids(systemd, site) == ids  # stopped vpnd: the tunnel stays
    assert site.ping(site.a.host, site.b.host4)
    systemd.run("systemctl", "start", "vpnd.service", timeout=180)


@pytest.mark.fault
def test_a_wedged_vpnd_is_killed_by_the_watchdog_and_restarted(systemd, site):
    systemd.run("mkdir", "-p", "/run/systemd/system/vpnd.service.d")
    systemd.run("sh", "-c", "printf '[Service]\\nWatchdogSec=4\\n' > "
                "/run/systemd/system/vpnd.service.d/watchdog.conf")
    systemd.run("systemctl", "daemon-reload")
    systemd.run("systemctl", "restart", "vpnd.service", timeout=180)
    restarts = int(systemd.show("vpnd.service", "NRestarts"))
    pid = systemd.show("vpnd.service", "MainPID")
    systemd.run("kill", "-STOP", pid)
    wait_for(lambda: int(systemd.show("vpnd.service", "NRestarts")) > restarts
             and systemd.show("vpnd.service", "ActiveState") == "active", 60,
             interval=0.5, what="the watchdog to restart vpnd")
    assert systemd.show("vpnd.service", "MainPID") != pid
    log = systemd.run("journalctl", "-u", "vpnd.service", "--no-pager").stdout
    assert "Watchdog timeout" in log
    systemd.run("rm", "-r", "/run/systemd/system/vpnd.service.d")
    systemd.run("systemctl", "daemon-reload")


def test_journal_has_structured_fields_and_no_psk(systemd, site):
    wait_for(lambda: conn(systemd).get("status") == "ACTIVE", 60, what="svc-a ACTIVE")
    entries = [json.loads(line) for line in systemd.run(
        "journalctl", "-o", "json", "VPND_CONNECTION=c1", "--no-pager").stdout.splitlines()]
    assert entries
    up = [e for e in entries if e.get("VPND_EVENT") == "connection-up"]
    assert up and all(e["SYSLOG_IDENTIFIER"] == "vpnd" and e["IKE_SA_NAME"] == "c1"
                      and e["VPND_SERVICE"] == "svc-a" and e["VPND_NETNS"] == site.a.gw
                      and e["PRIORITY"] == "6" for e in up)
    assert len({e["MESSAGE_ID"] for e in up}) == 1
    # One query shows charon's view and vpnd's of the same connection.
    both = [json.loads(line) for line in systemd.run(
        "journalctl", "-o", "json", "IKE_SA_NAME=c1", "--no-pager").stdout.splitlines()]
    assert {e.get("SYSLOG_IDENTIFIER") for e in both} >= {"vpnd", "charon-systemd"}
    everything = systemd.run("journalctl", "-o", "json", "--no-pager").stdout
    assert PSK not in everything
