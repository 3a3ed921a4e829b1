"""The metrics server against local users and clients (issue 20): a port
another process holds first is said (log, status, `vpnd health`) and
taken once free, never vpnd's exit; 200 stalled clients hold no thread
and no scrape, and are closed by vpnd. A real vpnd with a real tunnel;
loopback only, on ports the test picks free."""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.request

import pytest

from conftest import one_tunnel, sa_shape
from lab.testbed import wait_for
from vpnd.observe import metrics

PSK = "metrics-hostile-psk-5e1"
STALLED = 200


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def scrape(port: int, timeout: float = 10.0) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                  timeout=timeout).read().decode()


def scraped(port: int) -> str | None:
    try:
        return scrape(port, timeout=2)
    except OSError:
        return None


def logged(v, event: str) -> int:
    """Lines of this event in vpnd's (JSON) log."""
    count = 0
    for line in v.log_path.read_text().splitlines():
        try:
            count += json.loads(line).get("event") == event
        except ValueError:
            pass
    return count


def metrics_status(v) -> dict:
    return (v.status_document() or {}).get("metrics", {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.fault
def test_a_held_metrics_port_is_said_and_taken_once_free(lab, vpnd_factory, figure):
    squat = socket.socket()  # another local process, there first
    try:
        squat.bind(("127.0.0.1", 0))
        squat.listen()
        port = squat.getsockname()[1]
        listen = f"127.0.0.1:{port}"
        t0 = time.monotonic()
        a, _ = one_tunnel(lab, vpnd_factory, PSK, status_interval=1,
                          metrics={"listen": listen})
        figure("metrics port held: tunnel up and settled at both charons after (s)",
               f"{time.monotonic() - t0:.1f}")
        assert a.proc.poll() is None, a.log_tail()
        assert sa_shape(a, lab.a.gw) == {"c1": (1, 1)}  # the real charon has it

        error = f"cannot listen on {listen}: Address already in use"
        held = {"listen": listen, "serving": False, "errors": [error]}
        wait_for(lambda: metrics_status(a) == held, 30, what=f"status: {held}")
        assert a.conn_status("svc-a", "c1")["status"] == "ACTIVE"
        assert logged(a, "metrics not served") == 1 and error in a.log_path.read_text()
        ready = a.cli("health")
        assert ready.returncode == 1 and f"vpnd: metrics: {error}" in ready.stderr, ready
        alive = a.cli("health", "--alive")
        assert alive.returncode == 0, alive  # the tunnels work: not restarted for it
        assert scraped(port) is None  # the squatter's: it accepts, and answers nothing
    finally:
        squat.close()

    freed = time.monotonic()
    body = wait_for(lambda: scraped(port), 60, interval=0.2, what="metrics served once free")
    figure("metrics port freed: served after (s)", f"{time.monotonic() - freed:.1f}")
    assert 'vpnd_connection_up{connection="c1"' in body
    wait_for(lambda: metrics_status(a) == {"listen": listen, "serving": True}, 30,
             what="status: metrics served")
    ready = wait_for(lambda: (r := a.cli("health")).returncode == 0 and r, 30,
                     what="vpnd health ready")
    assert "ready" in ready.stdout
    # Said once each, however many tries it took.
    assert logged(a, "metrics not served") == 1 and logged(a, "metrics served") == 1
    assert a.proc.poll() is None


@pytest.mark.fault
def test_200_stalled_clients_hold_no_thread_and_no_scrape(lab, vpnd_factory, figure):
    port = free_port()
    a, _ = one_tunnel(lab, vpnd_factory, PSK, metrics={"listen": f"127.0.0.1:{port}"})
    wait_for(lambda: scraped(port), 30, what="metrics served")
    pid = a.proc.pid
    before = peak = threads(pid)
    stalled: list[socket.socket] = []
    try:
        t0 = time.monotonic()
        for i in range(STALLED):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            stalled.append(s)
            try:  # half a request line, or nothing at all
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1" if i % 2 else b"")
            except OSError:
                pass  # already closed by vpnd (its cap on open connections)
            peak = max(peak, threads(pid))
        connected = time.monotonic() - t0
        asked = time.monotonic()
        body = scrape(port, timeout=10)
        took = time.monotonic() - asked
        peak = max(peak, threads(pid))
        assert 'vpnd_connection_up{connection="c1"' in body

        # Each one is closed by vpnd: by the cap at once, or at its deadline.
        deadline = time.monotonic() + 60
        for s in stalled:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                assert s.recv(1) == b"", "a stalled client was answered"
            except ConnectionResetError:
                pass
            except TimeoutError:
                pytest.fail(f"a stalled client still open {time.monotonic() - t0:.0f}s on")
            peak = max(peak, threads(pid))
        closed = time.monotonic() - t0
    finally:
        for s in stalled:
            s.close()
    figure(f"vpnd threads: before, with {STALLED} stalled metrics clients", f"{before}, {peak}")
    figure(f"{STALLED} stalled clients connected within (s)", f"{connected:.1f}")
    figure(f"scrape answered while {STALLED} clients stalled (ms)", f"{took * 1000:.0f}")
    figure(f"{STALLED} stalled clients all closed by vpnd within (s)", f"{closed:.1f}")
    # The look workers may start meanwhile (a pool of 4, made as needed);
    # a thread a connection would be 200 more.
    assert peak <= before + 4
    assert took < 5.0
    assert closed < metrics.HEAD_TIMEOUT + 30
    assert a.proc.poll() is None, a.log_tail()
    assert scraped(port) and sa_shape(a, lab.a.gw) == {"c1": (1, 1)}
