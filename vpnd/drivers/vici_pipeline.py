"""Many write requests sent ahead of their answers, on one session.

charon works the requests of one VICI connection one after another, in
order, so N requests cost one round trip's latency instead of N and keep
their order (an unload before its load): this is what lets a cold start of
1000 connections beat swanctl, and a burst of changes land at charon's own
pace.
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator

from vici.protocol import Packet

from vpnd.drivers.vici_requests import answer_error, encoded
from vpnd.drivers.vici_session import ViciSession
from vpnd.drivers.vici_socket import Frames, framed

# Requests a pipeline keeps in flight at most (topped up when half are
# answered).
PIPELINE_WINDOW = 512


def pipeline(session: ViciSession, requests: list[tuple[str, object]]
             ) -> Iterator[str | None]:
    """Up to PIPELINE_WINDOW requests are in flight, sent many to a write;
    answers are read many to a read. Yields, as each answer arrives, None
    for a success (or an aim already met, ALREADY_DONE), else charon's
    error text (never a request's content: a load-shared holds a PSK); the
    caller's work on one answer overlaps charon's on the next ones. A
    message that cannot be encoded is that request's error alone: it is
    never sent, and the others go on. The session carries nothing else
    until every answer is read; a caller that stops early loses the
    session (closed, reconnected on next use). Failures are mapped as
    `session.bounded` maps them.
    """
    todo = iter(requests)
    # What was sent, in order: a command awaiting charon's answer, or
    # (a command, an error) for a request that was never sent.
    in_flight: deque = deque()
    with session.bounded("pipelined requests"):
        session.writes += len(requests)
        frames = Frames(session.sock)
        try:
            yield from _answers(session, frames, todo, in_flight)
        except GeneratorExit:
            if any(not isinstance(c, tuple) for c in in_flight):
                session.close()  # answers still in flight would desynchronise it
            raise
        if frames.left():
            session.close()  # more than was asked for: the session is out of step


def _answers(session: ViciSession, frames: Frames, todo, in_flight: deque
             ) -> Iterator[str | None]:
    more = True
    while True:
        if more and len(in_flight) <= PIPELINE_WINDOW // 2:
            more = _send_some(session, todo, PIPELINE_WINDOW - len(in_flight), in_flight)
        if not in_flight:
            return
        head = in_flight.popleft()
        if isinstance(head, tuple):  # never sent
            yield f"{head[0]}: {head[1]}"
            continue
        # Each answer within the timeout of the one before: a batch of
        # thousands may take longer than one call, a stopped charon does
        # not get longer than one.
        session.arm()
        yield answer_error(head, Packet.parse(frames.next()))


def _send_some(session: ViciSession, todo, count: int, in_flight: deque) -> bool:
    """Send up to `count` more requests in one write; False once none are left."""
    packets, taken = [], 0
    for command, message in itertools.islice(todo, count):
        taken += 1
        packet, error = encoded(command, message)
        if error:
            in_flight.append((command, error))
            continue
        packets.append(packet)
        in_flight.append(command)
    if packets:
        session.arm()
        session.sock.sendall(framed(packets))
    return taken == count
