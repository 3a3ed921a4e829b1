"""`vpnd doctor`: is this node ready to run vpnd's tunnels?

Each check asks the real thing: the programs vpnd runs, the plugin files
charon will be told to load, a throwaway charon started with vpnd's own
strongswan.conf (in a network namespace of its own, so it binds nothing
the node uses) and asked over VICI which plugins it really loaded, every
charon vpnd already runs, and the state files. A plugin that is missing
is named with the Debian package that ships it.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from vpnd.base.config import Config
from vpnd.drivers import charon_plugins, compose, kernel_esp
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.drivers.strongswan import StrongswanDriver
from vpnd.base.errors import DriverError
from vpnd.cli.exits import EXIT_ERROR, EXIT_OK
from vpnd.state.statefiles import StateDir
from vpnd.system import netns

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str  # OK, WARN (worth a look) or FAIL (not ready)
    what: str

    def __str__(self) -> str:
        return f"{self.level:<4}  {self.what}"


def examine(config: Config) -> list[Finding]:
    findings = [*_binaries(config), *_plugin_files(config)]
    if config.charon.mode != "external":
        findings.append(_trial_charon(config))
    findings += _running_charons(config)
    state = _scan(config)
    findings.append(_state_files(config, state))
    if config.charon.mode != "external":
        findings += _kernel(config, state)
    return findings


def ready(findings) -> bool:
    return all(f.level != FAIL for f in findings)


def _binaries(config: Config) -> list[Finding]:
    if config.charon.mode == "external":
        return []  # vpnd runs no program of its own then
    binaries = dict(charon_plugins.BINARIES)
    if config.charon.mode == "systemd":
        binaries["/bin/systemctl"] = "systemd"
    return [Finding(OK, f"{path} is there") if os.access(path, os.X_OK) else
            Finding(FAIL, f"{path} is missing (install the Debian package {package})")
            for path, package in binaries.items()]


def _plugin_files(config: Config) -> list[Finding]:
    if config.charon.mode == "external":
        return []
    absent = [p for p in charon_plugins.wanted(config.charon.libipsec)
              if not os.path.exists(f"{charon_plugins.PLUGIN_DIR}/libstrongswan-{p.name}.so")]
    if not absent:
        return [Finding(OK, f"charon's plugins are in {charon_plugins.PLUGIN_DIR}: "
                            f"{charon_plugins.load_list(config.charon.libipsec)}")]
    return [Finding(FAIL, f"plugin {p.name} ({p.why}) is not in "
                          f"{charon_plugins.PLUGIN_DIR} (install the Debian package "
                          f"{p.package})") for p in absent]


def _trial_charon(config: Config) -> Finding:
    """Start a charon as vpnd would and ask it what it loaded: a plugin
    file can be there and still fail to load (a library it needs)."""
    if os.geteuid() != 0:
        return Finding(FAIL, "cannot start a trial charon: needs root (network namespaces)")
    namespace = f"vpnd-doctor-{secrets.token_hex(3)}"
    created = subprocess.run(["ip", "netns", "add", namespace], capture_output=True,
                             text=True, timeout=30)
    if created.returncode != 0:
        return Finding(FAIL, f"cannot create a network namespace for a trial charon: "
                             f"{created.stderr.strip()}")
    run_dir = tempfile.mkdtemp(prefix="vpnd-doctor-")
    driver = StrongswanDriver(CharonSpawner(run_dir, config.charon.libipsec),
                              config.charon.libipsec, timeout=5)
    try:
        driver.ensure_running(namespace)
        problem = driver.charon_problem(namespace)
    except DriverError as e:
        return Finding(FAIL, f"a trial charon did not start: {e}")
    finally:
        driver.close()
        driver.spawner.stop_all([namespace])
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)
    if problem:
        return Finding(FAIL, f"a trial charon: {problem}")
    return Finding(OK, "a trial charon started and loaded every plugin it was asked for")


def _running_charons(config: Config) -> list[Finding]:
    driver = compose.driver(config, timeout=5)
    external = driver.spawner is None
    namespaces = sorted(config.charon.sockets) if external else driver.spawner.namespaces()
    findings = []
    try:
        for ns in namespaces:
            try:
                problem = driver.charon_problem(ns)
            except DriverError as e:
                findings.append(Finding(FAIL, f"charon in {ns}: {e}"))
                continue
            findings.append(Finding(FAIL, f"charon in {ns}: {problem}") if problem
                            else Finding(OK, f"charon in {ns} answers"
                                         + ("" if external
                                            else " with every plugin loaded")))
    finally:
        driver.close()
    return findings


def _scan(config: Config):
    return StateDir(config.state_dir, config.state_file_max_bytes,
                    state_owner=config.state_owner, max_files=config.state_files_max).scan()[0]


def _state_files(config: Config, state) -> Finding:
    files = len(set(state.services) | set(state.errors))
    if state.problems():
        return Finding(WARN, f"{len(state.problems())} of {files} state file(s) in "
                             f"{config.state_dir} with problems (see `vpnd check`)")
    return Finding(OK, f"{files} state file(s) in {config.state_dir}, all valid")


def _kernel(config: Config, state) -> list[Finding]:
    """What the tunnels of these state files need from the kernel: ESP for
    their algorithms (or, with libipsec, the TUN device), and forwarding
    in each router namespace. Without ESP the IKE negotiation succeeds and
    only the CHILD_SA's install fails, which the peer reports as "no
    proposal chosen": this is where the cause gets its name."""
    if os.geteuid() != 0:
        return [Finding(WARN, "not root: the kernel's ESP and forwarding not checked")]
    pairs, families = kernel_esp.needs(state.services.values())
    problems = kernel_esp.problems(config.charon.libipsec, pairs, families)
    findings = [Finding(FAIL, p) for p in problems]
    if not problems and config.charon.libipsec:
        findings.append(Finding(OK, f"charon.libipsec: ESP in charon, over {kernel_esp.TUN}"))
    elif not problems:
        used = ", ".join(sorted(f"{e}/{a}" for e, a in pairs)) or "none configured yet"
        findings.append(Finding(OK, f"kernel carries ESP (tunnel mode, UDP "
                                    f"encapsulation) for the algorithms in use: {used}"))
    namespaces = sorted({s.namespace for s in state.services.values()})
    findings += [_forwarding(ns) for ns in namespaces]
    return findings


