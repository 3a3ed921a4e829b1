"""Who may declare a tunnel (trust.py): a state file or dir that others
can write, or that a stranger owns, is refused; one that others can read
is a warning. Real files and modes in a temporary directory (chown needs
root, as vpnd does)."""
from __future__ import annotations

import json
import os

import pytest

from lab.factory import service_doc
from vpnd.system import trust
from vpnd.state.statefiles import StateDir

STRANGER = 65534  # nobody
GOOD = json.dumps(service_doc())


def state_dir(tmp_path, mode=0o755):
    d = tmp_path / "state"
    d.mkdir()
    d.chmod(mode)
    return d


def put(d, name="svc.json", mode=0o600, owner=0):
    path = d / name
    path.write_text(GOOD)
    path.chmod(mode)
    os.chown(path, owner, -1)
    return path


def outcome(d, state_owner=None):
    """(services, error texts, warnings) of one scan."""
    state, _ = StateDir(str(d), state_owner=state_owner).scan()
    errors = [str(e) for errs in state.errors.values() for e in errs]
    return len(state.services), errors, state.warnings


@pytest.fixture(autouse=True)
def as_root():
    if os.geteuid() != 0:
        pytest.fail("these tests chown files: run them as root, as vpnd runs")


@pytest.mark.parametrize("mode, problem", [
    (0o666, "it is writable by its group and everyone (mode 0666)"),
    (0o620, "it is writable by its group (mode 0620)"),
    (0o602, "it is writable by everyone (mode 0602)"),
    (0o000, "it is not readable by its owner (mode 0000)"),
])
def test_a_file_others_can_write_or_its_owner_cannot_read_is_refused(tmp_path, mode, problem):
    d = state_dir(tmp_path)
    path = put(d, mode=mode)
    services, errors, _ = outcome(d)
    assert services == 0
    [error] = errors
    assert error.startswith(f"{path}: $: refused: {problem}"), error


def test_a_file_others_can_read_is_used_with_a_warning(tmp_path):
    d = state_dir(tmp_path)
    path = put(d, mode=0o644)
    services, errors, warnings = outcome(d)
    assert (services, errors) == (1, [])
    assert warnings == {str(path): "readable by its group and everyone (mode 0644), and it "
                                   "holds PSKs: chmod 0600"}
    path.chmod(0o600)
    assert outcome(d) == (1, [], {})


def test_a_file_owned_by_a_stranger_is_refused_unless_it_is_the_state_owner(tmp_path):
    d = state_dir(tmp_path)
    path = put(d, owner=STRANGER)
    services, [error], _ = outcome(d)
    assert services == 0
    assert error == (f"{path}: $: refused: it is owned by uid {STRANGER}, which is neither "
                     f"root nor state_owner: vpnd takes tunnels only from them")
    assert outcome(d, state_owner=STRANGER) == (1, [], {})


@pytest.mark.parametrize("mode, refused", [(0o777, True), (0o775, True), (0o1777, False)])
def test_a_state_dir_others_can_write_is_refused_unless_sticky(tmp_path, mode, refused):
    d = state_dir(tmp_path, mode)
    path = put(d)
    services, errors, _ = outcome(d)
    if refused:
        assert services == 0
        assert errors == [f"{path}: $: refused: state dir {d} is writable by "
                          f"{'its group and everyone' if mode & 0o002 else 'its group'} "
                          f"(mode {mode:04o}), who could put or replace state files there: "
                          f"chmod go-w, or +t"]
    else:
        assert (services, errors) == (1, [])


def test_a_kubernetes_secret_volume_with_default_mode_0400_passes(tmp_path):
    """The layout kubelet makes: a sticky world-writable mount point, a
    timestamped root-owned directory, ..data and each key as symlinks."""
    d = state_dir(tmp_path, 0o1777)
    stamp = d / "..2026_11_26_09_00_00.123456789"
    stamp.mkdir(mode=0o755)
    (stamp / "svc.json").write_text(GOOD)
    (stamp / "svc.json").chmod(0o400)
    (d / "..data").symlink_to(stamp.name)
    (d / "svc.json").symlink_to("..data/svc.json")
    assert outcome(d) == (1, [], {})


def test_a_link_into_a_directory_others_can_write_is_refused(tmp_path):
    d = state_dir(tmp_path)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    target = put(open_dir, "svc.json")
    (d / "svc.json").symlink_to(target)
    services, [error], _ = outcome(d)
    assert services == 0
    assert f"refused: directory {open_dir} is writable by its group and everyone" in error


def test_a_chmod_is_noticed_and_the_last_valid_version_stays(tmp_path):
    d = state_dir(tmp_path)
    path = put(d)
    statedir = StateDir(str(d))
    state, _ = statedir.scan()
    assert list(state.services) == [str(path)]
    path.chmod(0o666)
    state, changed = statedir.scan()
    assert changed == {str(path)}
    assert "writable by its group and everyone" in str(state.errors[str(path)][0])
    assert list(state.services) == [str(path)]  # its last valid version stands
    path.chmod(0o600)
    state, _ = statedir.scan()
    assert not state.errors


def test_trusted_owners_are_root_vpnd_and_the_state_owner():
    assert trust.trusted_owners(0, None) == {0}
    assert trust.trusted_owners(1000, 2000) == {0, 1000, 2000}
