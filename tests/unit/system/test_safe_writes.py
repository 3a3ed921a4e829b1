"""Writes cannot be redirected (issue 20): whatever someone planted at a
name vpnd writes, or at the temporary names it used to use, is replaced
or refused, never followed. Each case plants links to a victim file
outside and checks the victim afterwards, byte for byte."""
from __future__ import annotations

import os
import stat

import pytest

from conftest import VICTIM
from vpnd.system import files
from vpnd.state.kept_copies import KeptCopies, kept_path
from vpnd.base.conns import AppliedConn
from vpnd.apply.fingerprint import KEY_FILE
from vpnd.apply.record import JOURNAL_FILE, RECORD_FILE, Record

STRANGER = 65534  # nobody


@pytest.fixture
def own(tmp_path):
    d = tmp_path / "own"
    d.mkdir(mode=0o700)
    return d


def guessable_names(path) -> list[str]:
    """The temporary names a writer might use: the old `{path}.tmp.{pid}`
    for every pid near ours and the low ones, and the usual suffixes."""
    pids = {*range(1, 2000), *range(max(1, os.getpid() - 500), os.getpid() + 500)}
    return [f"{path}.tmp", f"{path}~", f"{path}.new", *(f"{path}.tmp.{pid}" for pid in pids)]


def plant_links(names, target) -> None:
    for name in names:
        os.symlink(target, name)


def test_links_at_every_guessable_temporary_name_are_not_followed(own, victim):
    target = own / "vpnd.prom"
    names = guessable_names(target)
    plant_links(names, victim)
    files.write_atomically(str(target), b"new content\n")
    assert victim.read_bytes() == VICTIM
    assert target.read_bytes() == b"new content\n"
    assert not target.is_symlink()
    # The planted links are left as they were: nothing was written through them.
    assert all(os.readlink(n) == str(victim) for n in names)


def test_a_link_at_the_name_itself_is_replaced_not_followed(own, victim):
    target = own / "status.json"
    target.symlink_to(victim)
    files.write_atomically(str(target), b"{}\n", 0o600)
    assert victim.read_bytes() == VICTIM
    assert not target.is_symlink() and target.read_bytes() == b"{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_fifo_at_the_name_is_replaced_and_hangs_nothing(own):
    target = own / "status.json"
    os.mkfifo(target)
    files.write_atomically(str(target), b"{}\n")
    assert stat.S_ISREG(os.lstat(target).st_mode) and target.read_bytes() == b"{}\n"


def test_a_failed_write_leaves_no_temporary_file(own, monkeypatch):
    target = own / "x.json"

    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        files.write_atomically(str(target), b"x")
    assert list(own.iterdir()) == []


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "fifo", "stranger's", "writable"])
def test_a_file_for_appends_that_is_not_plainly_ours_is_replaced(own, victim, plant):
    path = own / "charon.out"
    if plant == "symlink":
        path.symlink_to(victim)
    elif plant == "hardlink":
        os.link(victim, path)
    elif plant == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(VICTIM)
        if plant == "stranger's":
            _as_root()
            os.chown(path, STRANGER, -1)
        else:
            path.chmod(0o666)
    fd = files.open_append(str(path), 0o644)
    try:
        os.write(fd, b"appended\n")
    finally:
        os.close(fd)
    assert victim.read_bytes() == VICTIM
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == os.geteuid()
    assert path.read_bytes() == b"appended\n"


def test_a_file_for_appends_that_is_ours_is_appended_to(own):
    path = own / "applied.journal"
    path.write_bytes(b"first\n")
    path.chmod(0o600)
    fd = files.open_append(str(path), 0o600)
    os.write(fd, b"second\n")
    os.close(fd)
    assert path.read_bytes() == b"first\nsecond\n"


def conn(name):
    return AppliedConn(name, "svc", "a.json", "fp", f"vpnd-{name}")


