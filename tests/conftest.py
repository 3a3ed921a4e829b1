"""Shared test helpers: a vpnd process per gateway, state-file builders."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vpnd.drivers.charon_process import CHARON, CharonSpawner
from vpnd.drivers.vici_client import ViciClient
from vpnd.testbed import TwoSites, wait_for

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/system/" in str(item.fspath):
            item.add_marker(pytest.mark.system)


def require_system():
    """System tests need root and charon; say so instead of skipping quietly."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    if not os.access(CHARON, os.X_OK):
        missing.append(f"{CHARON} (apt: charon-systemd)")
    if not shutil.which("ip"):
        missing.append("ip (apt: iproute2)")
    if missing:
        pytest.fail("system test needs: " + ", ".join(missing) + "; run `make test`")


def connection(conn_id, local, peer, psk, v6=False, **overrides) -> dict:
    """A Neutron agent-shaped ipsec_site_connection from one site to another."""
    conn = {
        "id": conn_id,
        "peer_address": peer.wan6 if v6 else peer.wan4,
        "peer_id": peer.wan6 if v6 else peer.wan4,
        "local_cidrs": [local.lan6 if v6 else local.lan4],
        "peer_cidrs": [peer.lan6 if v6 else peer.lan4],
        "psk": psk,
        "mtu": 1500,
        "initiator": "bi-directional",
        "dpd_action": "restart",
        "dpd_interval": 30,
        "dpd_timeout": 120,
        "admin_state_up": True,
        "ikepolicy": {"ike_version": "v2", "auth_algorithm": "sha256",
                      "encryption_algorithm": "aes-128", "pfs": "group14",
                      "phase1_negotiation_mode": "main",
                      "lifetime_units": "seconds", "lifetime_value": 3600},
        "ipsecpolicy": {"transform_protocol": "esp", "auth_algorithm": "sha256",
                        "encryption_algorithm": "aes-128", "encapsulation_mode": "tunnel",
                        "pfs": "group14", "lifetime_units": "seconds",
                        "lifetime_value": 3600},
    }
    conn.update(overrides)
    return conn


def service(service_id, local, conns, v6=False) -> dict:
    return {"id": service_id, "router_id": f"router-{service_id}",
            "namespace": local.gw, "admin_state_up": True,
            "external_ip": local.wan6 if v6 else local.wan4,
            "name": "a name Neutron sends and vpnd ignores",
            "ipsec_site_connections": conns}


class Vpnd:
    """One `vpnd run` process with its own directories under tmp_path."""

    def __init__(self, base: Path, **config):
        self.base = base
        self.state_dir = base / "state"
        self.run_dir = base / "run"
        self.data_dir = base / "data"
        self.state_dir.mkdir(parents=True)
        self.config_path = base / "vpnd.yaml"
        settings = {"state_dir": str(self.state_dir), "run_dir": str(self.run_dir),
                    "data_dir": str(self.data_dir), "status_interval": 0.25,
                    "log_format": "json", "charon": {"libipsec": True}, **config}
        self.config_path.write_text(json.dumps(settings))  # JSON is YAML
        self.log_path = base / "vpnd.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Vpnd":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vpnd", "--config", str(self.config_path), "run"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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
            for ns in spawner.namespaces():
                spawner.stop(ns)

    # --- state files -------------------------------------------------------

    def write(self, name: str, content) -> Path:
        """Atomically (write + rename), as config management does."""
        path = self.state_dir / name
        tmp = self.state_dir / f".{name}.tmp"
        tmp.write_text(content if isinstance(content, str) else json.dumps(content))
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

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vpnd", "--config",
                               str(self.config_path), *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)

    def applied_passes(self) -> int:
        """Reconcile passes logged so far (any trigger)."""
        return sum(1 for line in self.log_path.read_text().splitlines()
                   if '"reconciled"' in line)


@pytest.fixture
def lab():
    require_system()
    with TwoSites() as sites:
        yield sites


@pytest.fixture
def vpnd_factory(tmp_path):
    made: list[Vpnd] = []

    def make(name: str, **config) -> Vpnd:
        v = Vpnd(tmp_path / name, **config)
        made.append(v)
        return v

    yield make
    for v in made:
        v.cleanup()
