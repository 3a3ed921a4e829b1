"""Bursts as agents write them, against real charons: a full sync that
changes nothing writes nothing, one policy shared by hundreds of
connections lands as one batch without disturbing the tunnel beside it,
a flood that overflows inotify loses no file, and one namespace's batch
does not hold up another's change."""
from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest

from conftest import connection, one_tunnel, service
from lab.factory import connection_doc, service_doc
from lab.testbed import ip, kill_namespace_processes, wait_for, wait_steady
from vpnd.base.errors import DriverUnavailable

PSK = "bursts-psk-7c1"
WRITES = re.compile(r"requests: (load-|unload-|initiate|terminate)")
MAX_QUEUED = "/proc/sys/fs/inotify/max_queued_events"


def bulk(namespace: str, local: str, n: int, lifetime: int = 3600) -> dict[str, dict]:
    """n one-connection files sharing one ikepolicy, as a Neutron agent
    writes them: response-only, peers in the benchmark range (nothing is
    ever sent to them)."""
    docs = {}
    for i in range(n):
        peer = f"198.19.{i // 250}.{i % 250 + 1}"
        conn = connection_doc(f"k{i:04d}", f"bulk-psk-{i}", peer_address=peer, peer_id=peer,
                              local_cidrs=["192.0.2.0/24"], peer_cidrs=[f"{peer}/32"],
                              initiator="response-only",
                              ikepolicy={"ike_version": "v2", "lifetime": {
                                  "units": "seconds", "value": lifetime}})
        docs[f"bulk-{i:04d}.json"] = service_doc(f"bulk-{i:04d}", [conn], namespace=namespace,
                                                 external_ip=local)
    return docs


def drop(v, docs: dict[str, dict]) -> float:
    """Every file written to a temporary name first, then all renamed into
    place as fast as a loop can: the burst. Returns when the renames began."""
    moves = []
    for name, doc in docs.items():
        tmp = v.state_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.chmod(0o600)
        moves.append((tmp, v.state_dir / name))
    t0 = time.monotonic()
    for tmp, path in moves:
        os.replace(tmp, path)
    return t0


def loaded(v, ns: str) -> frozenset[str]:
    """What charon holds; nothing while vpnd has yet to start that charon
    (waiting on it must not fail on the race with its start)."""
    try:
        return v.vici(ns).live_state().conns
    except DriverUnavailable:
        return frozenset()


def requests_since(v, ns: str, offset: int) -> dict[str, int]:
    """charon's own count of each VICI request in its log since `offset`."""
    counts: dict[str, int] = {}
    for name in re.findall(r"requests: ([a-z-]+)", v.charon_log(ns)[offset:]):
        counts[name] = counts.get(name, 0) + 1
    return counts


def sa_ids(v, ns):
    return {(sa.name, sa.uniqueid) for sa in v.vici(ns).live_state().sas}


def rounds(v) -> int:
    return v.reconcile_passes()


@pytest.fixture
def bulk_namespace():
    """A namespace of the test's own with only loopback (no route out)."""
    ns = f"vbk{secrets.token_hex(3)}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", "198.18.0.1/32", "dev", "lo")
        yield ns
    finally:
        kill_namespace_processes(ns)
        ip("netns", "del", ns, check=False)


def test_a_full_sync_writes_nothing_and_a_shared_policy_change_is_one_batch(
        lab, vpnd_factory, figure):
    n = 300
    # No timer brings a look of its own while the test counts requests.
    a, b = one_tunnel(lab, vpnd_factory, PSK, resync_interval=3600, status_interval=3600)
    ns = lab.a.gw
    docs = bulk(ns, lab.a.wan4, n)
    drop(a, docs)
    wait_for(lambda: len(loaded(a, ns)) == n + 1, 60, what=f"{n} bulk connections loaded")
    counted = [None]

    def settled():  # status of all of them, and its count of writes still
        doc = a.status_document()
        last, counted[0] = counted[0], doc["vici_writes"]
        return len(doc["services"]) == n + 1 and last == counted[0]
    wait_steady(settled, 1.0, 30, what="status of all of them, settled")
    tunnel = sa_ids(a, ns)
    writes = counted[0]

    # An agent restarts: every file rewritten, the same bytes.
    offset, passes = len(a.charon_log(ns)), rounds(a)
    mine = json.loads((a.state_dir / "svc.json").read_text())
    t0 = drop(a, {**docs, "svc.json": mine})
    wait_for(lambda: rounds(a) > passes, 30, what="vpnd to read the rewritten files")
    seen = [rounds(a)]
    wait_steady(lambda: seen.append(rounds(a)) or seen[-1] == seen[-2], 1.0, 30,
                what="vpnd quiet after the full sync")
    figure(f"full sync of {n + 1} identical files: quiet within (s, with 1 s to be sure)",
           f"{time.monotonic() - t0:.2f}")
    asked = requests_since(a, ns, offset)
    assert not any(WRITES.search(f"requests: {r}") for r in asked), asked
    assert "get-conns" not in asked, asked  # no whole read either
    assert a.status_document()["vici_writes"] == writes

    # The operator changes the ikepolicy all of them share.
    offset = len(a.charon_log(ns))
    t0 = drop(a, bulk(ns, lab.a.wan4, n, lifetime=7200))

    def landed():
        return len(re.findall(r"vici connection: k\d{4}", a.charon_log(ns)[offset:])) >= n
    wait_for(landed, 120, interval=0.05, what=f"charon to load all {n} changed connections")
    figure(f"shared ikepolicy changed in {n} files: in charon after (s)",
           f"{time.monotonic() - t0:.2f}")
    asked = requests_since(a, ns, offset)
    # Each connection broke before it made, its PSK not loaded again ...
    assert asked.get("unload-conn") == n and asked.get("load-conn") == n, asked
    assert asked.get("load-shared", 0) == 0, asked
    # ... read whole a few times, never asked about name by name.
    assert asked.get("list-sas", 0) <= 10, asked
    # The tunnel beside them kept its IKE_SA and carries traffic.
    assert sa_ids(a, ns) == tunnel
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


