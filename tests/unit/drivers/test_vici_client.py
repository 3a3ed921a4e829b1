"""A hung or absent charon never hangs vpnd."""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from vici.protocol import Message, Packet, Transport

from vpnd.drivers.vici_client import ViciClient
from vpnd.drivers.vici_pipeline import PIPELINE_WINDOW
from vpnd.base.errors import CharonNotAnswering, DriverUnavailable


def test_a_charon_that_never_answers_times_out(tmp_path):
    path = str(tmp_path / "hung.vici")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    t.start()
    client = ViciClient(path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DriverUnavailable, match="did not answer"):
        client.live_state()
    assert time.monotonic() - started < 5
    client.close()
    server.close()


def test_a_missing_socket_is_unavailable(tmp_path):
    with pytest.raises(DriverUnavailable, match="cannot reach charon"):
        ViciClient(str(tmp_path / "none.vici"), timeout=0.5).version()


class AnsweringServer:
    """Reads VICI requests and answers each: success, or failure for a
    load-shared whose id is "bad" (with an errmsg that repeats nothing) and
    for an unload-conn of "gone" (not found: its aim already met)."""

    def __init__(self, path: str):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.sessions = 0
        self.received = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.sessions += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        transport = Transport(conn)
        try:
            while True:
                raw = transport.receive()
                kind = raw[0]
                name = raw[2:2 + raw[1]].decode()
                if kind in (Packet.EVENT_REGISTER, Packet.EVENT_UNREGISTER):
                    transport.send(bytes([Packet.EVENT_CONFIRM]))
                    continue
                request = Packet.parse(raw)
                request.payload.read(struct.unpack("!B", request.payload.read(1))[0])
                message = Message.deserialize(request.payload)
                self.received += 1
                if name == "list-sas":  # one IKE_SA named as asked, streamed
                    sa = {message["ike"].decode(): {"uniqueid": str(self.received),
                                                    "state": "ESTABLISHED"}}
                    event = b"list-sa"
                    transport.send(bytes([Packet.EVENT, len(event)]) + event
                                   + Message.serialize(sa))
                if message.get("name") == b"gone":
                    answer = {"success": "no", "errmsg": "configuration 'gone' not found"}
                elif message.get("id") == b"bad":
                    answer = {"success": "no", "errmsg": "loading shared key failed"}
                else:
                    answer = {"success": "yes"}
                transport.send(bytes([Packet.CMD_RESPONSE]) + Message.serialize(answer))
        except (OSError, struct.error):
            conn.close()

    def close(self):
        self.server.close()


def test_pipelined_answers_come_in_order_and_never_repeat_a_psk(tmp_path):
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    requests = [("load-shared", {"id": "good", "data": "psk-one-secret"}),
                ("load-shared", {"id": "bad", "data": "psk-two-secret"}),
                ("load-shared", {"id": "good", "data": "psk-three-secret"})]
    answers = list(client.pipeline(requests))
    assert answers == [None, "load-shared: loading shared key failed", None]
    assert not any("psk-" in a for a in answers if a)
    assert client.writes == 3
    # Every answer read, even by a caller that then drops the generator
    # (zip stops before it): the same session serves the next requests.
    answers = client.pipeline(requests[:1])
    assert [a for _, a in zip(range(1), answers)] == [None]
    answers.close()
    assert list(client.pipeline(requests[:1])) == [None]
    assert server.sessions == 1
    client.close()
    server.close()


def test_a_pipeline_left_unread_drops_its_session(tmp_path):
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    answers = client.pipeline([("load-shared", {"id": "good", "data": "psk-x-secret"})] * 3)
    assert next(answers) is None
    answers.close()  # two answers still unread: that session cannot be trusted
    assert list(client.pipeline([("load-shared", {"id": "good", "data": "s-e-c"})])) == [None]
    assert server.sessions == 2
    client.close()
    server.close()


