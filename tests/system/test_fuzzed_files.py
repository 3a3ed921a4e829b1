"""The seeded fuzz against real parts: what validation accepts loads into
a real charon, and 1,000 fuzzed files dropped into a running vpnd beside a
live tunnel break nothing (lab/fuzz.py makes them)."""
from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from conftest import one_tunnel, require_system
from lab.fuzz import payloads
from lab.fuzzcheck import check
from lab.testbed import wait_for
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.drivers.vici_client import ViciClient

SEED = 20261126
PSK = "fuzzed-files-psk-4e2"


@pytest.mark.fault
def test_every_accepted_fuzzed_connection_loads_into_a_real_charon(lab, tmp_path, figure):
    require_system()
    tally: Counter = Counter()
    accepted = []
    for i, raw in payloads(SEED, 10_000, "fz-none"):
        accepted += check(raw, f"/state/fz-{i}.json", tally)[1]
    assert len(accepted) > 1000
    spawner = CharonSpawner(str(tmp_path / "run"), True)
    try:
        spawner.ensure(lab.a.gw)
        client = ViciClient(str(spawner.socket_path(lab.a.gw)), timeout=30)
        requests = []
        for conn, secret in accepted:
            # Loaded, never started: nothing a fuzzed payload says may send
            # a packet (a host name would even be resolved).
            for ike in conn.values():
                for child in ike["children"].values():
                    child["start_action"] = "none"
            requests += [("load-shared", secret), ("load-conn", conn)]
        answers = list(client.pipeline(requests))
        refused = [(request, answer) for request, answer in zip(requests, answers) if answer]
        figure("fuzzed connections validation accepted, loaded into a real charon",
               f"{len(accepted)}, {len(refused)} refused by charon")
        assert not refused, refused[:3]
        assert client.live_state().sas == ()  # and nothing was started
    finally:
        spawner.stop_all([lab.a.gw])


def _drop(state_dir, name: str, raw: bytes):
    tmp = state_dir / f".{name}.tmp"
    tmp.write_bytes(raw)
    tmp.chmod(0o600)
    os.replace(tmp, state_dir / name)


@pytest.mark.fault
def test_a_thousand_fuzzed_files_in_batches_break_nothing(lab, vpnd_factory, figure):
    a, b = one_tunnel(lab, vpnd_factory, PSK)
    before = {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}

    # A namespace that does not exist: what a valid payload says is
    # accepted and shown, but never loaded.
    docs = list(payloads(SEED + 1, 1000, f"{lab.tag}-fz-none"))
    slowest, tally = 0.0, Counter()
    for start in range(0, len(docs), 50):
        batch = {}
        for i, raw in docs[start:start + 50]:
            name = f"fz-{i:04d}.json"
            valid, _ = check(raw, str(a.state_dir / name), tally)
            batch[str(a.state_dir / name)] = not valid
            _drop(a.state_dir, name, raw)
        t0 = time.monotonic()

        def all_shown():
            entries = {s["file"]: s for s in (a.status_document() or {}).get("services", [])}
            for path, refused in batch.items():
                entry = entries.get(path)
                if entry is None:
                    return False
                # Errors of the file, the service or its connections.
                errors = [*entry.get("errors", []),
                          *(e for c in entry["ipsec_site_connections"].values()
                            for e in c.get("errors", []))]
                if refused and not (errors and all(e.startswith(path) for e in errors)):
                    return False
            return True
        wait_for(all_shown, 30, interval=0.02, what=f"batch at {start} in status")
        slowest = max(slowest, time.monotonic() - t0)
        assert a.proc.poll() is None, f"vpnd exited in batch at {start}:\n{a.log_tail()}"
        for path in batch:
            os.unlink(path)
    figure("fuzzed files dropped into a running vpnd (batches of 50)",
           f"1000: {tally['refused']} refused, "
           f"{tally['valid service, invalid connections']} with invalid connections only, "
           f"{tally['valid']} valid, vpnd crashes 0, "
           f"slowest batch in status after {slowest:.2f} s")

    assert {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas} == before
    assert lab.ping(lab.a.host, lab.b.host4, count=3)
    assert a.log_path.stat().st_size < 20_000_000
    assert PSK.encode() not in a.log_path.read_bytes()
