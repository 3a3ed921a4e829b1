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
from vpnd.drivers import charon_plugins
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

    def live_state(self, namespace: str) -> LiveState:
        return self.clients.of(namespace).live_state()

    def sas_of(self, namespace: str, names) -> tuple:
        return self.clients.of(namespace).sas_of(names)

    def charon_problem(self, namespace: str) -> str | None:
        return self._capabilities_of(namespace).missing_plugins or None

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
        if cached is None or cached[0] != client.sessions:
            loaded = client.plugins()
            found = Capabilities(client.algorithms(), self._missing_plugins(loaded))
            cached = self._capabilities[namespace] = (client.sessions, found)
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
