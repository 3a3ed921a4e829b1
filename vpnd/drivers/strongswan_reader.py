"""The driver's reads: what a charon has loaded and established, and what
it can do (its plugins and algorithms, asked once per VICI session: a new
session may be a restarted charon with other plugins). Reads only: it
never starts a charon (the driver's live_state does that, see
strongswan.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from vpnd.base.live import LiveState
from vpnd.drivers import charon_plugins, kernel_esp
from vpnd.drivers.charon_algorithms import missing_algorithms
from vpnd.drivers.strongswan_clients import Clients


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
        # stats and get-algorithms per namespace and VICI session.
        self._capabilities: dict[str, tuple[int, Capabilities]] = {}
        # (capabilities, IKE policy, ESP policy) -> (capabilities, why not)
        self._unsupported: dict = {}
        # namespace -> ((VICI session, what was asked), the kernel's problem)
        self._kernel: dict[str, tuple[tuple, str | None]] = {}

    def live_state(self, namespace: str) -> LiveState:
        return self.clients.of(namespace).live_state()

    def sas_of(self, namespace: str, names) -> tuple:
        return self.clients.of(namespace).sas_of(names)

    def charon_problem(self, namespace: str) -> str | None:
        return self._capabilities_of(namespace).missing_plugins or None

    def kernel_problem(self, namespace: str, conns=None) -> str | None:
        """What the kernel lacks for this charon's CHILD_SAs: ESP for the
        algorithms of `conns` (kernel_esp.probe), or with libipsec the TUN
        device. Asked once per VICI session and set of algorithms: a new
        session may follow `modprobe esp4` and a restart. Without `conns`
        (a scoped look, which must not walk the namespace) the answer this
        session last had."""
        if self.clients.spawner is None or os.geteuid() != 0:
            # An external charon's data plane is its owner's choice; and
            # only root can make the namespace the probe runs in.
            return None
        session = _session(self.clients.of(namespace))
        cached = self._kernel.get(namespace)
        if conns is None:
            return cached[1] if cached is not None and cached[0][0] == session else None
        if self.libipsec:
            asked = (session, "tun")
        else:
            pairs, families = kernel_esp.conns_need(conns)
            asked = (session, frozenset(pairs), frozenset(families))
        if cached is None or cached[0] != asked:
            if self.libipsec:
                problem = kernel_esp.tun_problem()
            else:
                problem = "; ".join(kernel_esp.probe(pairs, families)) or None
            cached = self._kernel[namespace] = (asked, problem)
        return cached[1]

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
