"""vpnd's own directories (run_dir, data_dir, the metrics textfile's) are
judged before vpnd writes there (trust.own_dir_refusal, own_dirs.py): one
that others may write, or that a stranger owns, is refused with a message
that names it and says how to fix it. Real directories and modes under a
temporary directory (chown needs root, as vpnd has)."""
from __future__ import annotations

import os
import stat

import pytest

from vpnd.system import files, own_dirs, trust
from vpnd.base.config import Config, MetricsConfig

STRANGER = 65534  # nobody
TRUSTED = frozenset({0, os.geteuid()})


@pytest.fixture(autouse=True)
def as_root():
    if os.geteuid() != 0:
        pytest.fail("these tests chown directories: run them as root, as vpnd runs")


@pytest.fixture
def top(tmp_path):
    d = tmp_path / "top"
    d.mkdir(mode=0o755)
    return d


def judged(path) -> str | None:
    chain, exists = files.dir_chain(str(path))
    return trust.own_dir_refusal(chain, TRUSTED, f"run_dir {path}", exists)


def make(path, mode, owner=0):
    path.mkdir(exist_ok=True)
    path.chmod(mode)
    os.chown(path, owner, -1)
    return path


@pytest.mark.parametrize("mode, refused", [
    (0o700, None), (0o755, None), (0o750, None),
    (0o777, "is writable by its group and everyone (mode 0777)"),
    (0o1777, "is writable by its group and everyone (mode 1777)"),  # sticky is not enough
    (0o775, "is writable by its group (mode 0775)"),
    (0o757, "is writable by everyone (mode 0757)"),
])
def test_a_dir_of_vpnd_s_own_that_others_may_write_is_refused_sticky_or_not(top, mode, refused):
    run = make(top / "run", mode)
    problem = judged(run)
    if refused is None:
        assert problem is None
    else:
        assert problem.startswith(f"run_dir {run} {refused}"), problem
        assert problem.endswith(f"chmod go-w {run}"), problem


def test_a_dir_a_stranger_owns_is_refused(top):
    run = make(top / "run", 0o755, owner=STRANGER)
    assert judged(run) == (f"run_dir {run} is owned by uid {STRANGER}, who could replace "
                           f"vpnd's files, sockets and pid files in it: chown root {run}")


@pytest.mark.parametrize("mode, owner, refused", [
    (0o755, 0, None),
    (0o1777, 0, None),  # /tmp: nobody can rename what is not theirs
    (0o777, 0, "is writable by its group and everyone (mode 0777)"),
    (0o775, 0, "is writable by its group (mode 0775)"),
    (0o755, STRANGER, f"is owned by uid {STRANGER}"),
])
def test_a_parent_others_may_write_is_refused_unless_sticky(top, mode, owner, refused):
    parent = make(top / "parent", mode, owner)
    run = make(parent / "run", 0o755)
    problem = judged(run)
    if refused is None:
        assert problem is None
    else:
        assert problem.startswith(f"directory {parent}, above run_dir {run}, {refused}"), problem


def test_a_link_on_the_way_is_judged_and_so_is_its_target(top):
    real = make(top / "real", 0o755)
    make(real / "run", 0o755)
    (top / "link").symlink_to(real)
    assert judged(top / "link" / "run") is None
    os.chown(top / "link", STRANGER, -1, follow_symlinks=False)
    assert f"{top / 'link'}, on the way to run_dir" in judged(top / "link" / "run")
    os.chown(top / "link", 0, -1, follow_symlinks=False)
    (real / "run").chmod(0o777)  # the target is what vpnd writes in
    assert judged(top / "link" / "run").endswith(f"chmod go-w {real / 'run'}")
    # The dir itself a link into a dir others may write: refused too.
    open_dir = make(top / "open", 0o777)
    (top / "run-link").symlink_to(open_dir)
    assert "is writable by its group and everyone" in judged(top / "run-link")


def test_a_missing_dir_is_judged_where_it_would_be_made(top):
    assert judged(top / "missing" / "run") is None
    sticky = make(top / "tmp", 0o1777)
    problem = judged(sticky / "run")
    assert problem.startswith(f"run_dir {sticky / 'run'} does not exist, and {sticky}, "
                              f"where it would be made, is writable by"), problem


def config(top, run, data, textfile=None) -> Config:
    return Config(state_dir=str(top / "state"), run_dir=str(run), data_dir=str(data),
                  metrics=MetricsConfig(textfile=textfile))


def test_own_dirs_are_made_with_their_modes_and_pass(top):
    old = os.umask(0o022)
    try:
        assert own_dirs.refusal(config(top, top / "run", top / "data")) is None
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(top / "run").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(top / "data").st_mode) == 0o700


@pytest.mark.parametrize("which", ["run_dir", "data_dir", "textfile"])
def test_a_world_writable_own_dir_is_refused_and_nothing_is_made_in_it(top, which):
    dirs = {name: make(top / name, 0o777 if name == which else 0o755)
            for name in ("run_dir", "data_dir", "textfile")}
    problem = own_dirs.refusal(config(top, dirs["run_dir"], dirs["data_dir"],
                                      str(dirs["textfile"] / "vpnd.prom")))
    what = "metrics.textfile's directory" if which == "textfile" else which
    assert problem.startswith(f"{what} {dirs[which]} is writable by its group and everyone"), \
        problem
    assert f"chmod go-w {dirs[which]}" in problem
    assert all(not any(d.iterdir()) for d in dirs.values())


def test_nothing_is_made_under_a_parent_others_may_write(top):
    parent = make(top / "open", 0o777)
    problem = own_dirs.refusal(config(top, parent / "run", top / "data"))
    assert problem == (f"run_dir {parent / 'run'} does not exist, and {parent}, where it "
                       f"would be made, is writable by its group and everyone (mode 0777): "
                       f"someone else could make it first: chmod go-w {parent}, or make it "
                       f"yourself as root")
    assert not (parent / "run").exists() and not (top / "data").exists()


def test_a_missing_textfile_dir_is_no_refusal(top):
    assert own_dirs.refusal(config(top, top / "run", top / "data",
                                   str(top / "node_exporter" / "vpnd.prom"))) is None
    assert not (top / "node_exporter").exists()  # node_exporter's, not vpnd's to make
