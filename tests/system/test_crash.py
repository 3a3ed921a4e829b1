"""kill -9 of vpnd while it applies: the restarted vpnd repeats nothing it
had done (the record is journaled per change), converges, and leaves an
unrelated tunnel alone."""
from __future__ import annotations

import json
import signal

import pytest

from conftest import connection, service, wait_converged
from lab.factory import connection_doc
from lab.testbed import wait_for

PSK, ROTATED = "crash-psk-7d1", "crash-psk-rotated-7d2"


def many(psk_suffix: str) -> list[dict]:
    """300 response-only connections to benchmark peers (no traffic)."""
    return [connection_doc(f"m{i:03d}", f"crash-many-{i}-{psk_suffix}",
                           peer_address=f"198.19.1.{i % 250 + 1}",
                           peer_id=f"198.19.1.{i % 250 + 1}", local_cidrs=["192.0.2.0/24"],
                           peer_cidrs=[f"198.19.{2 + i // 250}.{i % 250 + 1}/32"],
                           initiator="response-only") for i in range(300)]


def log_lines(v) -> list[dict]:
    """vpnd's JSON log lines. A line that the kill cut before its newline
    runs into the next vpnd's first: objects are read one after another."""
    text, decoder, out, i = v.log_path.read_text(), json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, i = decoder.raw_decode(text, i)
            out.append(obj)
        except json.JSONDecodeError:
            i += 1
    return out


@pytest.mark.fault
def test_kill_9_mid_apply_repeats_nothing_and_converges(lab, vpnd_factory, figure):
    a, b = vpnd_factory("a"), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [connection("c1", me, peer, PSK)]))
        v.write("v6.json", service(f"v6-{side}", me, [
            connection("c6", me, peer, PSK, v6=True, external_ip=me.wan6)]))
        v.start()
    a_doc = service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK), *many("old")])
    a.write("svc.json", a_doc)
    for v, side in ((a, "a"), (b, "b")):
        v.wait_conn(f"svc-{side}", "c1"), v.wait_conn(f"v6-{side}", "c6")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1", "c6"])
    wait_for(lambda: len(a.vici(lab.a.gw).live_state().conns) == 302, 30, what="all loaded")
    c6_before = {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas if sa.name == "c6"}

    # Rotate every PSK of the file: c1 first (on both ends), then 300 more,
    # one changed step after another; kill vpnd once c1's change landed.
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, ROTATED)]))
    start = len(log_lines(a))
    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, ROTATED),
                                                 *many("new")]))

    def c1_changed():
        return [e for e in log_lines(a)[start:] if e.get("event") == "change applied"
                and e.get("connection") == "c1"]
    wait_for(c1_changed, 30, interval=0.005, what="c1's change applied")
    a.signal(signal.SIGKILL)
    a.proc.wait(10)
    applied_before_kill = sum(1 for e in log_lines(a)[start:]
                              if e.get("event") == "change applied")

    a.start()
    a.wait_conn("svc-a", "c1", timeout=60)
    wait_for(lambda: a.cli("plan", "--json").stdout.strip() == "[]", 60,
             what="nothing left to apply")
    after = [e for e in log_lines(a)[start:] if e.get("event") == "change applied"]
    figure("kill -9 of vpnd among 301 changes: applied before / after the restart",
           f"{applied_before_kill} / {len(after) - applied_before_kill}, none twice")
    # c1 was changed (its SA terminated) exactly once; nothing was applied
    # twice. (The kill can fall between a change's journal line and its log
    # line: then it is applied, and not again, but not logged.)
    assert [e["reason"] for e in after if e["connection"] == "c1"] == ["changed"]
    assert len(after) == len({e["connection"] for e in after}) >= 300
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1", "c6"])
    assert {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas
            if sa.name == "c6"} == c6_before
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


@pytest.mark.fault
def test_a_kill_between_charon_and_the_record_ends_no_sa_twice(lab, vpnd_factory, figure):
    """The narrowest window: charon has the change, the record line is not
    written. vpnd kills itself exactly there (failpoints.py)."""
    a, b = vpnd_factory("a"), vpnd_factory("b")
    # a only responds: every SA is b's, so no duplicate is ever ended and
    # an SA id stays put unless vpnd ends it.
    a.write("svc.json", service("svc-a", lab.a, [
        connection("c1", lab.a, lab.b, PSK, initiator="response-only")]))
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)]))
    a.start(env={"VPND_FAILPOINT": "changed-not-recorded:c1"})
    b.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])

    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, ROTATED)]))
    a.write("svc.json", service("svc-a", lab.a, [
        connection("c1", lab.a, lab.b, ROTATED, initiator="response-only")]))
    assert a.proc.wait(30) == -signal.SIGKILL  # at the failpoint
    # charon has the new configuration: b's next attempt lands.
    def new_sa():
        sas = [sa for sa in a.vici(lab.a.gw).live_state().sas
               if sa.name == "c1" and sa.state == "ESTABLISHED"]
        return len(sas) == 1 and sas[0].uniqueid
    made = wait_for(new_sa, 60, what="the changed connection's SA at gw-a")

    a.start()
    a.wait_conn("svc-a", "c1", timeout=60)
    wait_for(lambda: a.cli("plan", "--json").stdout.strip() == "[]", 30,
             what="nothing left to apply")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"], stable=3)
    ids = [sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas if sa.name == "c1"]
    resumed = [e for e in log_lines(a) if e.get("event") == "change applied"
               and e.get("reason") == "resumed"]
    figure("kill between a change reaching charon and its record line: SAs ended again",
           "0" if ids == [made] else f"{ids} (the SA was #{made})")
    assert ids == [made], "the restarted vpnd ended the changed connection's new SA"
    assert [e["actions"] for e in resumed] == [["load-shared vpnd-c1", "load-conn c1"]]
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
