"""A charon stopped with SIGSTOP: the other namespaces do not wait for it,
vpnd stays up, and the stopped charon is replaced and reloaded."""
from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import connection, service, wait_converged
from lab.factory import connection_doc, service_doc
from lab.testbed import ip, wait_for
from vpnd.drivers.charon_process import CharonSpawner

PSK = "wedged-psk-2b8"


@pytest.mark.fault
def test_a_stopped_charon_holds_no_other_namespace_and_is_recovered(lab, vpnd_factory, figure):
    # gw-a's vpnd also serves a second router namespace of its own.
    other = f"{lab.tag}-r2"
    ip("netns", "add", other)
    # Its services' local address (203.0.113.1): not in standby there.
    ip("-n", other, "addr", "add", "203.0.113.1/32", "dev", "lo")
    a = None
    try:
        a = vpnd_factory("a", status_interval=1, charon={
            "libipsec": True, "restart_unanswering_after": 3})
        b = vpnd_factory("b")
        a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)]))
        b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)]))
        a.write("r2.json", service_doc("svc-r2", namespace=other,
                                       conns=[connection_doc("r2c1", initiator="response-only")]))
        a.start(), b.start()
        a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
        a.wait_conn("svc-r2", "r2c1", "DOWN", reason="waiting for the peer")
        wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])

        spawner = CharonSpawner(str(a.run_dir), True)
        stopped = spawner.pid(lab.a.gw)
        os.kill(stopped, signal.SIGSTOP)
        try:
            # The status poll finds it not answering ...
            a.wait_conn("svc-a", "c1", "DOWN", reason="charon not answering", timeout=30)
            # ... while a change to the other namespace lands as fast as ever.
            t0 = time.monotonic()
            a.write("r2.json", service_doc("svc-r2", namespace=other, conns=[
                connection_doc("r2c1", initiator="response-only"),
                connection_doc("r2c2", initiator="response-only",
                               peer_cidrs=["198.51.100.128/25"])]))
            a.wait_conn("svc-r2", "r2c2", "DOWN", reason="waiting for the peer", timeout=30)
            landed = time.monotonic() - t0
            figure("SIGSTOP of one charon: a change to another namespace landed in (s)",
                   f"{landed:.2f}")
            assert a.proc.poll() is None
            # The stopped charon is killed and replaced, and its tunnel is back.
            wait_for(lambda: spawner.pid(lab.a.gw) not in (None, stopped), 60,
                     what="a new charon in gw-a")
            recovered = time.monotonic() - t0
        finally:
            try:
                os.kill(stopped, signal.SIGCONT)
            except ProcessLookupError:
                pass
        a.wait_conn("svc-a", "c1", timeout=90)
        figure("SIGSTOP of one charon: replaced after (s, restart_unanswering_after 3)",
               f"{recovered:.1f}")
        assert landed < 5, "a change elsewhere waited for the stopped charon"
        wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
        assert lab.ping(lab.a.host, lab.b.host4, count=2)
        assert '"charon restarted"' in a.log_path.read_text()
    finally:
        if a is not None:
            a.stop()  # first: a running vpnd would start that charon again
            CharonSpawner(str(a.run_dir), True).stop_all([other])
        ip("netns", "del", other, check=False)
