"""The state directory: last valid versions, ignored files, clashes."""
from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from lab.factory import connection_doc, service_doc
from vpnd.state import kept_copies, one_file
from vpnd.state.statefiles import StateDir, is_state_file


def svc(sid, conn_ids=("c1",), ns="qrouter-r1"):
    return service_doc(sid, [connection_doc(c, "state-psk") for c in conn_ids], namespace=ns)


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    # Same-second rewrites of equal size must still be noticed.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_editor_and_temporary_files_are_ignored():
    assert is_state_file("svc.json")
    for name in (".svc.json.swp", ".svc.json", "svc.json~", "#svc.json#", "svc.yaml",
                 "svc.json.tmp"):
        assert not is_state_file(name), name


def test_invalid_file_keeps_its_last_valid_version(tmp_path):
    d = StateDir(str(tmp_path))
    write(tmp_path / "a.json", svc("a"))
    state, changed = d.scan()
    assert changed == {str(tmp_path / "a.json")}
    good = state.services[str(tmp_path / "a.json")]

    write(tmp_path / "a.json", "{ not json")
    state, changed = d.scan()
    assert state.services[str(tmp_path / "a.json")] == good
    assert "not valid JSON" in str(state.errors[str(tmp_path / "a.json")][0])
    assert state.held == frozenset()


def test_invalid_file_never_seen_valid_is_held(tmp_path):
    write(tmp_path / "a.json", "[]")
    state, _ = StateDir(str(tmp_path)).scan()
    assert state.held == {str(tmp_path / "a.json")} and not state.services


def test_unchanged_files_are_not_reparsed(tmp_path):
    d = StateDir(str(tmp_path))
    write(tmp_path / "a.json", svc("a"))
    d.scan()
    state, changed = d.scan()
    assert changed == set() and len(state.services) == 1


def test_deleted_file_is_reported_as_changed(tmp_path):
    d = StateDir(str(tmp_path))
    write(tmp_path / "a.json", svc("a"))
    d.scan()
    (tmp_path / "a.json").unlink()
    state, changed = d.scan()
    assert changed == {str(tmp_path / "a.json")} and not state.services


def test_ids_clashing_across_files_invalidate_the_later_file(tmp_path):
    write(tmp_path / "a.json", svc("a", ["c1"]))
    write(tmp_path / "b.json", svc("a", ["c1"]))
    state, _ = StateDir(str(tmp_path)).scan()
    assert list(state.services) == [str(tmp_path / "a.json")]
    messages = [str(e) for e in state.errors[str(tmp_path / "b.json")]]
    assert any("$.id: service id 'a' is already used by" in m for m in messages)
    assert any("$.ipsec_site_connections[0].id: connection id 'c1' is already used in "
               "namespace qrouter-r1" in m for m in messages)


def test_same_connection_id_in_other_namespaces_is_fine(tmp_path):
    write(tmp_path / "a.json", svc("a", ["c1"], ns="ns1"))
    write(tmp_path / "b.json", svc("b", ["c1"], ns="ns2"))
    state, _ = StateDir(str(tmp_path)).scan()
    assert len(state.services) == 2 and not state.errors


def test_one_bad_connection_is_its_own_error_and_the_others_apply(tmp_path):
    path = tmp_path / "a.json"
    doc = svc("a", ("c1", "c2", "c3"))
    doc["ipsec_site_connections"][1]["mtu"] = "huge"
    write(path, doc)
    state, _ = StateDir(str(tmp_path)).scan()
    assert [c.id for c in state.services[str(path)].connections] == ["c1", "c3"]
    assert str(path) not in state.errors  # the service is valid
    [problem] = state.broken[str(path)]["c2"]
    assert str(problem) == (f"{path}: $.ipsec_site_connections[1].mtu: must be an integer, "
                            "not a string")