def _forwarding(namespace: str) -> Finding:
    """IPv4 forwarding in a router namespace: traffic between the LAN and
    the tunnel is forwarded traffic."""
    if not netns.exists(namespace):
        return Finding(WARN, f"namespace {namespace} does not exist (yet): its forwarding "
                             f"not checked")
    try:
        done = subprocess.run(["nsenter", f"--net={netns.NETNS_DIR}/{namespace}", "--", "cat",
                               "/proc/sys/net/ipv4/ip_forward"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Finding(WARN, f"namespace {namespace}: forwarding not checked ({e})")
    if done.stdout.strip() == "1":
        return Finding(OK, f"namespace {namespace} forwards IPv4")
    return Finding(FAIL, f"namespace {namespace} does not forward IPv4 "
                         f"(net.ipv4.ip_forward={done.stdout.strip() or '?'}): "
                         f"ip netns exec {namespace} sysctl -w net.ipv4.ip_forward=1")


def doctor(config, args) -> int:
    """The subcommand: every finding, then ready (exit 0) or NOT READY (1)."""
    from vpnd.system import log
    log.setup(config.log_format, "error")
    findings = examine(config)
    for finding in findings:
        print(finding)
    if ready(findings):
        print("ready", file=sys.stderr)
        return EXIT_OK
    print("NOT READY", file=sys.stderr)
    return EXIT_ERROR
