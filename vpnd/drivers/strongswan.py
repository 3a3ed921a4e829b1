"""The strongSwan driver: charon over VICI, one instance per namespace.

The Driver interface (base.py) that the loop and apply call, put together
from four parts, as controller-runtime's client is a Reader plus a Writer:
reads (strongswan_reader), writes (strongswan_writer), events
(strongswan_events) and the charon lifecycle (charon_lifecycle), over one
VICI client per namespace (strongswan_clients).
"""
from __future__ import annotations

from collections.abc import Iterator

from vpnd.base.errors import CharonNotAnswering, DriverUnavailable
from vpnd.base.live import LiveState
from vpnd.plan.actions import Action
from vpnd.drivers.base import Driver
from vpnd.drivers.charon_instances import CharonInstances
from vpnd.drivers.charon_lifecycle import Lifecycle
from vpnd.drivers.strongswan_clients import Clients
from vpnd.drivers.strongswan_events import Events
from vpnd.drivers.strongswan_mapping import render
from vpnd.drivers.strongswan_reader import Reader
from vpnd.drivers.strongswan_writer import Writer


class StrongswanDriver(Driver):
    def __init__(self, spawner: CharonInstances | None, libipsec: bool,
                 sockets: dict[str, str] | None = None, timeout: float = 10.0):
        """`spawner` runs the charons (None: someone else does, and
        `sockets` says where each namespace's answers); see compose.py."""
        self.spawner = spawner
        self.libipsec = libipsec
        self.sockets = dict(sockets or {})
        self.timeout = timeout
        self.clients = Clients(spawner, self.sockets, timeout)
        self.reader = Reader(self.clients, libipsec)
        self.writer = Writer(self.clients)
        self.events = Events(self.clients)
        self.lifecycle = Lifecycle(spawner, self.clients, self.events)

    def render(self, conn):
        return render(conn, self.libipsec)

    # --- reads -----------------------------------------------------------

    def charon_problem(self, namespace: str) -> str | None:
        return self.reader.charon_problem(namespace)

    def unsupported(self, namespace: str, conn) -> str | None:
        return self.reader.unsupported(namespace, conn)

    def kernel_problem(self, namespace: str, conns=None) -> str | None:
        return self.reader.kernel_problem(namespace, conns)

    def live_state(self, namespace: str, start: bool = True) -> LiveState:
        # Ask first: a charon that answers needs no readiness check, and a
        # pass that costs one round trip less lands a change sooner. Only
        # with `start` (the interface's default) is a charon started.
        try:
            return self.reader.live_state(namespace)
        except CharonNotAnswering:
            # It runs but missed the deadline: waiting for it to start
            # would only add start_timeout before it can be restarted.
            raise
        except DriverUnavailable:
            if not start:
                raise
        self.lifecycle.ensure_running(namespace)
        return self.reader.live_state(namespace)

    def sas_of(self, namespace: str, names) -> tuple:
        return self.reader.sas_of(namespace, names)

    # --- writes ----------------------------------------------------------

    def apply_many(self, namespace: str, steps) -> Iterator[str | None]:
        return self.writer.apply_many(namespace, steps)

    def execute(self, namespace: str, action: Action) -> None:
        self.writer.execute(namespace, action)

    def writes(self) -> int:
        return self.clients.writes()

    # --- events ----------------------------------------------------------

    def watch(self, namespace: str, callback, wait: float = 0.0) -> None:
        self.events.watch(namespace, callback, wait)

    def mute_log(self, namespace: str, muted: bool) -> None:
        self.events.mute_log(namespace, muted)

    def watching(self, namespaces) -> bool:
        return self.events.watching(namespaces)

    # --- charon lifecycle ------------------------------------------------

    def configure(self, namespace: str, conns) -> None:
        self.lifecycle.configure(namespace, conns)

    def start(self, namespace: str) -> None:
        self.lifecycle.start(namespace)

    def ensure_running(self, namespace: str) -> None:
        self.lifecycle.ensure_running(namespace)

    def restart(self, namespace: str) -> bool:
        return self.lifecycle.restart(namespace)

    def forget(self, namespace: str) -> None:
        self.clients.forget(namespace)

    def close(self) -> None:
        self.clients.close()
        self.events.close()