def test_a_connection_that_turns_bad_keeps_its_last_valid_version(tmp_path):
    path = tmp_path / "a.json"
    d = StateDir(str(tmp_path))
    write(path, svc("a", ("c1", "c2")))
    before = d.scan()[0].services[str(path)]
    doc = svc("a", ("c1", "c2", "c3"))
    doc["ipsec_site_connections"][1]["peer_cidrs"] = ["not a cidr"]
    write(path, doc)
    state, _ = d.scan()
    conns = {c.id: c for c in state.services[str(path)].connections}
    assert set(conns) == {"c1", "c2", "c3"}  # c3 is new and valid
    assert conns["c2"] == before.connections[1]  # c2 as it last was
    assert set(state.broken[str(path)]) == {"c2"}


def test_a_bad_connection_without_a_readable_id_is_named_by_its_path(tmp_path):
    path = tmp_path / "a.json"
    doc = svc("a", ("c1",))
    doc["ipsec_site_connections"].append({"id": {"not": "an id"}})
    write(path, doc)
    state, _ = StateDir(str(tmp_path)).scan()
    assert [c.id for c in state.services[str(path)].connections] == ["c1"]
    assert list(state.broken[str(path)]) == ["$.ipsec_site_connections[1]"]


def test_a_bad_service_value_makes_the_service_invalid_under_its_ids(tmp_path):
    path = tmp_path / "a.json"
    doc = svc("a", ("c1", "c2"))
    doc["admin_state_up"] = "maybe"
    write(path, doc)
    state, _ = StateDir(str(tmp_path)).scan()
    assert str(path) not in state.services
    assert "admin_state_up" in str(state.errors[str(path)][0])
    assert state.ids[str(path)] == ("a", ("c1", "c2"))


def test_last_valid_copies_are_written_off_the_loop_in_the_order_asked(tmp_path, monkeypatch):
    state_dir, keep = tmp_path / "state", tmp_path / "data" / "last-valid"
    state_dir.mkdir()
    for i in range(5):
        write(state_dir / f"s{i}.json", svc(f"s{i}", (f"c{i}",)))
    d = StateDir(str(state_dir), keep_dir=str(keep), keep=True)
    d.scan()
    # The writer is held: the loop's flush returns all the same (at 10,000
    # files the copies took 2 s, and a change waited for them).
    gate, real = threading.Event(), kept_copies.write_atomically
    monkeypatch.setattr(kept_copies, "write_atomically",
                        lambda *a, **k: (gate.wait(5), real(*a, **k)))
    d.flush_kept()
    assert not list(keep.glob("*.json"))
    # A file that goes after its copy was queued: its copy is not left behind.
    (state_dir / "s1.json").unlink()
    d.scan()
    gate.set()
    d.close()  # a stop waits for the copies owed
    # Compared by name, then content (a failure must not print the PSKs).
    want = {kept_copies.kept_path(str(keep), str(state_dir / f"s{i}.json")): i
            for i in (0, 2, 3, 4)}
    assert sorted(str(p) for p in keep.glob("*.json")) == sorted(want)
    assert all(open(kept, "rb").read() == (state_dir / f"s{i}.json").read_bytes()
               for kept, i in want.items())
    assert {stat.S_IMODE(os.stat(kept).st_mode) for kept in want} == {0o600}


def test_a_file_rewritten_with_the_same_bytes_is_not_parsed_again(tmp_path, monkeypatch):
    """An agent's full sync rewrites every file: same bytes, new inode."""
    paths = [tmp_path / f"s{i}.json" for i in range(3)]
    for i, path in enumerate(paths):
        write(path, svc(f"s{i}", (f"c{i}",)))
    d = StateDir(str(tmp_path))
    d.scan()
    parsed = []
    real = one_file.parse_confined
    monkeypatch.setattr(one_file, "parse_confined", lambda *a: (parsed.append(a[1]),
                                                                real(*a))[1])
    for path in paths:  # by atomic rename, as agents write
        tmp = tmp_path / f".{path.name}.tmp"
        tmp.write_bytes(path.read_bytes())
        os.replace(tmp, path)
    assert d.scan()[1] == set() and d.scan({str(p) for p in paths})[1] == set()
    assert parsed == []
    # Other bytes are read again, and so are the same bytes under another
    # mode (who may write a file decides whether it may declare tunnels).
    write(paths[0], svc("s0", ("c0", "c9")))
    os.chmod(paths[1], 0o640)
    assert d.scan()[1] == {str(paths[0]), str(paths[1])}
    assert set(parsed) == {str(paths[0]), str(paths[1])}


