"""Serving metrics (metrics.py): the pure parts as tables, the server on a
real loopback socket in this process, and what health.py makes of
metrics that are not served."""
from __future__ import annotations

import calendar
import os
import socket
import urllib.error
import urllib.request

import pytest

from lab.testbed import wait_for
from vpnd.observe import metrics
from vpnd.observe.health import judge
from vpnd.observe.metric_families import Rounds, Snapshot
from vpnd.observe.metrics import Listening, Metrics, status_of
from vpnd.observe.scrape_requests import Answer, head_end, route


@pytest.mark.parametrize("data, end", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27),
    (b"GET / HTTP/1.1\n\n", 16),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", -1),  # half a request
    (b"", -1),
])
def test_where_a_request_head_ends(data, end):
    assert head_end(data) == end


@pytest.mark.parametrize("line, answer", [
    (b"GET /metrics HTTP/1.1", Answer("200 OK")),
    (b"GET / HTTP/1.0", Answer("200 OK")),
    (b"GET /metrics?name[]=vpnd_build_info HTTP/1.1", Answer("200 OK")),
    (b"HEAD /metrics HTTP/1.1", Answer("200 OK", head_only=True)),
    (b"GET /other HTTP/1.1", Answer("404 Not Found")),
    (b"POST /metrics HTTP/1.1", Answer("405 Method Not Allowed")),
    (b"GET /metrics", Answer("400 Bad Request")),
    (b"\x16\x03\x01\x02\x00", Answer("400 Bad Request")),  # TLS to a plain port
    (b"GET /metrics SSH-2.0", Answer("400 Bad Request")),
])
def test_what_a_request_line_is_answered(line, answer):
    assert route(line + b"\r\nHost: x\r\n\r\n") == answer


def test_a_port_held_is_logged_once_per_error_and_tried_again_with_backoff():
    b = Listening("127.0.0.1:9576")
    said = [b.failed("Address already in use") for _ in range(3)]
    assert said == ["cannot listen on 127.0.0.1:9576: Address already in use", None, None]
    assert b.failed("Permission denied") == "cannot listen on 127.0.0.1:9576: Permission denied"
    delays = []
    for _ in range(4):
        delays.append(b.retry_in())
        b.failed("Permission denied")
    assert delays == [8.0, 10.0, 10.0, 10.0]  # after 4, 5, 6, 7 failures
    b.bound()
    assert (b.serving, b.error) == (True, None)
    fresh = Listening("127.0.0.1:9576")
    fresh.failed("x")
    assert fresh.retry_in() == metrics.RETRY_FIRST


@pytest.mark.parametrize("listening, textfile, textfile_error, doc", [
    (None, "/n/vpnd.prom", None, {"textfile": "/n/vpnd.prom"}),
    ("served", None, None, {"listen": "127.0.0.1:9576", "serving": True}),
    ("held", None, None, {"listen": "127.0.0.1:9576", "serving": False, "errors": [
        "cannot listen on 127.0.0.1:9576: Address already in use"]}),
    ("held", "/n/vpnd.prom", "[Errno 28] No space left on device", {
        "listen": "127.0.0.1:9576", "serving": False, "textfile": "/n/vpnd.prom", "errors": [
            "cannot listen on 127.0.0.1:9576: Address already in use",
            "textfile /n/vpnd.prom not written: [Errno 28] No space left on device"]}),
])
def test_what_status_says_of_metrics(listening, textfile, textfile_error, doc):
    b = None
    if listening:
        b = Listening("127.0.0.1:9576")
        b.failed("Address already in use")
        if listening == "served":
            b.bound()
    assert status_of(b, textfile, textfile_error) == doc


T = calendar.timegm((2026, 11, 26, 10, 0, 0))
DOC = {"updated": "2026-11-26T10:00:00Z", "pid": 1, "failing": {}}
HELD = {"listen": "127.0.0.1:9576", "serving": False,
        "errors": ["cannot listen on 127.0.0.1:9576: Address already in use"]}


def test_metrics_not_served_is_not_ready_but_alive():
    doc = {**DOC, "metrics": HELD}
    assert judge(doc, T + 5, 10) == (
        False, "metrics: cannot listen on 127.0.0.1:9576: Address already in use")
    assert judge(doc, T + 5, 10, alive_only=True) == (True, "alive")
    served = {**DOC, "metrics": {"listen": "127.0.0.1:9576", "serving": True}}
    assert judge(served, T + 5, 10) == (True, "ready")


