"""Read-only requests asked in one write: one round trip, where the
binding makes three for each streamed command (register, request,
unregister). live_state and sas_of stand on it; SameNames spares a
resync parsing answers it has seen.
"""
from __future__ import annotations

import hashlib

import vici.exception
from vici.protocol import Message, Packet

from vpnd.base.errors import DriverError
from vpnd.drivers.vici_answers import decode
from vpnd.drivers.vici_session import ViciSession
from vpnd.drivers.vici_socket import Frames, framed

# (command, message or None, the event it streams or None)
Request = tuple[str, dict | None, str | None]


class SameNames:
    """The names a session's last get-conns and get-shared answers listed,
    by a digest of the answer's bytes. A resync reads both answers for
    every connection, 210 kB at 10,000 and most often what they were:
    the same bytes again are the same names, not parsed (the binding took
    9 ms) or decoded (4 ms) again. Only the digest and the names are held,
    not the parsed answer (1.4 MB at 10,000), and each session holds its
    own: one charon's answers never push out another's."""

    KEYS = {"get-conns": "conns", "get-shared": "keys"}

    def __init__(self):
        self._last: dict[str, tuple[bytes, frozenset[str]]] = {}

    def answer(self, command: str, frame: bytes, payload) -> dict | frozenset[str]:
        """The names of a get-conns or get-shared answer, `frame` as it
        came and `payload` as the binding would parse it; any other answer
        parsed, as is a failed one (query raises on it)."""
        key = self.KEYS.get(command)
        if key is None:
            return Message.deserialize(payload)
        digest = hashlib.blake2b(frame, digest_size=16).digest()
        last = self._last.get(command)
        if last is not None and last[0] == digest:
            return last[1]
        answer = Message.deserialize(payload)
        if answer.get("success", b"yes") != b"yes":
            return answer
        names = frozenset(decode(answer.get(key, [])))
        self._last[command] = (digest, names)
        return names


def query(session: ViciSession, what: str, requests: list[Request],
          names: SameNames | None = None) -> list[tuple[dict | frozenset[str], list[dict]]]:
    """The requests sent in one write, with the registrations for their
    streams before them and the unregistrations after. charon works them in
    order, so a streamed event belongs to the request whose answer follows
    it. Returns (answer, streamed events) per request; a failed answer is
    a DriverError, anything else as `session.bounded` maps it. With
    `names`, a get-conns or get-shared answer is its names (SameNames)."""
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
        answers = [_answer_with_events(frames, command, names) for command, _, _ in requests]
        for _ in streams:
            _confirmed(Packet.parse(frames.next()), what)
        if frames.left():
            session.close()  # more than was asked for: the session is out of step
    for (command, _, _), (answer, _) in zip(requests, answers):
        if isinstance(answer, dict) and answer.get("success", b"yes") != b"yes":
            error = answer.get("errmsg", b"failed").decode("utf-8", "replace")
            raise DriverError(f"{what}: {command}: {error}")
    return answers


def _answer_with_events(frames: Frames, command: str, names: SameNames | None
                        ) -> tuple[dict | frozenset[str], list[dict]]:
    """The events streamed before a command's answer, and the answer."""
    events = []
    while (packet := Packet.parse(frame := frames.next())).response_type == Packet.EVENT:
        events.append(Message.deserialize(packet.payload))
    if packet.response_type != Packet.CMD_RESPONSE:
        raise vici.exception.SessionException(f"unexpected answer to {command}")
    answer = Message.deserialize(packet.payload) if names is None else \
        names.answer(command, frame, packet.payload)
    return answer, events


def _confirmed(packet, what: str) -> None:
    if packet.response_type != Packet.EVENT_CONFIRM:
        raise vici.exception.SessionException(f"{what}: charon refused an event registration")
