"""A Secret volume as the state dir, updated the way kubelet's atomic
writer does it (lab/kubelet.py): each swap is applied at once, with the
resync five minutes away, so that no resync can hide a missed swap."""
from __future__ import annotations

import json
import time

import pytest

from conftest import connection, service, wait_converged
from lab.factory import connection_doc, service_doc
from lab.kubelet import AtomicWriter
from lab.testbed import wait_for

PSK = "kubernetes-psk-5c1"


def waiting(cid, n):
    return connection_doc(cid, f"{PSK}-{n}", initiator="response-only",
                          peer_address=f"198.18.0.{n}", peer_id=f"198.18.0.{n}",
                          local_cidrs=["192.0.2.0/24"], peer_cidrs=[f"198.18.{n}.0/24"])


@pytest.mark.fault
def test_each_atomic_swap_is_applied_at_once_without_a_resync(lab, vpnd_factory, figure):
    a, b = vpnd_factory("a", resync_interval=300), vpnd_factory("b")
    volume = AtomicWriter(a.state_dir)
    first = service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)])
    volume.write({"svc.json": json.dumps(first)})
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)]))
    a.start(), b.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    ids = {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}

    def loaded():
        return a.vici(lab.a.gw).live_state().conns

    def other(n):
        return json.dumps(service_doc(f"svc-{n}", namespace=lab.a.gw, external_ip=lab.a.wan4,
                                      conns=[waiting(f"k{n}", n)]))
    seconds = []
    # The first swap only changes a file's content: no visible link comes
    # or goes, so only the rename over ..data says anything happened. The
    # next adds two files; the next removes one and changes another; the
    # last leaves svc.json alone, as it was at first.
    grown = json.loads(json.dumps(first))
    grown["ipsec_site_connections"].append(waiting("c2", 2))
    steps = [({"svc.json": json.dumps(grown)}, {"c1", "c2"}),
             ({"svc.json": json.dumps(grown), "k3.json": other(3), "k4.json": other(4)},
              {"c1", "c2", "k3", "k4"}),
             ({"svc.json": json.dumps(grown), "k3.json": other(5).replace("k5", "k3b")},
              {"c1", "c2", "k3b"}),
             ({"svc.json": json.dumps(first)}, {"c1"})]
    for payload, want in steps:
        swapped = volume.write(payload)
        wait_for(lambda: set(loaded()) == want, 10, interval=0.01,
                 what=f"{sorted(want)} loaded after the swap")
        seconds.append(time.monotonic() - swapped)
    figure("Kubernetes volume swaps applied after (s, resync at 300 s)",
           ", ".join(f"{s:.3f}" for s in seconds))
    assert max(seconds) < 10
    # Nothing half-written was ever read: no file was ever reported invalid.
    assert "invalid" not in a.log_path.read_text()
    # c1, in every version, was never disturbed.
    assert {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas} == ids
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
