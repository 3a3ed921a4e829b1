"""The driver's event part: one EventWatcher thread per namespace
(vici_events), started on demand, restarted when it died, and stopped
when its charon is restarted or the driver closes.
"""
from __future__ import annotations

from vpnd.drivers.strongswan_clients import Clients
from vpnd.drivers.vici_events import EventWatcher


class Events:
    def __init__(self, clients: Clients):
        self.clients = clients  # for the sockets
        self._watchers: dict[str, EventWatcher] = {}

    def watch(self, namespace: str, callback, wait: float = 0.0) -> None:
        watcher = self._watchers.get(namespace)
        if watcher is None or not watcher.is_alive():
            watcher = EventWatcher(namespace, self.clients.socket(namespace), callback)
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

    def stop(self, namespace: str) -> None:
        watcher = self._watchers.pop(namespace, None)
        if watcher is not None:
            watcher.stop()

    def close(self) -> None:
        for watcher in self._watchers.values():
            watcher.stop()
        for watcher in self._watchers.values():
            watcher.join(timeout=2)
        self._watchers.clear()
