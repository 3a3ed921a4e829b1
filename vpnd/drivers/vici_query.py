"""Read-only requests asked in one write: one round trip, where the
binding makes three for each streamed command (register, request,
unregister). live_state and sas_of stand on it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import vici.exception
from vici.protocol import Message, Packet

from vpnd.base.errors import DriverError
from vpnd.drivers.vici_session import ViciSession
from vpnd.drivers.vici_socket import Frames, framed

# (command, message or None, the event it streams or None)
Request = tuple[str, dict | None, str | None]

# An answer at least this long that comes in the same bytes as one before
# is that answer again, not parsed anew: a resync reads get-conns and
# get-shared of every connection, 210 kB at 10,000 that are most often
# what they were, and the binding took 9 ms to parse them. The latest
# such answers are kept while their bytes add up to SAME_ANSWERS_BYTES;
# a parsed answer holds about six times its bytes (1.2 MB at 10,000).
SAME_ANSWER_MIN = 4096
SAME_ANSWERS_BYTES = 512 * 1024


class SameAnswers:
    """Big answers by their bytes. An answer given out here may be given
    again: it is read, never changed."""

    def __init__(self, least: int = SAME_ANSWER_MIN, most: int = SAME_ANSWERS_BYTES):
        self.least, self.most = least, most
        self._held: OrderedDict[bytes, dict] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # looks at namespaces run in threads

    def answer(self, frame: bytes, payload) -> dict:
        """The answer in `frame` (a CMD_RESPONSE), whose `payload` the
        binding would parse."""
        if not self.least <= len(frame) <= self.most:
            return Message.deserialize(payload)
        with self._lock:
            answer = self._held.get(frame)
            if answer is not None:
                self._held.move_to_end(frame)
                return answer
        answer = Message.deserialize(payload)
        with self._lock:
            if frame not in self._held:
                self._held[frame] = answer
                self._bytes += len(frame)
            while self._bytes > self.most:
                self._bytes -= len(self._held.popitem(last=False)[0])
        return answer


_same = SameAnswers()


def query(session: ViciSession, what: str, requests: list[Request]
          ) -> list[tuple[dict, list[dict]]]:
    """The requests sent in one write, with the registrations for their
    streams before them and the unregistrations after. charon works them in
    order, so a streamed event belongs to the request whose answer follows
    it. Returns (answer, streamed events) per request; a failed answer is
    a DriverError, anything else as `session.bounded` maps it."""
    streams = sorted({event for _, _, event in requests if event})
    packets = [Packet.register_event(e) for e in streams]
    packets += [Packet.request(c, None if m is None else Message.serialize(m))
                for c, m, _ in requests]
    packets += [Packet.unregister_event(e) for e in streams]
    with session.bounded(what):
        frames = Frames(session.sock)
        session.sock.sendall(framed(packets))
        for _ in streams:
            _confirmed(Packet.parse(frames.next()), what)
        answers = [_answer_with_events(frames, command) for command, _, _ in requests]
        for _ in streams:
            _confirmed(Packet.parse(frames.next()), what)
        if frames.left():
            session.close()  # more than was asked for: the session is out of step
    for (command, _, _), (answer, _) in zip(requests, answers):
        if answer.get("success", b"yes") != b"yes":
            error = answer.get("errmsg", b"failed").decode("utf-8", "replace")
            raise DriverError(f"{what}: {command}: {error}")
    return answers


def _answer_with_events(frames: Frames, command: str) -> tuple[dict, list[dict]]:
    """The events streamed before a command's answer, and the answer."""
    events = []
    while (packet := Packet.parse(frame := frames.next())).response_type == Packet.EVENT:
        events.append(Message.deserialize(packet.payload))
    if packet.response_type != Packet.CMD_RESPONSE:
        raise vici.exception.SessionException(f"unexpected answer to {command}")
    return _same.answer(frame, packet.payload), events


def _confirmed(packet, what: str) -> None:
    if packet.response_type != Packet.EVENT_CONFIRM:
        raise vici.exception.SessionException(f"{what}: charon refused an event registration")
