"""What vpnd keeps through a reboot of itself and its charons, through its
state dir going away, and what it never lets out: PSKs."""
from __future__ import annotations

import os
import subprocess
import shutil
import stat
import time

import pytest

from conftest import connection, one_tunnel, service, wait_converged
from lab.factory import connection_doc, service_doc
from lab.testbed import wait_for
from vpnd.drivers.charon_process import CharonSpawner

PSK = "survival-psk-0e5"


def pair(lab, vpnd_factory, **config):
    return one_tunnel(lab, vpnd_factory, PSK, **config)


@pytest.mark.fault
def test_the_last_valid_version_outlives_a_reboot_of_vpnd_and_its_charon(lab, vpnd_factory):
    a, b = pair(lab, vpnd_factory)
    a.write("svc.json", "{ broken by a bad edit")
    wait_for(lambda: (a.status_document()["services"][0]["status"] == "ERROR"), 10,
             what="the file reported invalid")
    # A reboot: vpnd and its charon go; the file is still broken.
    assert a.stop() == 0
    spawner = CharonSpawner(str(a.run_dir), True)
    spawner.stop_all(spawner.namespaces())
    a.start()
    # The tunnel comes back from the version kept under data_dir ...
    a.wait_conn("svc-a", "c1", timeout=60)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    # ... and status shows the file under its ids, as an invalid file.
    [entry] = a.status_document()["services"]
    assert (entry["id"], entry["status"]) == ("svc-a", "ERROR")
    assert entry["reason"] == "invalid file, still applying its last valid version"
    assert "not valid JSON" in entry["errors"][0]
    kept_dir = a.data_dir / "last-valid"
    assert stat.S_IMODE(kept_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept_dir.iterdir())


@pytest.mark.fault
def test_a_state_dir_removed_is_unknown_not_empty_and_is_watched_again(lab, vpnd_factory,
                                                                    figure):
    # A long resync: only inotify can find the new file in time.
    a, b = pair(lab, vpnd_factory, resync_interval=3600)
    ids = {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}
    saved = a.base / "saved-state"
    shutil.move(str(a.state_dir), str(saved))
    wait_for(lambda: a.status_document().get("warnings"), 10, what="a warning in status")
    assert "is missing" in a.status_document()["warnings"][0]
    # Nothing was unloaded, nothing went down.
    assert "c1" in a.vici(lab.a.gw).live_state().conns
    assert {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas} == ids
    a.wait_conn("svc-a", "c1", timeout=5)
    # It comes back empty, then gets a file of its own and the old one.
    a.state_dir.mkdir()
    wait_for(lambda: not a.status_document().get("warnings"), 10, what="the warning gone")
    t0 = time.monotonic()
    a.write("r2.json", service_doc("svc-r2", namespace=lab.a.gw, external_ip=lab.a.wan4,
                                   conns=[connection_doc("r2c1", initiator="response-only",
                                                         peer_cidrs=["198.51.100.0/25"],
                                                         peer_address="203.0.113.50",
                                                         peer_id="203.0.113.50")]))
    a.wait_conn("svc-r2", "r2c1", "DOWN", reason="waiting for the peer", timeout=15)
    figure("state dir removed and recreated: a new file applied in (s, resync hourly)",
           f"{time.monotonic() - t0:.2f}")
    assert "r2c1" in a.vici(lab.a.gw).live_state().conns


@pytest.mark.fault
def test_no_psk_reaches_anything_vpnd_writes_or_shows(lab, vpnd_factory):
    a, b = pair(lab, vpnd_factory)
    a.cli("status"), a.cli("plan"), a.cli("check")
    secret = PSK.encode()
    charon = CharonSpawner(str(a.run_dir), True).pid(lab.a.gw)
    assert charon is not None
    pids = [a.proc.pid, charon]
    for pid in pids:
        for what in ("cmdline", "environ"):
            assert secret not in open(f"/proc/{pid}/{what}", "rb").read(), (pid, what)
    holders = []
    for root in (a.run_dir, a.data_dir, a.base):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and a.state_dir not in path.parents:
                if secret in path.read_bytes():
                    holders.append(path)
    # Only the kept last valid version holds the PSK, mode 0600 in 0700.
    assert {p.parent for p in holders} <= {a.data_dir / "last-valid"}, holders
    for p in holders:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat(a.data_dir).st_mode) == 0o700


@pytest.mark.fault
def test_a_full_data_dir_loses_no_tunnel_and_vpnd_catches_up(lab, vpnd_factory, tmp_path):
    data = tmp_path / "small-data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(data)],
                   check=True)
    try:
        a, b = pair(lab, vpnd_factory, data_dir=str(data))
        filler = data / "filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass  # full
        # A change lands although its record cannot be written ...
        rotated = "survival-psk-rotated-0e6"
        for v, me, peer, side in ((b, lab.b, lab.a, "b"), (a, lab.a, lab.b, "a")):
            v.write("svc.json", service(f"svc-{side}", me, [connection("c1", me, peer,
                                                                       rotated)]))
        wait_for(lambda: any("cannot write" in e for e in
                             a.status_document().get("errors", [])), 30,
                 what="the full data_dir in status")
        a.wait_conn("svc-a", "c1", timeout=60)
        wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
        assert lab.ping(lab.a.host, lab.b.host4, count=2)
        assert a.proc.poll() is None
        # ... and once there is room, vpnd writes what it owes.
        filler.unlink()
        wait_for(lambda: not a.status_document().get("errors"), 30, what="the error gone")
        ids = {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}
        passes = a.reconcile_passes()
        assert a.stop() == 0
        a.start()  # it knows the change was applied: nothing is done again
        wait_for(lambda: a.reconcile_passes() > passes, 30, what="its first round")
        a.wait_conn("svc-a", "c1", timeout=30)
        assert {sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas} == ids
        changes = [line for line in a.log_path.read_text().splitlines()
                   if '"change applied"' in line and '"c1"' in line
                   and '"reason": "changed"' in line]
        assert len(changes) == 1, changes  # the PSK rotation, once
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
