"""The VICI client of each namespace's charon, made on first use: where
its socket is (the spawner's, or charon.sockets for charons vpnd does not
run), and how many writes all of them, forgotten ones too, have sent.
Shared by the driver's reader, writer and lifecycle parts.
"""
from __future__ import annotations

from vpnd.base.errors import DriverUnavailable
from vpnd.drivers.charon_instances import CharonInstances
from vpnd.drivers.vici_client import ViciClient


class Clients:
    def __init__(self, spawner: CharonInstances | None, sockets: dict[str, str],
                 timeout: float):
        self.spawner = spawner
        self.sockets = sockets
        self.timeout = timeout
        self._clients: dict[str, ViciClient] = {}
        self._closed_writes = 0

    def socket(self, namespace: str) -> str:
        if self.spawner is not None:
            return str(self.spawner.socket_path(namespace))
        if namespace not in self.sockets:
            raise DriverUnavailable(f"no VICI socket configured for namespace "
                                    f"{namespace} (charon.sockets)")
        return self.sockets[namespace]

    def of(self, namespace: str) -> ViciClient:
        client = self._clients.get(namespace)
        if client is None:
            client = ViciClient(self.socket(namespace), self.timeout)
            self._clients[namespace] = client
        return client

    def writes(self) -> int:
        return self._closed_writes + sum(c.writes for c in list(self._clients.values()))

    def forget(self, namespace: str) -> None:
        client = self._clients.pop(namespace, None)
        if client is not None:
            self._closed_writes += client.writes
            client.close()

    def close(self) -> None:
        for namespace in list(self._clients):
            self.forget(namespace)