def test_a_charon_that_stops_mid_answer_is_bounded_by_one_deadline(tmp_path):
    """The binding clears the socket timeout after a message's first byte;
    a charon stopped half-way through an answer must not hold vpnd."""
    path = str(tmp_path / "stalls.vici")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def stall():
        conn, _ = server.accept()
        Transport(conn).receive()  # the request
        conn.sendall(struct.pack("!I", 1000) + b"\x01")  # 1 byte of 1000, then nothing
        time.sleep(30)
    threading.Thread(target=stall, daemon=True).start()
    client = ViciClient(path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CharonNotAnswering, match=r"version: .* did not answer within 0.5s"):
        client.version()
    assert time.monotonic() - started < 3
    client.close()
    server.close()


def test_a_pipeline_longer_than_its_window_keeps_every_answer_in_its_place(tmp_path):
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    n = 3 * PIPELINE_WINDOW + 7
    bad = {5, PIPELINE_WINDOW, 2 * PIPELINE_WINDOW + 1, n - 1}
    requests = [("load-shared", {"id": "bad" if i in bad else "good", "data": f"psk-{i}"})
                for i in range(n)]
    answers = list(client.pipeline(requests))
    assert [i for i, a in enumerate(answers) if a] == sorted(bad)
    assert server.received == n and server.sessions == 1
    assert list(client.pipeline(requests[:2])) == [None, None]  # still in step
    assert server.sessions == 1
    client.close()
    server.close()


def test_an_unencodable_message_is_its_own_error_and_the_others_are_sent(tmp_path):
    """A lone surrogate is valid JSON and a valid Python str, but no UTF-8:
    it must not take the other connections of the batch down with it."""
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    requests = [("load-shared", {"id": "good", "data": "psk-a-secret"}),
                ("load-shared", {"id": "good", "data": "psk-\ud800-secret"}),
                ("load-conn", lambda: {"c2": {"remote_addrs": ["\udcff"]}}),
                ("load-shared", {"id": "good", "data": "psk-c-secret"})]
    answers = list(client.pipeline(requests))
    assert answers[0] is None and answers[3] is None
    assert answers[1].startswith("load-shared: not sent: a value is not valid UTF-8")
    assert answers[2].startswith("load-conn: not sent: a value is not valid UTF-8")
    assert not any("psk-" in a or "\ud800" in a for a in answers if a)
    assert server.received == 2 and server.sessions == 1
    client.close()
    server.close()


def test_an_aim_already_met_is_a_success_in_a_pipeline(tmp_path):
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    answers = list(client.pipeline([("unload-conn", {"name": "gone"}),
                                    ("load-shared", {"id": "bad", "data": "x"})]))
    assert answers == [None, "load-shared: loading shared key failed"]
    client.close()
    server.close()


def test_the_sas_of_many_names_come_back_each_under_its_name(tmp_path):
    """One write: the stream's registration, a list-sas a name, the
    unregistration; each streamed SA belongs to the answer after it."""
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    sas = client.sas_of(["c1", "c2", "c3"])
    assert [(sa.name, sa.uniqueid) for sa in sas] == [("c1", "1"), ("c2", "2"), ("c3", "3")]
    assert client.sas_of([]) == ()
    assert list(client.pipeline([("load-shared", {"id": "good", "data": "x"})])) == [None]
    assert server.sessions == 1  # still in step
    client.close()
    server.close()


def test_a_message_larger_than_charon_accepts_is_its_own_error(tmp_path):
    """charon drops a session that sends more than 512 KiB at once: the
    requests behind such a message would all be lost with it."""
    path = str(tmp_path / "answering.vici")
    server = AnsweringServer(path)
    client = ViciClient(path, timeout=2)
    huge = {"c1": {"children": {f"c1-{i}": {"local_ts": ["198.18.0.0/32"] * 64}
                                for i in range(800)}}}
    requests = [("load-shared", {"id": "good", "data": "psk-a"}),
                ("load-conn", huge),
                ("load-shared", {"id": "good", "data": "psk-b"})]
    answers = list(client.pipeline(requests))
    assert answers[0] is None and answers[2] is None
    assert answers[1].startswith("load-conn: not sent: ") and "524288" in answers[1]
    assert server.received == 2 and server.sessions == 1
    client.close()
    server.close()