def test_a_failing_namespace_is_said_before_metrics():
    doc = {**DOC, "failing": {"netns/qr-1": "charon not answering"}, "metrics": HELD}
    assert judge(doc, T + 5, 10) == (False, "netns/qr-1: charon not answering (and 1 more)")


# --- the server, on a loopback socket of this process ---------------------------------

def snapshot():
    return Snapshot([], {}, {}, 0, 0, Rounds(), "0.1.0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads() -> set[str]:
    """This process's threads (tasks, so that a thread started outside
    Python counts too). As a set: a thread of an earlier test that ends
    meanwhile is no new thread (a count made that test flaky in the suite)."""
    return set(os.listdir(f"/proc/{os.getpid()}/task"))


def scrape(port: int, path="/metrics", timeout=5.0) -> bytes:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout).read()


@pytest.fixture
def served():
    made = []

    def serve(listen):
        m = Metrics(snapshot, listen, None)
        made.append(m)
        return m
    yield serve
    for m in made:
        m.close()


def test_a_port_held_by_another_process_is_said_and_served_once_free(served, monkeypatch):
    monkeypatch.setattr(metrics, "RETRY_MAX", 0.2)
    squat = socket.socket()
    squat.bind(("127.0.0.1", 0))
    squat.listen()
    port = squat.getsockname()[1]
    m = served(f"127.0.0.1:{port}")  # does not raise
    assert m.status()["errors"] == [f"cannot listen on 127.0.0.1:{port}: Address already in use"]
    squat.close()
    wait_for(lambda: m.status().get("serving"), 10, what="metrics served")
    assert b"vpnd_build_info" in scrape(port)
    assert m.status() == {"listen": f"127.0.0.1:{port}", "serving": True}


def test_stalled_clients_hold_no_thread_and_no_scrape(served, monkeypatch):
    # Long enough that a scrape kept waiting behind them would find them
    # all closed by their deadline: that, not a time budget, is the check.
    monkeypatch.setattr(metrics, "HEAD_TIMEOUT", 5.0)
    port = free_port()
    served(f"127.0.0.1:{port}")
    before = threads()
    stalled = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            stalled.append(s)
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x" if i % 2 else b"")
            except OSError:
                pass  # already closed by vpnd: the cap
        assert not threads() - before  # no thread started for them
        assert b"vpnd_build_info" in scrape(port)
        assert any(still_open(s) for s in stalled)  # answered before their deadline
        for s in stalled:  # each one closed by the server: the cap, or the deadline
            s.settimeout(10)
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in stalled:
            s.close()


def still_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def test_other_paths_methods_and_garbage_are_answered_and_closed(served):
    port = free_port()
    served(f"127.0.0.1:{port}")
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(port, "/nothing")
    assert e.value.code == 404
    for request, status in ((b"POST /metrics HTTP/1.1\r\n\r\n", b"405"),
                            (b"\x16\x03\x01\x00\x00\r\n\r\n", b"400"),
                            (b"GET /" + b"a" * 10000, b"431"),
                            (b"HEAD /metrics HTTP/1.1\r\n\r\n", b"200")):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.split(b" ")[1] == status
        if request.startswith(b"HEAD"):
            assert answer.endswith(b"\r\n\r\n")  # headers only


def test_a_client_that_reads_nothing_is_dropped_after_the_send_deadline(served, monkeypatch):
    monkeypatch.setattr(metrics, "SEND_TIMEOUT", 0.5)
    big = b"# " + b"x" * (16 << 20) + b"\n"  # more than any socket buffers hold
    port = free_port()
    m = served(f"127.0.0.1:{port}")
    monkeypatch.setattr(m, "exposition", lambda: big)
    m.server.render = m.exposition
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        wait_for(lambda: m.server.conns, 10, what="the request taken")
        wait_for(lambda: not m.server.conns, 10, what="the non-reader dropped")
        got = 0
        with pytest.raises(ConnectionResetError):
            while chunk := s.recv(1 << 20):
                got += len(chunk)
        assert got < len(big)
