"""A get-conns or get-shared answer in the same bytes as the session's
last one is the same names, not parsed or decoded again
(vici_query.SameNames); any other bytes are. Also through a ViciClient
against a server whose answers change."""
from __future__ import annotations

import socket
import threading

from vici.protocol import Message, Packet, Transport

from vpnd.drivers.vici_client import ViciClient
from vpnd.drivers import vici_query
from vpnd.drivers.vici_query import SameNames


def frame(answer: dict) -> bytes:
    return bytes([Packet.CMD_RESPONSE]) + Message.serialize(answer)


def answered(names: SameNames, command: str, data: bytes):
    return names.answer(command, data, Packet.parse(data).payload)


def names(n: int, tag: str = "") -> list[str]:
    return [f"conn-{i:05d}{tag}" for i in range(n)]


def test_the_same_bytes_are_the_same_names_and_other_bytes_new_ones(monkeypatch):
    same = SameNames()
    big = frame({"conns": names(500)})
    first = answered(same, "get-conns", big)
    assert first == frozenset(names(500))
    parses = []
    real = vici_query.Message.deserialize
    monkeypatch.setattr(vici_query.Message, "deserialize",
                        lambda payload: parses.append(1) or real(payload))
    assert answered(same, "get-conns", bytes(big)) is first  # equal bytes, another object
    assert parses == []  # not parsed again
    other = answered(same, "get-conns", frame({"conns": names(500, "x")}))
    assert other == frozenset(names(500, "x")) and parses == [1]
    # get-shared's last answer is its own: get-conns' did not push it out.
    keys = frame({"keys": names(3, "k")})
    assert answered(same, "get-shared", keys) == frozenset(names(3, "k"))
    assert answered(same, "get-conns", big) == first and len(parses) == 3
    assert answered(same, "get-shared", keys) == frozenset(names(3, "k")) and len(parses) == 3


def test_a_failed_answer_is_the_answer_and_any_other_command_is_parsed():
    same = SameNames()
    failed = frame({"success": "no", "errmsg": "busy"})
    assert answered(same, "get-conns", failed)["errmsg"] == b"busy"
    assert answered(same, "get-conns", frame({"conns": ["a"]})) == frozenset(["a"])
    assert answered(same, "list-sas", frame({"success": "yes"})) == {"success": b"yes"}


def test_sessions_keep_their_own_names():
    one, two = SameNames(), SameNames()
    a, b = frame({"conns": names(10)}), frame({"conns": names(10, "b")})
    first = answered(one, "get-conns", a)
    answered(two, "get-conns", b)
    assert answered(one, "get-conns", a) is first


class ListingServer:
    """Answers get-conns and get-shared with `conns` (and streams no SA)."""

    def __init__(self, path: str, conns: list[str]):
        self.conns = conns
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.server.accept()
        transport = Transport(conn)
        try:
            while True:
                raw = transport.receive()
                if raw[0] in (Packet.EVENT_REGISTER, Packet.EVENT_UNREGISTER):
                    transport.send(bytes([Packet.EVENT_CONFIRM]))
                    continue
                name = raw[2:2 + raw[1]].decode()
                answer = {"conns": self.conns} if name == "get-conns" else \
                    {"keys": [f"ike-{c}" for c in self.conns]} if name == "get-shared" else {}
                transport.send(frame(answer))
        except OSError:
            conn.close()

    def close(self):
        self.server.close()


def test_a_client_reads_what_charon_holds_now_each_time(tmp_path):
    path = str(tmp_path / "listing.vici")
    server = ListingServer(path, names(2000))
    client = ViciClient(path, timeout=2)
    try:
        first = client.live_state()
        assert first.conns == frozenset(names(2000))
        assert client.live_state().conns is first.conns  # the same bytes again
        server.conns = names(1999)  # charon lost one
        now = client.live_state()
        assert now.conns == frozenset(names(1999))
        assert now.shared == frozenset(f"ike-{c}" for c in names(1999))
    finally:
        client.close()
        server.close()
