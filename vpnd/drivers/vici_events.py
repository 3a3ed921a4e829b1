"""One listening VICI session per charon, on its own thread.

The python binding has no locking, so events get a session of their own.
The thread only forwards: each event goes, decoded, to a callback that must
be thread-safe (the daemon queues it and wakes its loop). A charon that
goes away is reported as a "disconnected" event; the thread reconnects
until it is stopped.
"""
from __future__ import annotations

import socket
import threading

import vici

from .vici_client import decode

EVENTS = ["ike-updown", "child-updown", "ike-rekey", "child-rekey", "log"]


class EventWatcher(threading.Thread):
    def __init__(self, namespace: str, socket_path: str, callback, poll: float = 0.5):
        super().__init__(name=f"vici-events-{namespace}", daemon=True)
        self.namespace = namespace
        self.socket_path = socket_path
        self.callback = callback
        self.poll = poll
        self._stopping = threading.Event()
        self.connected = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(5)
                sock.connect(self.socket_path)
                session = vici.Session(sock)
                for label, event in session.listen(EVENTS, timeout=self.poll):
                    if not self.connected.is_set():
                        self.connected.set()
                    if self._stopping.is_set():
                        break
                    if label is not None:
                        self.callback(self.namespace, label.decode(), decode(event))
            except Exception:  # the binding raises several kinds on a lost charon
                pass
            finally:
                sock.close()
            if self.connected.is_set():
                self.connected.clear()
                self.callback(self.namespace, "disconnected", {})
            self._stopping.wait(1.0)
