"""Hostile files in the state dir of a vpnd with a tunnel up: each one is
an error naming the file in status, and the tunnel does not notice."""
from __future__ import annotations

import codecs
import json
import os
import time

import pytest

from conftest import one_tunnel, require_system
from lab.factory import service_doc
from lab.testbed import wait_for

PSK = "hostile-files-psk-1c9"


def hostile(state_dir, outside) -> dict:
    """name -> a function that puts that hostile file in place."""
    good = json.dumps(service_doc("svc-x", namespace="ns-x"))
    bad_outside = outside / "bad.json"
    bad_outside.write_text("{ not json")

    def write(name, data: bytes):
        return lambda: (state_dir / name).write_bytes(data)

    def valid_but(name, mode=0o600, owner=0):
        """A valid service of its own, with a mode or owner that must refuse it."""
        def make():
            path = state_dir / name
            path.write_text(json.dumps(service_doc(f"svc-{name[:-5]}", namespace="ns-x")))
            path.chmod(mode)
            os.chown(path, owner, -1)
        return make

    return {
        "fifo.json": lambda: os.mkfifo(state_dir / "fifo.json"),
        "dir.json": lambda: (state_dir / "dir.json").mkdir(),
        "loop.json": lambda: (state_dir / "loop.json").symlink_to(state_dir / "loop.json"),
        "zero.json": lambda: (state_dir / "zero.json").symlink_to("/dev/zero"),
        "dangling.json": lambda: (state_dir / "dangling.json").symlink_to(outside / "none"),
        "outside.json": lambda: (state_dir / "outside.json").symlink_to(bad_outside),
        "big.json": lambda: os.truncate(_touch(state_dir / "big.json"), 50 * 1024 * 1024),
        "deep.json": write("deep.json", b"[" * 200_000 + b"]" * 200_000),
        "hugeint.json": write("hugeint.json", b'{"id": "h", "mtu": ' + b"7" * 100_000 + b"}"),
        "nan.json": write("nan.json", b'{"id": "n", "mtu": NaN}'),
        "infinity.json": write("infinity.json", b'{"id": "i", "mtu": Infinity}'),
        "dupkeys.json": write("dupkeys.json", b'{"id": "d1", "id": "d2"}'),
        "bom.json": write("bom.json", codecs.BOM_UTF8 + good.encode()),
        "utf16.json": write("utf16.json", codecs.BOM_UTF16_LE + good.encode("utf-16-le")),
        "empty.json": write("empty.json", b""),
        "mode000.json": valid_but("mode000.json", mode=0o000),
        "writable.json": valid_but("writable.json", mode=0o666),
        "stranger.json": valid_but("stranger.json", owner=65534),
    }


# What the error must say, where the file alone would not show it.
EXPECT = {"mode000.json": "not readable by its owner (mode 0000)",
          "writable.json": "writable by its group and everyone (mode 0666)",
          "stranger.json": "owned by uid 65534"}


def _touch(path):
    path.touch()
    return path


def error_of(v, path) -> str | None:
    for s in (v.status_document() or {}).get("services", []):
        if s["file"] == str(path) and s["status"] == "ERROR":
            return " ".join(s.get("errors", []))
    return None


@pytest.mark.fault
def test_each_hostile_file_is_an_error_by_name_and_the_tunnel_does_not_notice(
        lab, vpnd_factory, tmp_path, figure):
    require_system()
    a, b = one_tunnel(lab, vpnd_factory, PSK)
    before = {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas}
    outside = tmp_path / "outside"
    outside.mkdir()

    seconds = {}
    for name, make in hostile(a.state_dir, outside).items():
        t0 = time.monotonic()
        make()
        path = a.state_dir / name
        error = wait_for(lambda: error_of(a, path), 10, interval=0.02,
                         what=f"an error for {name} in status")
        seconds[name] = round(time.monotonic() - t0, 3)
        assert str(path) in error, error
        assert EXPECT.get(name, "") in error, error
        assert a.proc.poll() is None, f"vpnd exited after {name}:\n{a.log_tail()}"
    figure("hostile files, each an error in status within (s, slowest)",
           f"{max(seconds.values()):.3f} of {len(seconds)} files")

    # The good tunnel never noticed: same IKE_SA, traffic passes.
    assert {sa.name: sa.uniqueid for sa in a.vici(lab.a.gw).live_state().sas} == before
    assert lab.ping(lab.a.host, lab.b.host4, count=3)
    a.wait_conn("svc-a", "c1", timeout=5)
    # The commands an operator runs neither hang nor crash on them.
    check = a.cli("check")
    assert check.returncode == 1 and "Traceback" not in check.stderr, check.stderr
    assert f"{a.state_dir / 'fifo.json'}: $: not a regular file (a FIFO)" in check.stdout
    plan = a.cli("plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    # Log volume is bounded: a few lines per hostile file, not megabytes.
    assert a.log_path.stat().st_size < 200_000