def test_beyond_state_files_max_new_files_wait_and_those_read_keep_their_place(tmp_path):
    """A flood of files cannot cost without bound; and a new file that
    sorts first must not push out a file whose tunnel already works."""
    from lab.factory import service_doc, write_service
    from vpnd.state.statefiles import StateDir
    for name in ("m.json", "n.json", "o.json"):
        write_service(tmp_path, name, service_doc(f"svc-{name[0]}", namespace=f"ns-{name[0]}"))
        os.chmod(tmp_path / name, 0o600)
    sd = StateDir(str(tmp_path), max_files=3)
    state, _ = sd.scan()
    assert len(state.services) == 3 and sd.not_read == 0
    for name in ("a.json", "b.json"):
        write_service(tmp_path, name, service_doc(f"svc-{name[0]}", namespace=f"ns-{name[0]}"))
        os.chmod(tmp_path / name, 0o600)
    # As inotify names them (a scoped look) and as a resync lists them.
    for only in ({str(tmp_path / "a.json"), str(tmp_path / "b.json")}, None):
        state, _ = sd.scan(only)
        assert sorted(os.path.basename(p) for p in state.services) == \
            ["m.json", "n.json", "o.json"]
        assert sd.not_read == 2 and "2 state files not read" in sd.too_many()
    (tmp_path / "n.json").unlink()
    state, _ = sd.scan()
    assert sorted(os.path.basename(p) for p in state.services) == ["a.json", "m.json", "o.json"]
    assert sd.not_read == 1


def test_a_kept_copy_planted_as_a_link_is_not_believed(tmp_path):
    """A restarted vpnd brings back what a broken file last said validly
    from data_dir; a link planted there must not declare tunnels."""
    state_dir, keep = tmp_path / "state", tmp_path / "data" / "last-valid"
    state_dir.mkdir()
    keep.mkdir(parents=True)
    path = state_dir / "s.json"
    write(path, svc("s", ("c1",)))
    elsewhere = tmp_path / "planted.json"
    write(elsewhere, svc("s", ("planted",)))
    os.symlink(elsewhere, kept_copies.kept_path(str(keep), str(path)))
    path.write_text("{ broken")
    os.chmod(path, 0o600)
    state, _ = StateDir(str(state_dir), keep_dir=str(keep), keep=False).scan()
    assert str(path) not in state.services  # no last valid version believed
    assert str(path) in state.errors


def test_an_id_named_by_three_files_goes_to_each_in_turn(tmp_path):
    # One claimant is held as a path, more as a tuple of them: the
    # earliest standing file keeps the id as the others come and go.
    d = StateDir(str(tmp_path))
    for name in ("a", "b", "c"):
        write(tmp_path / f"{name}.json", svc("s", ["c1"]))
    assert list(d.scan()[0].services) == [str(tmp_path / "a.json")]
    (tmp_path / "a.json").unlink()
    assert list(d.scan()[0].services) == [str(tmp_path / "b.json")]
    (tmp_path / "b.json").unlink()
    state, _ = d.scan()
    assert list(state.services) == [str(tmp_path / "c.json")] and not state.errors
    (tmp_path / "c.json").unlink()
    d.scan()
    assert d._claims._books == {} and d._claims._claimed == {}


def test_a_file_without_problems_holds_no_parsed_of_its_own(tmp_path):
    from vpnd.state.file_state import CLEAN
    path = tmp_path / "a.json"
    d = StateDir(str(tmp_path))
    write(path, svc("a"))
    d.scan()
    assert d._files[str(path)].parsed is CLEAN
    doc = svc("a", ("c1", "c2"))
    doc["ipsec_site_connections"][1]["mtu"] = "huge"
    write(path, doc)
    state, _ = d.scan()
    assert d._files[str(path)].parsed is not CLEAN and set(state.broken[str(path)]) == {"c2"}
    write(path, svc("a"))
    state, _ = d.scan()
    assert d._files[str(path)].parsed is CLEAN and not state.broken and not state.errors
    assert CLEAN.errors == [] and CLEAN.broken == {} and CLEAN.warnings == []


