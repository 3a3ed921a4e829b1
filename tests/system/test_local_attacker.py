"""A local user cannot redirect vpnd's writes, nor make it signal a
process it did not start (issue 20, writes, dirs and pids), against a real
vpnd: a world-writable run_dir or data_dir is refused before anything is
written; links planted at the temporary names of the metrics textfile
are not followed; a pid file or status.json naming a process of someone
else's gets it no signal (a `sleep`, which any stray SIGTERM or SIGHUP
would end: alive means not signalled)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import VICTIM, connection, require_system, service
from lab.testbed import wait_for

PSK = "local-attacker-psk-5d2"


def alive(p: subprocess.Popen) -> bool:
    """Still running and no signal pending (a sleep dies of any it gets)."""
    if p.poll() is not None:
        return False
    status = open(f"/proc/{p.pid}/status").read()
    pending = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines()
               if line.startswith(("SigPnd:", "ShdPnd:"))}
    return not any(pending.values())


@pytest.mark.fault
@pytest.mark.parametrize("which", ["run_dir", "data_dir"])
def test_a_world_writable_own_dir_is_refused_before_anything_is_written(
        vpnd_factory, which, figure):
    require_system()
    v = vpnd_factory(f"open-{which}")
    open_dir = v.run_dir if which == "run_dir" else v.data_dir
    open_dir.mkdir()
    open_dir.chmod(0o777)
    t0 = time.monotonic()
    v.start()
    code = v.proc.wait(60)
    figure(f"world-writable {which}: vpnd refused to start within (s)",
           f"{time.monotonic() - t0:.2f}")
    log = v.log_path.read_text()
    assert code == 1, log
    assert f"vpnd: {which} {open_dir} is writable by its group and everyone (mode 0777)" \
        in log, log
    assert f"chmod go-w {open_dir}" in log
    assert "Traceback" not in log
    assert list(open_dir.iterdir()) == []
    # The other of the two is not made either: nothing was touched.
    assert not (v.data_dir if which == "run_dir" else v.run_dir).exists()


@pytest.mark.fault
def test_links_at_the_textfile_s_temporary_names_are_not_followed(vpnd_factory, tmp_path,
                                                                   victim, figure):
    require_system()
    collector = tmp_path / "textfile"
    collector.mkdir(mode=0o755)
    textfile = collector / "vpnd.prom"
    v = vpnd_factory("t", metrics={"textfile": str(textfile)}, status_interval=1,
                     resync_interval=1)
    # The names the old writer used ({path}.tmp.{pid}), for the pids vpnd
    # is about to get, and the usual others.
    last = int(open("/proc/sys/kernel/ns_last_pid").read())
    planted = [f"{textfile}.tmp", f"{textfile}.new", f"{textfile}~",
               *(f"{textfile}.tmp.{pid}" for pid in range(last, last + 3000))]
    for name in planted:
        os.symlink(victim, name)
    v.start()
    own = f"{textfile}.tmp.{v.proc.pid}"
    if not os.path.lexists(own):
        os.symlink(victim, own)
        planted.append(own)

    inodes = set()

    def rewritten_thrice():
        try:
            st = os.lstat(textfile)
        except FileNotFoundError:
            return False
        inodes.add(st.st_ino)  # each rename brings a new inode
        return len(inodes) >= 3
    wait_for(rewritten_thrice, 60, 0.05, what=f"three writes of {textfile}\n{v.log_tail()}")
    figure("links planted at the textfile's guessable temporary names, none followed",
           f"{len(planted)} links, {len(inodes)} writes")
    assert victim.read_bytes() == VICTIM
    assert not textfile.is_symlink() and b"vpnd_" in textfile.read_bytes()
    assert all(os.readlink(n) == str(victim) for n in planted)
    assert v.proc.poll() is None, v.log_tail()


@pytest.mark.fault
def test_a_pid_file_or_status_naming_another_process_gets_it_no_signal(
        lab, vpnd_factory, sleeper, figure):
    v = vpnd_factory("p")
    foreign, stray = sleeper(), sleeper()
    # Pid files in run_dir naming processes that are no charon of vpnd's:
    # one in the namespace vpnd serves, one in a namespace it does not.
    v.run_dir.mkdir(mode=0o755)
    for ns, p in ((lab.a.gw, foreign), ("vt-elsewhere", stray)):
        d = v.run_dir / "charon" / ns
        d.mkdir(parents=True, mode=0o700)
        # As vpnd wrote them before it recorded start times: the pid alone.
        (d / "charon.pid").write_text(str(p.pid))
    v.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)]))
    v.start()
    # vpnd started a charon of its own rather than believe the pid file ...
    wait_for(lambda: v.conn_status("svc-a", "c1"), 60, what=f"c1 in status\n{v.log_tail()}")
    charon = v.vici(lab.a.gw)
    try:
        assert charon.version()
    finally:
        charon.close()
    pid_file = v.run_dir / "charon" / lab.a.gw / "charon.pid"
    assert int(pid_file.read_text().split()[0]) != foreign.pid
    # ... and stopping the charons stops that one only.
    stopped = v.cli("stop-charons")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == [f"stopped charon in {lab.a.gw}"], stopped.stdout
    assert v.stop() == 0
    assert alive(foreign) and alive(stray)

    # A status.json (left by the stopped vpnd) that names the sleep.
    status = v.run_dir / "status.json"
    doc = json.loads(status.read_text())
    status.write_text(json.dumps({**doc, "pid": foreign.pid}))
    status.chmod(0o644)
    for command in (("reload", "--timeout", "5"), ("health",)):
        result = v.cli(*command)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"pid {foreign.pid} is not a vpnd daemon: it runs 'sleep'" in result.stderr, \
            result.stderr
        assert "Traceback" not in result.stderr and PSK not in result.stderr + result.stdout
    assert "nothing signalled" in v.cli("reload", "--timeout", "5").stderr
    # One that others may write is not read at all.
    status.chmod(0o666)
    result = v.cli("reload", "--timeout", "5")
    assert result.returncode == 1
    assert f"{status} is writable by its group and everyone (mode 0666)" in result.stderr, \
        result.stderr
    assert alive(foreign) and alive(stray)
    figure("pid file and status.json naming a foreign process: signals it got", 0)
