"""Spawn mode: one charon-systemd per network namespace, run by vpnd itself.

charons are started in their own session so that they, and the tunnels
they hold, outlive a vpnd restart; a restarted vpnd adopts any instance
whose VICI socket answers. A pid file is read only if it is plainly
vpnd's, and the pid in it is signalled only while that process is the
charon vpnd started (identity.py). What spawn mode shares with systemd
mode (files, strongswan.conf, readiness) is in charon_instances.
"""
from __future__ import annotations

import os
import signal

from vpnd.drivers.charon_instances import CharonInstances
from vpnd.system import files, identity, processes
from vpnd.system.files import write_atomically
from vpnd.system.netns import NETNS_DIR

CHARON = "/usr/sbin/charon-systemd"
# `ip netns exec` binds /etc/netns/<name>/* over /etc for what it runs.
NETNS_ETC = "/etc/netns"

# Variables that make sense only to vpnd: a charon that inherits
# NOTIFY_SOCKET would report READY for vpnd's unit.
_PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                "LISTEN_PID", "LISTEN_FDNAMES", "INVOCATION_ID")


class CharonSpawner(CharonInstances):
    """Spawn mode: vpnd runs charon-systemd itself, in the namespace (see _spawn)."""

    def __init__(self, run_dir: str, libipsec: bool, start_timeout: float = 15.0):
        super().__init__(run_dir, libipsec, start_timeout)
        # namespace -> pid of the charon this process spawned: a child's
        # pid is not given to another process until the child is reaped.
        self._children: dict[str, int] = {}

    def pid(self, namespace: str) -> int | None:
        """The charon vpnd started in `namespace`, if it still runs: this
        process's child, or the process charon.pid names (a charon
        adopted from an earlier vpnd) while that is still the same charon."""
        child = self._children.get(namespace)
        if child is not None:
            running = _child_running(child)
            if running is not None:
                if not running:
                    self._children.pop(namespace, None)
                return child if running else None
            self._children.pop(namespace, None)  # no longer our child: as any other
        recorded = self._recorded(namespace)
        return recorded[0] if recorded and _is_charon(*recorded) else None

    def _recorded(self, namespace: str) -> tuple[int, int | None] | None:
        """(pid, start time) from charon.pid, if it is plainly vpnd's."""
        try:
            text = files.read_own(str(self.directory(namespace) / "charon.pid"))
        except OSError:
            return None
        return identity.parse_pid_file(text.decode(errors="replace"))

    def _hold(self, namespace: str) -> processes.Held | None:
        """The charon of `namespace`, held for signals (see processes.py)."""
        child = self._children.get(namespace)
        if child is not None and _child_running(child):
            return processes.Held.take(child, lambda pid: bool(_child_running(pid)))
        recorded = self._recorded(namespace)
        if recorded is None:
            return None
        pid, start = recorded
        return processes.Held.take(pid, lambda p: _is_charon(p, start))

    def _launch(self, namespace: str) -> None:
        if self.pid(namespace) is None:
            self._spawn(namespace)

    def _wait_started(self, namespace: str) -> None:
        out = self.directory(namespace) / "charon.out"
        self._wait_ready(namespace, lambda: None if self.pid(namespace)
                         else f"exited at start; see {out}")

    def _spawn(self, namespace: str) -> int:
        d = self.directory(namespace)
        conf = d / "strongswan.conf"
        # A stale socket outlives its charon; charon would refuse to bind.
        self.socket_path(namespace).unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
        env["STRONGSWAN_CONF"] = str(conf)
        # nsenter, unless the namespace has its own /etc files: `ip netns
        # exec` also makes a mount namespace, a copy of every mount (each
        # router's /run/netns entry included), so a start cost more the
        # more routers there were (7 ms a charon at 200); it is needed only
        # to bind /etc/netns/<name>/* (a router's own resolv.conf or hosts,
        # with which a peer named by host name is resolved). posix_spawn
        # (vfork inside) rather than a fork of vpnd with all its threads;
        # every fd vpnd opens is close-on-exec, so nothing else leaks in.
        if os.path.isdir(os.path.join(NETNS_ETC, namespace)):
            argv = ["ip", "netns", "exec", namespace, CHARON]
        else:
            argv = ["nsenter", f"--net={os.path.join(NETNS_DIR, namespace)}", CHARON]
        out = files.open_append(str(d / "charon.out"), 0o644)
        try:
            pid = os.posix_spawnp(argv[0], argv, env,
                                  file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull,
                                                 os.O_RDONLY, 0),
                                                (os.POSIX_SPAWN_DUP2, out, 1),
                                                (os.POSIX_SPAWN_DUP2, out, 2)],
                                  setsid=True)
        finally:
            os.close(out)
        self._children[namespace] = pid
        # With its start time: a later process given the same pid is not it.
        write_atomically(str(d / "charon.pid"),
                         identity.pid_file_text(pid, processes.start_time(pid)).encode(),
                         0o644, durable=False)
        return pid

    def stop_all(self, namespaces, timeout: float = 10.0) -> list[str]:
        held = {ns: h for ns in namespaces if (h := self._hold(ns)) is not None}
        try:
            for h in held.values():
                h.signal(signal.SIGTERM)
            if not processes.wait_ended(held.values(), timeout):
                killed = [h for h in held.values() if not h.ended()]
                for h in killed:
                    h.signal(signal.SIGKILL)
                processes.wait_ended(killed, 1.0)  # at once; only to reap it
            for ns, h in held.items():
                h.reap()
                self._children.pop(ns, None)
                (self.directory(ns) / "charon.pid").unlink(missing_ok=True)
        finally:
            for h in held.values():
                h.close()
        return sorted(held)

    def namespaces(self) -> list[str]:
        """Namespaces with a charon that vpnd started and that still runs."""
        if not self.base.is_dir():
            return []
        return sorted(p.name for p in self.base.iterdir() if self.pid(p.name))


def _is_charon(pid: int, start: int | None) -> bool:
    """`pid` is the charon a pid file recorded: it runs CHARON, and (in a
    pid file with a start time) started when that one did."""
    return processes.runs(pid, CHARON, start)


def _child_running(pid: int) -> bool | None:
    """Our child `pid` runs (True) or has just been reaped (False); None:
    it is not our child (any more)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return done == 0
