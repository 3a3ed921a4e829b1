"""The driver's reads: what a charon has loaded and established, and what
it can do (its plugins and algorithms, asked once per VICI session: a new
session may be a restarted charon with other plugins). Reads only: it
never starts a charon (the driver's live_state does that, see
strongswan.py).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from vpnd.base.live import LiveState
from vpnd.drivers import charon_plugins, kernel_esp
from vpnd.drivers.charon_algorithms import missing_algorithms
from vpnd.drivers.strongswan_clients import Clients


# A kernel that refused ESP is asked again, at a new charon session, after
# this long at the earliest: 500 charons starting make one probe, not 500.
RECHECK_REFUSED = 60.0


@dataclass(frozen=True)
class Capabilities:
    """What one charon (one VICI session to it) can do."""

    algorithms: dict[str, set[str]]
    # Plugins vpnd asked for that charon did not load, described for an
    # operator; "" when none are missing (or vpnd did not choose them).
    missing_plugins: str = ""


class Reader:
    def __init__(self, clients: Clients, libipsec: bool):
        self.clients = clients
        self.libipsec = libipsec
        # stats and get-algorithms per namespace and VICI session (_session).
        self._capabilities: dict[str, tuple[tuple, Capabilities]] = {}
        # (capabilities, IKE policy, ESP policy) -> (capabilities, why not)
        self._unsupported: dict = {}
        # namespace -> (VICI session, the kernel's problem it was last told)
        self._kernel: dict[str, tuple[tuple, str | None]] = {}
        # (ESP pairs, families) -> (the host kernel's problem, when asked)
        self._host_kernel: dict[tuple, tuple[str | None, float]] = {}

    def live_state(self, namespace: str) -> LiveState:
        return self.clients.of(namespace).live_state()

    def sas_of(self, namespace: str, names) -> tuple:
        return self.clients.of(namespace).sas_of(names)

    def charon_problem(self, namespace: str) -> str | None:
        return self._capabilities_of(namespace).missing_plugins or None

    def kernel_problem(self, namespace: str, conns=None) -> str | None:
        """What the kernel lacks for this charon's CHILD_SAs: ESP for the
        algorithms of `conns`, or with libipsec the TUN device
        (kernel_esp.problems). The kernel is the host's, so one answer
        serves every namespace that asks the same; a refusal is asked again
        when a charon's session begins (it may follow `modprobe esp4` and a
        restart), at most every RECHECK_REFUSED seconds however many
        charons start. Without `conns` (a scoped look, which must not walk
        the namespace) the answer this namespace last had: a session made
        again (a timeout, a restarted charon) changes nothing in the
        host's kernel, and saying nothing would clear a known problem."""
        if self.clients.spawner is None or os.geteuid() != 0:
            # An external charon's data plane is its owner's choice; and
            # only root can make the namespace the probe runs in.
            return None
        session = _session(self.clients.of(namespace))
        mine = self._kernel.get(namespace)
        if conns is None:
            return mine[1] if mine is not None else None
        pairs, families = (set(), set()) if self.libipsec else kernel_esp.conns_need(conns)
        key = (frozenset(pairs), frozenset(families))
        known = self._host_kernel.get(key)
        new_session = mine is None or mine[0] != session
        if known is None or (known[0] and new_session
                             and time.monotonic() - known[1] > RECHECK_REFUSED):
            problem = "; ".join(kernel_esp.problems(self.libipsec, pairs, families)) or None
            known = self._host_kernel[key] = (problem, time.monotonic())
        self._kernel[namespace] = (session, known[0])
        return known[0]

    def unsupported(self, namespace: str, conn) -> str | None:
        capabilities = self._capabilities_of(namespace)
        # Policies are shared objects, and few: the answer is worked out
        # once per policy pair and charon, not once per connection.
        # By identity (hashing a policy costs more than the check); the
        # value holds the objects, so an id is never another object's.
        key = (id(capabilities), id(conn.ikepolicy), id(conn.ipsecpolicy))
        if key not in self._unsupported:
            if len(self._unsupported) > 4096:
                self._unsupported.clear()
            self._unsupported[key] = (capabilities, conn.ikepolicy, conn.ipsecpolicy,
                                      missing_algorithms(conn, capabilities.algorithms))
        reason = self._unsupported[key][-1]
        if reason and capabilities.missing_plugins:
            # The cause, not only the symptom.
            return f"{reason}; {capabilities.missing_plugins}"
        return reason

    def _capabilities_of(self, namespace: str) -> Capabilities:
        client = self.clients.of(namespace)
        cached = self._capabilities.get(namespace)
        if cached is None or cached[0] != _session(client):
            loaded = client.plugins()
            found = Capabilities(client.algorithms(), self._missing_plugins(loaded))
            cached = self._capabilities[namespace] = (_session(client), found)
        return cached[1]

    def _missing_plugins(self, loaded) -> str:
        if self.clients.spawner is None:
            # An external charon's plugins are its owner's choice; what it
            # cannot negotiate still shows per connection.
            return ""
        gone = charon_plugins.missing(charon_plugins.load_list(self.libipsec), loaded)
        if not gone:
            return ""
        on_disk = {p.name for p in gone if os.path.exists(
            f"{charon_plugins.PLUGIN_DIR}/libstrongswan-{p.name}.so")}
        return charon_plugins.describe(gone, on_disk)


def _session(client) -> tuple:
    """One VICI session to one charon. A restarted charon gets a new client
    (Clients.forget), whose session count starts again: the client itself
    (compared by identity, and held, so its id is never another's) is part
    of what names the session."""
    return (client, client.sessions)
