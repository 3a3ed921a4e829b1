"""The driver's charon lifecycle: starting the namespace's charon (when
vpnd runs charons), waiting until it answers, its settings, and killing
one that stopped answering. With no spawner (external charons) it only
checks that charon answers.
"""
from __future__ import annotations

from vpnd.drivers.charon_conf import charon_settings
from vpnd.drivers.charon_instances import CharonInstances
from vpnd.drivers.strongswan_clients import Clients
from vpnd.drivers.strongswan_events import Events


class Lifecycle:
    def __init__(self, spawner: CharonInstances | None, clients: Clients, events: Events):
        self.spawner = spawner
        self.clients = clients
        self.events = events

    def configure(self, namespace: str, conns) -> None:
        if self.spawner is None:
            return  # external charons keep their own settings
        if self.spawner.configure(namespace, charon_settings(conns)) \
                and self.spawner.answers(namespace):
            self.clients.of(namespace).reload_settings()

    def start(self, namespace: str) -> None:
        if self.spawner is not None:
            self.spawner.start(namespace)

    def ensure_running(self, namespace: str) -> None:
        if self.spawner is not None:
            self.spawner.ensure(namespace)
        else:
            self.clients.of(namespace).version()

    def restart(self, namespace: str) -> bool:
        """Kill a charon vpnd runs (it stopped answering) so that the next
        look starts a fresh one; False when vpnd runs none."""
        if self.spawner is None:
            return False
        self.clients.forget(namespace)
        self.events.stop(namespace)
        self.spawner.stop_all([namespace], timeout=2.0)  # SIGKILL if it must
        return True
