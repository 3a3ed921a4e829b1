"""One listening VICI session per charon, on its own thread.

The python binding has no locking, so events get a session of their own.
The thread only forwards: each event goes, decoded, to a callback that must
be thread-safe (the daemon queues it and wakes its loop). Each time the
session is subscribed (first, and after reconnecting) a "subscribed"
event follows: what happened before it is only in a fresh read of the
live state, which the daemon then does. A charon that goes away is
reported as a "disconnected" event; the thread reconnects until it is
stopped.
"""
from __future__ import annotations

import socket
import threading

from vici.protocol import Message, Packet, Transport

from vpnd.drivers.vici_answers import decode

EVENTS = ["ike-updown", "child-updown", "ike-rekey", "child-rekey", "log"]


class EventWatcher(threading.Thread):
    def __init__(self, namespace: str, socket_path: str, callback, poll: float = 0.5):
        super().__init__(name=f"vici-events-{namespace}", daemon=True)
        self.namespace = namespace
        self.socket_path = socket_path
        self.callback = callback
        self.poll = poll
        self._stopping = threading.Event()
        self.subscribed = threading.Event()
        # Sends come from this thread (registrations) and from a look's
        # (muting the log): one at a time, so packets never interleave.
        self._send_lock = threading.Lock()
        self._transport: Transport | None = None
        self._log_muted = False

    def mute_log(self, muted: bool) -> None:
        """Stop (or restart) charon's log events on this session. A charon
        with a log listener formats and sends each of its log lines to it:
        a batch of thousands of loads took charon 60 % longer (measured
        with the bench's floor). SA events are not touched. What charon
        logs while muted is not seen; the look that muted it reads the
        namespace again after its batch."""
        with self._send_lock:
            if muted == self._log_muted:
                return
            self._log_muted = muted
            if self._transport is not None:
                packet = Packet.unregister_event if muted else Packet.register_event
                try:
                    self._transport.send(packet("log"))
                except OSError:
                    pass  # a lost charon: the next session registers as asked

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(5)
                sock.connect(self.socket_path)
                transport = Transport(sock)
                with self._send_lock:
                    self._register(transport)
                    self._transport = transport
                self.subscribed.set()
                self.callback(self.namespace, "subscribed", {})
                self._forward(transport)
            except Exception:  # the binding raises several kinds on a lost charon
                pass
            finally:
                with self._send_lock:
                    self._transport = None
                sock.close()
            if self.subscribed.is_set():
                self.subscribed.clear()
                self.callback(self.namespace, "disconnected", {})
            self._stopping.wait(1.0)

    def _forward(self, transport: Transport) -> None:
        while not self._stopping.is_set():
            try:
                # The timeout covers only the wait for a message's first
                # bytes: a message is never cut in half.
                packet = Packet.parse(transport.receive(self.poll))
            except socket.timeout:
                continue
            self._deliver(packet)

    def _register(self, transport: Transport) -> None:
        # All registrations at once, then their confirmations (charon
        # answers in order): one round trip instead of one per event.
        events = [e for e in EVENTS if not (e == "log" and self._log_muted)]
        for event in events:
            transport.send(Packet.register_event(event))
        for event in events:
            while True:
                answer = Packet.parse(transport.receive())
                if answer.response_type == Packet.EVENT_CONFIRM:
                    break
                if answer.response_type != Packet.EVENT:
                    raise ConnectionError(f"charon refused the {event} event")
                self._deliver(answer)  # of an event registered a moment ago

    def _deliver(self, packet) -> None:
        if packet.response_type == Packet.EVENT:
            self.callback(self.namespace, packet.event_type.decode(),
                          decode(Message.deserialize(packet.payload)))
