"""What every way of running one charon per namespace shares (spawned by
vpnd, or systemd units): the files under run_dir/charon/<namespace>/, the
strongswan.conf written there, starting without waiting, and readiness,
which is a VICI answer on a socket vpnd's own user made, never the mere
presence of a socket file (a stale one outlives its charon).

Each instance gets an explicit plugin list: without one, instances
silently take over each other's /run sockets (stroke, lookip,
error-notify).
"""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from vpnd.base.errors import CharonNotAnswering, DriverUnavailable
from vpnd.drivers import charon_plugins
from vpnd.drivers.charon_conf import strongswan_conf
from vpnd.drivers.vici_client import ViciClient
from vpnd.system import files, log
from vpnd.system.files import write_atomically

# sun_path is 108 bytes on Linux, with its terminating NUL. Neutron's
# namespaces are 44 characters (qrouter-<uuid>): with the default run_dir
# that is 66 bytes; a deep run_dir does not fit.
SOCKET_PATH_MAX = 107



class CharonInstances:
    """What every way of running one charon per namespace shares: where its
    files are, its strongswan.conf, and readiness (a VICI answer)."""

    def __init__(self, run_dir: str, libipsec: bool, start_timeout: float = 15.0):
        self.base = Path(run_dir) / "charon"
        self.libipsec = libipsec
        self.start_timeout = start_timeout
        self._starting: set[str] = set()  # launched, not yet seen answering
        self._log_offsets: dict[str, int] = {}  # charon.log's size at each launch

    def directory(self, namespace: str) -> Path:
        return self.base / namespace

    def socket_path(self, namespace: str) -> Path:
        return self.directory(namespace) / "charon.vici"

    def log_path(self, namespace: str) -> Path:
        return self.directory(namespace) / "charon.log"

    def answers(self, namespace: str) -> bool:
        # PSKs go over this socket: one that someone else made (bound
        # before charon could) is not talked to.
        try:
            st = os.lstat(self.socket_path(namespace))
        except OSError:
            return False
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid not in files.owners():
            return False
        client = ViciClient(str(self.socket_path(namespace)), timeout=2.0)
        try:
            client.version()
            return True
        except DriverUnavailable:
            return False
        finally:
            client.close()

    def configure(self, namespace: str, settings: dict) -> bool:
        """Rewrite strongswan.conf if `settings` changed; True if it did
        (a running charon then needs reload-settings)."""
        conf = self.directory(namespace) / "strongswan.conf"
        text = strongswan_conf(self.socket_path(namespace), self.log_path(namespace),
                               self.libipsec, settings)
        try:
            if files.read_own(str(conf)) == text.encode():
                return False
        except OSError:  # missing, or not plainly vpnd's: written anew
            pass
        self._make_directory(namespace)
        # Not fsync()ed: it is written again at every start that finds it
        # different, and an fsync each cost 2.8 ms of a 500-router start.
        write_atomically(str(conf), text.encode(), durable=False)
        return True

    def start(self, namespace: str) -> None:
        """Launch a charon unless one answers; do not wait for it. Many
        namespaces start together this way: each charon spends ~50 ms
        loading plugins, and one after another they added up (2.6 s for
        50). `ensure` then waits for each."""
        socket = os.fsencode(self.socket_path(namespace))
        if len(socket) > SOCKET_PATH_MAX:
            # charon would fail to bind it and say so only in its own log:
            # vpnd would wait, see no answer, and restart it for ever.
            raise DriverUnavailable(
                f"charon for namespace {namespace} not started: its VICI socket "
                f"{os.fsdecode(socket)} is {len(socket)} bytes, more than the "
                f"{SOCKET_PATH_MAX} a unix socket takes (a shorter run_dir fits it)")
        if namespace in self._starting or self.answers(namespace):
            return
        d = self._make_directory(namespace)
        if not (d / "strongswan.conf").exists():
            self.configure(namespace, {})
        # charon appends to its log by name, following links: what is
        # there that vpnd did not make is replaced by a file of its own.
        fd = files.open_append(str(self.log_path(namespace)), 0o644)
        try:
            self._log_offsets[namespace] = os.fstat(fd).st_size
        finally:
            os.close(fd)
        self._launch(namespace)
        self._starting.add(namespace)

    def _make_directory(self, namespace: str) -> Path:
        """The namespace's directory, made if missing; refused if it is a
        link or others may write it (run_dir itself is judged at start)."""
        d = self.directory(namespace)
        try:
            files.own_dir(str(self.base), 0o755)
            files.own_dir(str(d), 0o700)
        except files.NotOurs as e:
            raise DriverUnavailable(f"charon for namespace {namespace} not started: {e}") \
                from None
        return d

    def ensure(self, namespace: str) -> str:
        """The VICI socket of a charon that answers; starts one if needed."""
        if namespace in self._starting or not self.answers(namespace):
            self.start(namespace)
            try:
                self._wait_started(namespace)
            finally:
                self._starting.discard(namespace)
            log.get().info("charon started", netns=namespace)
        return str(self.socket_path(namespace))

    def _wait_ready(self, namespace: str, gone) -> None:
        """Until charon answers on VICI (not until the socket file exists:
        it may be stale); `gone()` says when waiting is pointless."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.answers(namespace):
                return
            reason = gone()
            if reason:
                raise DriverUnavailable(f"charon for namespace {namespace} {reason}"
                                        f"{self._plugins_failed(namespace)}")
            time.sleep(0.05)
        # Its process is there (gone() said nothing) but it does not answer.
        raise CharonNotAnswering(f"charon for namespace {namespace} did not answer "
                                 f"on VICI within {self.start_timeout:.0f}s"
                                 f"{self._plugins_failed(namespace)}")

    def _plugins_failed(self, namespace: str) -> str:
        """What charon's own log says about plugins since this launch."""
        try:
            fd = os.open(self.log_path(namespace), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC)
            with open(fd, errors="replace") as f:
                f.seek(self._log_offsets.get(namespace, 0))
                failed = charon_plugins.failed_in_log(f.read(1 << 20))
        except OSError:
            return ""
        return f": {charon_plugins.describe(failed)}" if failed else ""

    def _launch(self, namespace: str) -> None:
        raise NotImplementedError

    def _wait_started(self, namespace: str) -> None:
        raise NotImplementedError

    def stop(self, namespace: str, timeout: float = 10.0) -> bool:
        return bool(self.stop_all([namespace], timeout))

    def stop_all(self, namespaces, timeout: float = 10.0) -> list[str]:
        """Stop these charons together (each takes about a second to shut
        down); returns the namespaces where one ran."""
        raise NotImplementedError

    def namespaces(self) -> list[str]:
        raise NotImplementedError
