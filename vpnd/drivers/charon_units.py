"""Systemd mode: one `vpnd-charon@<namespace>.service` per namespace.

Each charon gets its own cgroup, restart policy and journal stream, and
lives independently of vpnd.service, so that restarting or stopping vpnd
leaves every tunnel up. The template unit (systemd/vpnd-charon@.service)
runs charon-systemd inside /run/netns/<namespace> with the strongswan.conf
vpnd writes under /run/vpnd/charon/<namespace>/.
"""
from __future__ import annotations

import re
import subprocess

from vpnd.base.errors import DriverUnavailable
from vpnd.drivers.charon_instances import CharonInstances

RUN_DIR = "/run/vpnd"  # the template unit names it


def unit_name(namespace: str) -> str:
    """The instance unit, escaped as systemd-escape does ('-' is special)."""
    def esc(match):
        return "".join(f"\\x{b:02x}" for b in match.group().encode())
    escaped = re.sub(r"[^A-Za-z0-9:_.]|^\.", esc, namespace)
    return f"vpnd-charon@{escaped}.service"


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True,
                          timeout=60, check=check)


class CharonUnits(CharonInstances):
    def _launch(self, namespace: str) -> None:
        self._start_unit(namespace, "--no-block")

    def _wait_started(self, namespace: str) -> None:
        unit = unit_name(namespace)
        self._start_unit(namespace)  # returns once the unit is up (or failed)

        def gone():
            state = _systemctl("is-active", unit, check=False).stdout.strip()
            return None if state in ("active", "activating", "reloading") else \
                f"unit {unit} is {state}; see journalctl -u {unit}"
        self._wait_ready(namespace, gone)

    def _start_unit(self, namespace: str, *options: str) -> None:
        unit = unit_name(namespace)
        result = _systemctl("start", *options, unit, check=False)
        if result.returncode != 0:
            raise DriverUnavailable(f"systemctl start {unit} failed: "
                                    f"{result.stderr.strip() or result.stdout.strip()}")

    def stop_all(self, namespaces, timeout: float = 10.0) -> list[str]:
        active = [ns for ns in namespaces
                  if _systemctl("is-active", unit_name(ns), check=False).stdout.strip()
                  == "active"]
        if active:  # one job: systemd stops them in parallel
            _systemctl("stop", *(unit_name(ns) for ns in active), check=False)
        return sorted(active)

    def namespaces(self) -> list[str]:
        if not self.base.is_dir():
            return []
        return sorted(p.name for p in self.base.iterdir()
                      if _systemctl("is-active", unit_name(p.name), check=False)
                      .stdout.strip() == "active")