def _copies_as_written(state_dir, keep, names):
    want = {kept_copies.kept_path(str(keep), str(state_dir / n)): n for n in names}
    assert sorted(str(p) for p in keep.glob("*.json")) == sorted(want)
    return all(open(kept, "rb").read() == (state_dir / n).read_bytes()
               for kept, n in want.items())


def _kept_state_dir(tmp_path, n: int):
    """n one-connection files and a StateDir that keeps their copies."""
    state_dir, keep = tmp_path / "state", tmp_path / "data" / "last-valid"
    state_dir.mkdir()
    names = [f"s{i}.json" for i in range(n)]
    for i, name in enumerate(names):
        write(state_dir / name, svc(f"s{i}", (f"c{i}",)))
    return state_dir, keep, names, StateDir(str(state_dir), keep_dir=str(keep), keep=True)


def test_noted_copies_wait_in_a_spool_not_in_memory(tmp_path, monkeypatch):
    # Spilled a few hundred bytes at a time here (256 kB in vpnd): what is
    # written is what was read, across the spills; vpnd holds only where
    # each copy is, and the writer closes the spool once it is done.
    monkeypatch.setattr(kept_copies.Spool, "SPILL", 300)
    monkeypatch.setattr(kept_copies, "SPOOL_FROM", 2)  # 100 in vpnd
    state_dir, keep, names, d = _kept_state_dir(tmp_path, 7)
    d.scan()
    copies = d._copies
    assert all(isinstance(v, int) for v in copies._noted.values())
    spool = copies._spool
    assert spool.size > 300 and spool._held_size < 300  # spilled, what is held bounded
    assert os.listdir(keep) == []  # the spool has no name
    d.flush_kept()
    d.close()
    assert _copies_as_written(state_dir, keep, names)
    with pytest.raises(OSError):
        os.fstat(spool.fd)  # closed


def test_without_a_spool_noted_copies_are_held_and_written_all_the_same(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(kept_copies.Spool, "open",
                        classmethod(lambda cls, keep_dir: opened.append(keep_dir)))
    monkeypatch.setattr(kept_copies, "SPOOL_FROM", 0)
    state_dir, keep, names, d = _kept_state_dir(tmp_path, 3)
    d.scan()
    assert all(isinstance(v, bytes) for v in d._copies._noted.values())
    assert len(opened) == 1  # tried once a burst, not at every copy noted
    d.close()
    assert _copies_as_written(state_dir, keep, names)


def test_a_spool_that_cannot_be_written_stops_no_read_and_is_said_once(tmp_path, monkeypatch,
                                                                        capsys):
    """A full disk under data_dir: the copies cannot be kept (nor could
    they be written beside the spool), but every file is read and served,
    and the flush says so in one line."""
    monkeypatch.setattr(kept_copies.Spool, "SPILL", 300)
    monkeypatch.setattr(kept_copies, "SPOOL_FROM", 2)

    def full(fd, data, offset):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(kept_copies.os, "pwrite", full)
    _, keep, _, d = _kept_state_dir(tmp_path, 7)
    state, _ = d.scan()
    assert len(state.services) == 7
    assert "No space left" in d._copies._spool.error
    d.flush_kept()
    d.close()
    assert list(keep.glob("*.json")) == []
    out = capsys.readouterr().out
    assert out.count("last valid versions not kept") == 1 and "No space left" in out


def test_an_unreadable_file_is_not_read_again_while_its_stamp_stands(tmp_path):
    """A dangling link or a loop: its error is shown once, and a resync
    (a full scan) does not count it changed every time."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    for i in range(70):  # past 64: stat()ed by name in the opened directory
        write(state_dir / f"s{i}.json", svc(f"s{i}", (f"c{i}",)))
    (state_dir / "bad.json").symlink_to(tmp_path / "nowhere.json")
    d = StateDir(str(state_dir))
    _, changed = d.scan()
    assert str(state_dir / "bad.json") in changed
    assert d.scan()[1] == set() and d.scan()[1] == set()
