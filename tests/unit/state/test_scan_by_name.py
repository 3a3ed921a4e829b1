"""A full scan of many files stats them by name in the directory opened
once (statefiles._look_all): it sees every change a stat by path would,
a file gone, a file new, and one that only changed owner or mode."""
from __future__ import annotations

import json
import os

from lab.factory import connection_doc, service_doc
from vpnd.state.statefiles import StateDir

N = 100  # above the count from which a scan stats by name


def write(path, sid, psk="scan-psk"):
    path.write_text(json.dumps(service_doc(sid, [connection_doc(f"c-{sid}", psk)],
                                           namespace="qr-scan")))
    path.chmod(0o600)


def stats_by_name(monkeypatch) -> list:
    """The dir_fd of every os.stat the scan makes (an int: by name)."""
    seen, real = [], os.stat

    def stat(path, *args, dir_fd=None, **kw):
        seen.append(dir_fd)
        return real(path, *args, dir_fd=dir_fd, **kw)
    monkeypatch.setattr(os, "stat", stat)
    return seen


def test_a_full_scan_by_name_sees_each_kind_of_change(tmp_path, monkeypatch):
    seen = stats_by_name(monkeypatch)
    for i in range(N):
        write(tmp_path / f"s{i:03d}.json", f"s{i}")
    d = StateDir(str(tmp_path))
    state, changed = d.scan()
    assert len(changed) == N and len(state.services) == N
    assert d.scan()[1] == set()  # nothing moved: nothing changed
    changed_file, gone, new, chmod = (tmp_path / n for n in
                                      ("s010.json", "s020.json", "s999.json", "s030.json"))
    write(changed_file, "s10", psk="scan-psk-2")
    st = os.stat(changed_file)
    os.utime(changed_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    gone.unlink()
    write(new, "s999")
    chmod.chmod(0o644)  # readable by others: its standing (a warning) moves
    state, changed = d.scan()
    assert changed == {str(changed_file), str(gone), str(new), str(chmod)}
    assert str(gone) not in state.services and str(new) in state.services
    assert d.scan()[1] == set()
    assert sum(isinstance(fd, int) for fd in seen) >= 4 * N  # by name, each scan


def test_a_scan_whose_directory_cannot_be_opened_stats_by_path(tmp_path, monkeypatch):
    for i in range(N):
        write(tmp_path / f"s{i:03d}.json", f"s{i}")
    d = StateDir(str(tmp_path))
    d.scan()
    real_open = os.open

    def refused(path, flags, *args, **kw):
        if flags & os.O_DIRECTORY:
            raise PermissionError(13, "refused for the test")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refused)
    seen = stats_by_name(monkeypatch)
    write(tmp_path / "s005.json", "s5", psk="scan-psk-3")
    st = os.stat(tmp_path / "s005.json")
    os.utime(tmp_path / "s005.json", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert d.scan()[1] == {str(tmp_path / "s005.json")}
    assert len(seen) >= N and not any(isinstance(fd, int) for fd in seen)  # by path
