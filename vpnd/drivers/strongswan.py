"""The strongSwan driver: charon over VICI, one instance per namespace."""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from vpnd.base.errors import CharonNotAnswering, DriverUnavailable
from vpnd.base.live import LiveState
from vpnd.plan.actions import (Action, Initiate, LoadConn, LoadShared, TerminateDuplicate,
    TerminateIke, UnloadConn, UnloadShared)
from vpnd.drivers import charon_plugins
from vpnd.drivers.base import Driver
from vpnd.drivers.charon_instances import CharonInstances
from vpnd.drivers.charon_algorithms import missing_algorithms
from vpnd.drivers.charon_conf import charon_settings
from vpnd.drivers.strongswan_mapping import (not_started, render,
    with_initial_contact)
from vpnd.drivers.vici_client import ViciClient
from vpnd.drivers.vici_requests import initiate_request, terminate_request
from vpnd.drivers.vici_events import EventWatcher


@dataclass(frozen=True)
class Capabilities:
    """What one charon (one VICI session to it) can do."""

    algorithms: dict[str, set[str]]
    # Plugins vpnd asked for that charon did not load, described for an
    # operator; "" when none are missing (or vpnd did not choose them).
    missing_plugins: str = ""


class StrongswanDriver(Driver):
    def __init__(self, spawner: CharonInstances | None, libipsec: bool,
                 sockets: dict[str, str] | None = None, timeout: float = 10.0):
        """`spawner` runs the charons (None: someone else does, and
        `sockets` says where each namespace's answers); see compose.py."""
        self.spawner = spawner
        self.libipsec = libipsec
        self.sockets = dict(sockets or {})
        self.timeout = timeout
        self._clients: dict[str, ViciClient] = {}
        self._watchers: dict[str, EventWatcher] = {}
        # stats and get-algorithms per namespace and VICI session: a new
        # session may be a restarted charon with other plugins.
        self._capabilities: dict[str, tuple[int, Capabilities]] = {}
        self._closed_writes = 0
        # (capabilities, IKE policy, ESP policy) -> (capabilities, why not)
        self._unsupported: dict = {}

    def render(self, conn):
        return render(conn, self.libipsec)

    def _socket(self, namespace: str) -> str:
        if self.spawner is not None:
            return str(self.spawner.socket_path(namespace))
        if namespace not in self.sockets:
            raise DriverUnavailable(f"no VICI socket configured for namespace "
                                    f"{namespace} (charon.sockets)")
        return self.sockets[namespace]

    def _client(self, namespace: str) -> ViciClient:
        client = self._clients.get(namespace)
        if client is None:
            client = ViciClient(self._socket(namespace), self.timeout)
            self._clients[namespace] = client
        return client

    def _capabilities_of(self, namespace: str) -> Capabilities:
        client = self._client(namespace)
        cached = self._capabilities.get(namespace)
        if cached is None or cached[0] != client.sessions:
            loaded = client.plugins()
            found = Capabilities(client.algorithms(), self._missing_plugins(loaded))
            cached = self._capabilities[namespace] = (client.sessions, found)
        return cached[1]

    def _missing_plugins(self, loaded) -> str:
        if self.spawner is None:
            # An external charon's plugins are its owner's choice; what it
            # cannot negotiate still shows per connection.
            return ""
        gone = charon_plugins.missing(charon_plugins.load_list(self.libipsec), loaded)
        if not gone:
            return ""
        on_disk = {p.name for p in gone if os.path.exists(
            f"{charon_plugins.PLUGIN_DIR}/libstrongswan-{p.name}.so")}
        return charon_plugins.describe(gone, on_disk)

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

    def configure(self, namespace: str, conns) -> None:
        if self.spawner is None:
            return  # external charons keep their own settings
        if self.spawner.configure(namespace, charon_settings(conns)) \
                and self.spawner.answers(namespace):
            self._client(namespace).reload_settings()

    def start(self, namespace: str) -> None:
        if self.spawner is not None:
            self.spawner.start(namespace)

    def ensure_running(self, namespace: str) -> None:
        if self.spawner is not None:
            self.spawner.ensure(namespace)
        else:
            self._client(namespace).version()

    def live_state(self, namespace: str, start: bool = True) -> LiveState:
        # Ask first: a charon that answers needs no readiness check, and a
        # pass that costs one round trip less lands a change sooner.
        try:
            return self._client(namespace).live_state()
        except CharonNotAnswering:
            # It runs but missed the deadline: waiting for it to start
            # would only add start_timeout before it can be restarted.
            raise
        except DriverUnavailable:
            if not start:
                raise
        self.ensure_running(namespace)
        return self._client(namespace).live_state()

    def sas_of(self, namespace: str, names) -> tuple:
        return self._client(namespace).sas_of(names)

    def apply_many(self, namespace: str, steps) -> Iterator[str | None]:
        """Many steps' actions pipelined on one session, in order: charon
        works them one after another, so each connection's unload still
        comes before its load. One error text (the step's first, or None)
        per step, as its last answer arrives."""
        requests, ends = [], []
        for step in steps:
            for action in step.actions:
                requests += _requests(action)
            ends.append(len(requests))
        answers = self._client(namespace).pipeline(requests)
        done = 0
        for end in ends:
            error = None
            for answer in itertools.islice(answers, end - done):
                error = error or answer
            done = end
            yield error

    def execute(self, namespace: str, action: Action) -> None:
        client = self._client(namespace)
        match action:
            case LoadShared():
                client.load_shared(action.body())
            case LoadConn():
                client.load_conn(_conn_message(action))
            case UnloadConn():
                client.unload_conn(action.name)
            case TerminateIke():
                client.terminate_ike(action.name)
            case UnloadShared():
                client.unload_shared(action.secret_id)
            case TerminateDuplicate(kind="ike"):
                client.terminate_ike_id(action.uniqueid)
            case TerminateDuplicate(kind="child"):
                client.terminate_child_id(action.uniqueid)
            case Initiate():
                for child in action.children:
                    client.initiate(action.name, child)
            case _:
                raise TypeError(f"unknown action {action!r}")

    def watch(self, namespace: str, callback, wait: float = 0.0) -> None:
        watcher = self._watchers.get(namespace)
        if watcher is None or not watcher.is_alive():
            watcher = EventWatcher(namespace, self._socket(namespace), callback)
            self._watchers[namespace] = watcher
            watcher.start()
        if wait:
            watcher.subscribed.wait(wait)

    def mute_log(self, namespace: str, muted: bool) -> None:
        watcher = self._watchers.get(namespace)
        if watcher is not None:
            watcher.mute_log(muted)

    def watching(self, namespaces) -> bool:
        watchers = dict(self._watchers)  # a snapshot: looks run in other threads
        return all(ns in watchers and watchers[ns].is_alive() for ns in namespaces)

    def writes(self) -> int:
        return self._closed_writes + sum(c.writes for c in list(self._clients.values()))

    def restart(self, namespace: str) -> bool:
        """Kill a charon vpnd runs (it stopped answering) so that the next
        look starts a fresh one; False when vpnd runs none."""
        if self.spawner is None:
            return False
        self.forget(namespace)
        watcher = self._watchers.pop(namespace, None)
        if watcher is not None:
            watcher.stop()
        self.spawner.stop_all([namespace], timeout=2.0)  # SIGKILL if it must
        return True

    def forget(self, namespace: str) -> None:
        client = self._clients.pop(namespace, None)
        if client is not None:
            self._closed_writes += client.writes
            client.close()

    def close(self) -> None:
        for namespace in list(self._clients):
            self.forget(namespace)
        for watcher in self._watchers.values():
            watcher.stop()
        for watcher in self._watchers.values():
            watcher.join(timeout=2)
        self._watchers.clear()


def _requests(action: Action) -> list[tuple[str, object]]:
    """The VICI requests an action is, as ViciClient's one-call methods
    send them (a load's message rendered only as it is sent)."""
    match action:
        case LoadShared():
            return [("load-shared", action.body)]
        case LoadConn():
            return [("load-conn", partial(_conn_message, action))]
        case UnloadConn():
            return [("unload-conn", {"name": action.name})]
        case TerminateIke():
            return [("terminate", terminate_request({"ike": action.name}))]
        case UnloadShared():
            return [("unload-shared", {"id": action.secret_id})]
        case TerminateDuplicate():
            return [("terminate", terminate_request({f"{action.kind}-id": action.uniqueid}))]
        case Initiate():
            return [("initiate", initiate_request(action.name, c)) for c in action.children]
    raise TypeError(f"not a VICI action: {action!r}")


def _conn_message(action: LoadConn) -> dict:
    message = action.body()
    message = with_initial_contact(message) if action.initial_contact else message
    return message if action.start else not_started(message)
