"""A big VICI answer in the same bytes as the last is not parsed or
decoded again (vici_query.SameAnswers, vici_answers' names); any other
bytes are. Also through a ViciClient against a server whose answers
change."""
from __future__ import annotations

import socket
import threading

from vici.protocol import Message, Packet, Transport

from vpnd.drivers import vici_answers
from vpnd.drivers.vici_client import ViciClient
from vpnd.drivers.vici_query import SameAnswers


def frame(answer: dict) -> bytes:
    return bytes([Packet.CMD_RESPONSE]) + Message.serialize(answer)


def parsed(answers: SameAnswers, data: bytes) -> dict:
    return answers.answer(data, Packet.parse(data).payload)


def names(n: int, tag: str = "") -> list[str]:
    return [f"conn-{i:05d}{tag}" for i in range(n)]


def test_an_answer_in_the_same_bytes_is_the_same_answer_and_other_bytes_a_new_one():
    answers = SameAnswers(least=1024, most=len(frame({"conns": names(502, "x")})) * 5 // 2)
    big = frame({"conns": names(500)})
    first = parsed(answers, big)
    assert parsed(answers, bytes(big)) is first  # equal bytes, another object
    other = parsed(answers, frame({"conns": names(500, "x")}))
    assert other is not first and other["conns"][0] == b"conn-00000x"
    assert parsed(answers, big) is first
    small = frame({"conns": names(3)})
    assert parsed(answers, small) is not parsed(answers, small)  # never kept
    # At most `most` bytes of them: the oldest go.
    parsed(answers, frame({"conns": names(501)}))
    parsed(answers, frame({"conns": names(502)}))
    assert parsed(answers, big) is not first
    huge = frame({"conns": names(2000)})  # more than `most` alone: never kept
    assert parsed(answers, huge) is not parsed(answers, huge)


def test_names_are_decoded_again_for_any_other_answer():
    first = {"conns": [n.encode() for n in names(10)]}
    decoded = vici_answers.live_state(first, {"keys": [b"k1"]}, [])
    again = vici_answers.live_state(first, {"keys": [b"k1"]}, [])
    assert again.conns is decoded.conns and again.conns == frozenset(names(10))
    changed = {"conns": [n.encode() for n in names(9)]}
    assert vici_answers.live_state(changed, {"keys": []}, []).conns == frozenset(names(9))
    assert vici_answers.live_state(first, {"keys": []}, []).conns == frozenset(names(10))


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
