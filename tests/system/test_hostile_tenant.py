"""A tenant's values beside a live tunnel (issue 20): each hostile value is
an error on its own connection, costs its bound, and the tunnel in the
same charon keeps its IKE_SA and its pings."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from conftest import one_tunnel, require_system
from lab.factory import connection_doc, service_doc
from lab.hostile_input import ikev1_cross
from lab.testbed import wait_for
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.base.errors import DriverUnavailable

PSK = "hostile-tenant-psk-51e"


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def conn_errors(v, service_id: str) -> dict[str, str]:
    """connection id -> its ERROR reason, for one service in status."""
    for s in (v.status_document() or {}).get("services", []):
        if s["id"] == service_id:
            return {cid: " ".join([c.get("reason", ""), *c.get("errors", [])])
                    for cid, c in s["ipsec_site_connections"].items() if c["status"] == "ERROR"}
    return {}


def tenant(lab, service_id: str, conns) -> dict:
    """A second service of gw-a's router namespace: the good tunnel's charon."""
    return service_doc(service_id, conns, namespace=lab.a.gw, external_ip=lab.a.wan4)


def bystander(conn_id: str, psk: str = "bystander-psk-3c0") -> dict:
    """A valid response-only connection to a peer that is never there."""
    return connection_doc(conn_id, psk, initiator="response-only",
                          peer_address="203.0.113.60", peer_id="203.0.113.60",
                          peer_cidrs=["198.51.100.128/25"])


def loaded(v, ns: str) -> frozenset[str]:
    """charon's connections; none while it is down or being replaced."""
    try:
        return v.vici(ns).live_state().conns
    except DriverUnavailable:
        return frozenset()


def sa_ids(v, lab) -> dict[str, str]:
    return {sa.name: sa.uniqueid for sa in v.vici(lab.a.gw).live_state().sas}


@pytest.mark.fault
def test_an_ikev1_cross_product_is_refused_at_its_bound_beside_a_live_tunnel(
        lab, vpnd_factory, figure):
    require_system()
    a, b = one_tunnel(lab, vpnd_factory, PSK)
    before, hwm = sa_ids(a, lab), rss_mb(a.proc.pid)
    t0 = time.monotonic()
    a.write("cross.json", tenant(lab, "svc-cross", [ikev1_cross(600, 600), bystander("ok1")]))
    errors = wait_for(lambda: conn_errors(a, "svc-cross").get("cross"), 20, interval=0.02,
                      what="the cross product's error in status")
    took = time.monotonic() - t0
    assert "local_cidrs: 600 CIDRs, more than the 64" in errors, errors
    a.wait_conn("svc-cross", "ok1", "DOWN", timeout=15)  # its neighbour is loaded
    live = a.vici(lab.a.gw).live_state()
    assert "ok1" in live.conns and not any(n.startswith("cross") for n in live.conns)
    grew = rss_mb(a.proc.pid) - hwm
    figure("IKEv1 600 x 600 CIDRs (22 kB): in status within (s), vpnd peak RSS added (MB)",
           f"{took:.2f} s, {grew:.1f} MB")
    assert grew < 20, f"vpnd's peak RSS grew by {grew:.1f} MB"
    assert sa_ids(a, lab) == before
    assert lab.ping(lab.a.host, lab.b.host4, count=3)


@pytest.mark.fault
def test_a_lone_surrogate_spoils_no_neighbour_at_a_charon_restart(lab, vpnd_factory):
    """A PSK of "\\ud800" is valid JSON; encoded into a pipelined batch it
    failed every connection of its namespace, at each charon restart."""
    require_system()
    a, b = one_tunnel(lab, vpnd_factory, PSK)
    raw = json.dumps(tenant(lab, "svc-sur", [bystander("sur"), bystander("ok2")]))
    raw = raw.replace('"bystander-psk-3c0"', '"bad-\\ud800-psk"', 1)
    a.write("surrogate.json", raw)
    assert "lone surrogate" in wait_for(lambda: conn_errors(a, "svc-sur").get("sur"), 15,
                                        what="the surrogate's error")
    a.wait_conn("svc-sur", "ok2", "DOWN", timeout=15)
    # A charon restart reloads the whole namespace in one pipelined batch.
    spawner = CharonSpawner(str(a.run_dir), True)
    os.kill(spawner.pid(lab.a.gw), signal.SIGKILL)
    wait_for(lambda: {"c1", "ok2"} <= loaded(a, lab.a.gw), 60,
             what="c1 and ok2 loaded again into the new charon")
    a.wait_conn("svc-a", "c1", timeout=60)
    assert "sur" not in a.vici(lab.a.gw).live_state().conns
    assert lab.ping(lab.a.host, lab.b.host4, count=3)
    assert "ud800" not in a.log_path.read_text() and "bad-" not in a.log_path.read_text()


