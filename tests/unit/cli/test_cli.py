"""`vpnd check` and `vpnd status` exit codes, run as a user would run them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(str(p) for p in (ROOT / "conf" / "examples").glob("*.json"))


def vpnd(*args, user=None):
    cmd = [sys.executable, "-m", "vpnd", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture
def shared_dir():
    """A directory an unprivileged user can read."""
    d = tempfile.mkdtemp(prefix="vpnd-cli-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d)


def _others_can_run() -> bool:
    """Whether an unprivileged user can reach this checkout and its venv
    (not so for a clone under /root, for example)."""
    for d in (ROOT, *ROOT.parents, Path(sys.executable).resolve().parent):
        if not os.stat(d).st_mode & 0o001:
            return False
    return True


def test_check_valid_files_exits_0():
    result = vpnd("check", *EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_check_reports_each_problem_and_exits_1(shared_dir):
    bad = json.loads(Path(EXAMPLES[0]).read_text())
    bad["ipsec_site_connections"][0]["mtu"] = 10
    path = shared_dir / "bad.json"
    path.write_text(json.dumps(bad))
    result = vpnd("check", EXAMPLES[1], str(path))
    assert result.returncode == 1
    assert result.stdout.strip() == (f"{path}: $.ipsec_site_connections[0].mtu: "
                                     "must be at least 68 for IPv4, not 10")
    assert "demo-only-pre-shared-key" not in result.stdout + result.stderr


@pytest.mark.parametrize("named", [True, False], ids=["named file", "state dir"])
def test_check_warns_of_a_deprecated_value_and_still_passes(shared_dir, named):
    old = json.loads(Path(EXAMPLES[0]).read_text())
    old["ipsec_site_connections"][0]["ikepolicy"]["auth_algorithm"] = "sha1"
    state = shared_dir / "state"
    state.mkdir()
    path = state / "old.json"
    path.write_text(json.dumps(old))
    path.chmod(0o600)
    config = shared_dir / "vpnd.yaml"
    config.write_text(f"state_dir: {state}\n")
    args = ("check", str(path)) if named else ("--config", str(config), "check")
    result = vpnd(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"{path}: $.ipsec_site_connections[0].ikepolicy.auth_algorithm: warning: " \
           "'sha1' is deprecated" in result.stderr
    assert "demo-only-pre-shared-key" not in result.stdout + result.stderr


def test_check_defaults_to_the_state_dir_and_needs_no_root(shared_dir):
    state = shared_dir / "state"
    state.mkdir()
    shutil.copy(EXAMPLES[0], state / "a.json")
    (state / "broken.json").write_text("{")
    (state / ".broken.json.swp").write_text("editor junk")
    config = shared_dir / "vpnd.yaml"
    config.write_text(f"state_dir: {state}\n")
    for p in (state, *state.iterdir(), config):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    user = 65534 if os.geteuid() == 0 and shutil.which("setpriv") and _others_can_run() else None
    result = vpnd("--config", str(config), "check", user=user)
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == f"{state}/broken.json: $: not valid JSON: " \
                                    "Expecting property name enclosed in double quotes " \
                                    "at line 1 column 2"
    (state / "broken.json").unlink()
    assert vpnd("--config", str(config), "check", user=user).returncode == 0


def test_bad_config_names_the_key(shared_dir):
    config = shared_dir / "vpnd.yaml"
    config.write_text("resync_interval: -1\n")
    result = vpnd("--config", str(config), "status")
    assert result.returncode == 1
    assert "resync_interval: must be a positive number" in result.stderr


def test_status_without_a_daemon_says_so(shared_dir):
    config = shared_dir / "vpnd.yaml"
    config.write_text(f"run_dir: {shared_dir}/run\n")
    result = vpnd("--config", str(config), "status")
    assert result.returncode == 1 and "is vpnd running?" in result.stderr


def test_check_and_status_show_names_and_values_never_obey_them(shared_dir):
    """A file name is chosen by whoever writes the state dir: a newline
    must not forge a line, an escape must not reach the terminal, and a
    name that is not UTF-8 must not make print() fail."""
    name = os.fsdecode(b"evil\n\x1b[2J\x1b]0;owned\x07\xe2\x80\xae-\xff.json")
    (shared_dir / name).write_text('{"id": "x"}')
    out = vpnd("check", str(shared_dir / name))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    [line] = out.stdout.splitlines()
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert "evil\\x0a\\x1b[2J\\x1b]0;owned\\x07\\u202e-\\udcff.json" in line

    from vpnd.cli.status import status_table as _status_table
    table = _status_table([{"id": None, "file": str(shared_dir / name), "status": "ERROR",
                            "errors": [f"{name}: $: bad\x1b[31m"]}], "now")
    assert "\x1b" not in table and len(table.splitlines()) == 4