@pytest.mark.fault
def test_files_dropped_while_inotify_overflows_are_all_applied_without_a_resync(
        lab, vpnd_factory, figure):
    """The kernel's queue is made tiny for vpnd's inotify instance (the
    limit is taken when the instance is made, and restored at once)."""
    n = 1000
    a, b = vpnd_factory("a", resync_interval=3600), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [connection("c1", me, peer, PSK)]))
    with open(MAX_QUEUED) as f:
        saved = f.read().strip()
    try:
        with open(MAX_QUEUED, "w") as f:
            f.write("16")
        a.start()
        wait_for(lambda: '"vpnd started"' in a.log_path.read_text(), 30, what="vpnd started")
    finally:
        with open(MAX_QUEUED, "w") as f:
            f.write(saved)
    b.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    tunnel = sa_ids(a, lab.a.gw)

    t0 = drop(a, bulk(lab.a.gw, lab.a.wan4, n))
    wait_for(lambda: len(loaded(a, lab.a.gw)) == n + 1, 120, interval=0.2,
             what=f"all {n} dropped files loaded, with no resync and no SIGHUP")
    figure(f"{n} files dropped into a queue of 16 events: all in charon after (s)",
           f"{time.monotonic() - t0:.2f}")
    log = a.log_path.read_text()
    # The fault was real: the kernel's queue did overflow.
    assert '"inotify queue overflowed"' in log
    assert '"trigger": "resync"' not in log and '"trigger": "SIGHUP"' not in log
    assert sa_ids(a, lab.a.gw) == tunnel
    assert lab.ping(lab.a.host, lab.b.host4, count=2)


def test_one_namespace_working_a_batch_does_not_hold_up_another(
        lab, vpnd_factory, bulk_namespace, figure):
    n = 2000
    a, b = one_tunnel(lab, vpnd_factory, PSK, resync_interval=3600)
    drop(a, bulk(bulk_namespace, "198.18.0.1", n))
    wait_for(lambda: len(loaded(a, bulk_namespace)) == n, 120, interval=0.2,
             what=f"{n} connections in the other namespace")
    offset = len(a.charon_log(bulk_namespace))
    changed = list(bulk(bulk_namespace, "198.18.0.1", n, lifetime=7200).items())
    t0 = drop(a, dict(changed[:n // 4]))
    # While the other namespace works its batch: one new connection here.
    extra = service_doc("svc-r2", namespace=lab.a.gw, external_ip=lab.a.wan4, conns=[
        connection_doc("r2", initiator="response-only", peer_address="203.0.113.50",
                       peer_id="203.0.113.50", peer_cidrs=["198.51.100.0/25"])])
    t_extra = drop(a, {"r2.json": extra})
    drop(a, dict(changed[n // 4:]))
    wait_for(lambda: "r2" in loaded(a, lab.a.gw), 30, interval=0.01, what="r2 loaded")
    r2 = time.monotonic() - t_extra

    def batch_done():
        return len(re.findall(r"vici connection: k\d{4}",
                              a.charon_log(bulk_namespace)[offset:])) >= n
    wait_for(batch_done, 120, interval=0.05, what="the other namespace's batch")
    batch = time.monotonic() - t0
    figure(f"a new connection while another namespace works {n} changes: loaded after (s)",
           f"{r2:.2f} (that batch: {batch:.2f})")
    assert r2 < 2.0