@pytest.mark.fault
def test_ids_and_addresses_that_mean_any_peer_never_reach_charon(lab, vpnd_factory):
    require_system()
    a, b = one_tunnel(lab, vpnd_factory, PSK)
    hostile = {"any4": {"peer_id": "0.0.0.0"}, "any6": {"peer_id": "::"},
               "range": {"peer_id": "0.0.0.0-255.255.255.255"},
               "anyaddr": {"peer_address": "0.0.0.0"}, "legacy": {"peer_address": "0x0"}}
    conns = [{**bystander(cid), **values} for cid, values in hostile.items()]
    a.write("any.json", tenant(lab, "svc-any", [*conns, bystander("ok3")]))
    errors = wait_for(lambda: (e := conn_errors(a, "svc-any")) and len(e) == 5 and e, 15,
                      what="five errors in status")
    assert all("would not name one peer" in why for why in errors.values()), errors
    a.wait_conn("svc-any", "ok3", "DOWN", timeout=15)
    live = a.vici(lab.a.gw).live_state()
    assert not set(hostile) & live.conns
    assert not {f"vpnd-{cid}" for cid in hostile} & live.shared
    assert "vpnd-ok3" in live.shared


@pytest.mark.fault
def test_a_psk_that_is_a_common_word_erases_nothing_from_the_log(lab, vpnd_factory):
    require_system()
    a, b = one_tunnel(lab, vpnd_factory, PSK)
    a.write("word.json", tenant(lab, "svc-word", [bystander("word1", psk="change")]))
    a.wait_conn("svc-word", "word1", "DOWN", timeout=15)
    lines = [json.loads(x) for x in a.log_path.read_text().splitlines() if x.startswith("{")]
    applied = [x for x in lines if x.get("event") == "change applied"
               and x.get("connection") == "word1"]
    assert applied and applied[0]["netns"] == lab.a.gw, lines[-5:]
    assert not any("<redacted>" in str(x.get(k)) for x in lines
                   for k in ("event", "netns", "connection", "service", "file"))


@pytest.mark.fault
def test_names_that_are_not_utf8_or_hold_escapes_stop_nothing(lab, vpnd_factory, tmp_path):
    """Under journal logging a name that is not UTF-8 made every scan fail;
    a name with escapes reached the operator's terminal raw."""
    require_system()
    a, b = one_tunnel(lab, vpnd_factory, PSK, log_format="journal")
    state = os.fsencode(a.state_dir)
    evil = {b"bad-\xff.json": b"{}", b"esc-\x1b[2J\x1b]0;x\x07\n.json": b'{"id": "e"}'}
    for name, data in evil.items():
        fd = os.open(os.path.join(state, name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.close(fd)
    a.write("later.json", tenant(lab, "svc-later", [bystander("later1")]))
    a.wait_conn("svc-later", "later1", "DOWN", timeout=15)
    assert "later1" in a.vici(lab.a.gw).live_state().conns
    def evil_in_status():
        return sum(s["status"] == "ERROR" and os.path.basename(s["file"]).startswith(
            ("bad-", "esc-")) for s in a.status_document()["services"]) == 2
    wait_for(evil_in_status, 15, what="both evil files in status")
    assert a.proc.poll() is None
    for command in (("status",), ("check",)):
        out = a.cli(*command)
        assert "Traceback" not in out.stderr, out.stderr
        text = out.stdout + out.stderr
        assert "\x1b" not in text and "\x07" not in text, command
        assert "\\udcff" in text or "\\xff" in text, (command, text)
    assert sa_ids(a, lab) and lab.ping(lab.a.host, lab.b.host4, count=3)