def test_the_record_journal_is_not_followed_through_a_planted_link(own, victim):
    r = Record(str(own)).load()
    journal = own / JOURNAL_FILE
    journal.symlink_to(victim)
    r.set("ns", "c1", conn("c1"))
    assert r.problem is None
    assert victim.read_bytes() == VICTIM
    assert not journal.is_symlink() and b'"c1"' in journal.read_bytes()
    assert dict(Record(str(own)).load().applied("ns")) == {"c1": conn("c1")}


def test_the_record_and_its_key_replace_links_planted_at_their_names(own, victim):
    r = Record(str(own)).load()
    (own / RECORD_FILE).symlink_to(victim)
    (own / f"{RECORD_FILE}.tmp.{os.getpid()}").symlink_to(victim)
    (own / f"{KEY_FILE}.tmp.{os.getpid()}").symlink_to(victim)
    r.fingerprint({"a": 1})  # the first one makes the key
    r.set("ns", "c1", conn("c1"))
    r.save()
    assert r.problem is None
    assert victim.read_bytes() == VICTIM
    assert not (own / RECORD_FILE).is_symlink()
    assert stat.S_IMODE((own / KEY_FILE).stat().st_mode) == 0o600
    assert dict(Record(str(own)).load().applied("ns")) == {"c1": conn("c1")}


@pytest.mark.parametrize("name", [RECORD_FILE, JOURNAL_FILE, KEY_FILE])
def test_a_record_file_that_is_a_link_is_not_read_through_it(own, victim, name):
    """A planted key would be one its planter knows (PSKs could then be
    guessed from the fingerprints); a planted record, tunnels vpnd would
    take for its own. Refused by name, not read."""
    (own / name).symlink_to(victim)
    with pytest.raises(files.NotOurs, match=f"{own / name} is a symlink"):
        Record(str(own)).load()


def test_loading_the_record_writes_nothing_until_a_fingerprint_is_needed(tmp_path):
    data = tmp_path / "data"
    r = Record(str(data)).load()
    assert not data.exists()  # vpnd judges data_dir first (own_dirs.py)
    fp = r.fingerprint({"a": 1})
    assert (data / KEY_FILE).exists()
    assert Record(str(data)).load().fingerprint({"a": 1}) == fp


def test_kept_copies_replace_links_planted_at_their_names(own, victim):
    keep = own / "last-valid"
    keep.mkdir(mode=0o700)
    kept = kept_path(str(keep), "/etc/vpnd/state.d/a.json")
    os.symlink(victim, kept)
    plant_links([f"{kept}.tmp.{os.getpid()}", f"{kept}.tmp"], victim)
    copies = KeptCopies(str(keep))
    copies.write([("/etc/vpnd/state.d/a.json", b'{"psk": "kept"}')])
    copies.close()
    assert victim.read_bytes() == VICTIM
    assert not os.path.islink(kept) and open(kept, "rb").read() == b'{"psk": "kept"}'


def test_kept_copies_are_not_written_into_a_linked_directory(own, victim):
    keep = own / "last-valid"
    keep.symlink_to(victim.parent)
    copies = KeptCopies(str(keep))
    copies.write([("/etc/vpnd/state.d/a.json", b'{"psk": "kept"}')])
    copies.close()
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim"]


def _as_root():
    if os.geteuid() != 0:
        pytest.fail("this case chowns a file: run it as root, as vpnd runs")


def test_written_in_pieces_and_a_piece_that_fails_leaves_the_old_file(own):
    target = own / "status.json"
    files.write_atomically(str(target), (b"{", b'"a":1', b"}\n"))
    assert target.read_bytes() == b'{"a":1}\n'

    def pieces():
        yield b"{"
        raise ValueError("the next piece could not be made")
    with pytest.raises(ValueError):
        files.write_atomically(str(target), pieces())
    assert target.read_bytes() == b'{"a":1}\n' and list(own.iterdir()) == [target]
