"""A pid is signalled or trusted only while it is the process vpnd takes it
for (identity.py, processes.py): a vpnd daemon by its command line and
user, a charon by its program and start time. Pure tables first, then
real processes of the test's own (a `sleep`), killed at the end."""
from __future__ import annotations

import os
import signal

import pytest

from vpnd.system import identity, processes
from vpnd.drivers import charon_process
from vpnd.drivers.charon_process import CharonSpawner

PY = "/usr/bin/python3"


@pytest.mark.parametrize("argv, daemon", [
    ([PY, "-m", "vpnd", "--config", "/etc/vpnd/vpnd.yaml", "run"], True),
    ([PY, "-m", "vpnd", "run"], True),
    ([PY, "-u", "-X", "dev", "-mvpnd", "--config=/x.yaml", "run"], True),
    (["/opt/vpnd/bin/python3.11", "/opt/vpnd/bin/vpnd", "--config", "/x", "run"], True),
    (["/usr/local/bin/vpnd", "--conf", "/x", "run"], True),  # argparse takes a prefix
    ([PY, "-m", "vpnd.cli", "run"], True),
    ([PY, "-m", "vpnd", "--config", "/x", "status"], False),
    ([PY, "-m", "vpnd", "reload"], False),
    ([PY, "-m", "vpnd", "--config", "run"], False),  # "run" is the config's path
    ([PY, "-c", "import vpnd; vpnd.run()", "vpnd", "run"], False),
    ([PY, "-Ic", "vpnd", "run"], False),
    ([PY, "-m", "vpndx", "run"], False),
    ([PY, "/tmp/vpnd.py", "run"], False),
    ([PY, "/home/u/not-vpnd", "run"], False),
    (["/usr/bin/sleep", "1000"], False),
    (["/tmp/evil/vpnd-helper", "run"], False),
    (["bash", "-c", "vpnd run"], False),
    ([], False),  # a kernel thread, or gone
])
def test_which_command_lines_are_a_vpnd_daemon(argv, daemon):
    assert identity.is_vpnd_daemon(argv) is daemon


def test_a_vpnd_run_by_a_stranger_or_nothing_like_vpnd_is_refused_by_name_only():
    vpnd = [PY, "-m", "vpnd", "run"]
    trusted = frozenset({0, 1000})
    assert identity.vpnd_refusal(7, vpnd, (0, 0), trusted) is None
    assert identity.vpnd_refusal(7, vpnd, (1000, 1000), trusted) is None
    assert identity.vpnd_refusal(7, vpnd, (1001, 0), trusted) == \
        "pid 7 runs vpnd as uid 1001, neither root nor you"
    # Its program's name, never the rest of another's command line.
    assert identity.vpnd_refusal(7, ["/usr/bin/mysql", "-psecret"], (0, 0), trusted) == \
        "pid 7 is not a vpnd daemon: it runs 'mysql'"
    assert identity.vpnd_refusal(7, [], (), trusted) == \
        "pid 7 is not a vpnd daemon: it is gone, or runs no program"


def test_proc_files_are_parsed_whatever_a_process_calls_itself():
    assert identity.parse_cmdline(b"python3\0-m\0vpnd\0run\0") == ["python3", "-m", "vpnd", "run"]
    assert identity.parse_cmdline(b"") == []
    assert identity.parse_uids("Name:\tx\nUid:\t0\t1000\t0\t0\n") == (0, 1000)
    fields = " ".join(str(n) for n in range(3, 53))  # field n holds n
    assert identity.parse_start_time(f"42 (a) b ) (c) {fields}") == 22
    assert identity.parse_start_time("42 (short) S 1") is None


@pytest.mark.parametrize("text, parsed", [
    ("1234 98765\n", (1234, 98765)), ("1234", (1234, None)),  # a vpnd before start times
    ("", None), ("x", None), ("1", None), ("0 5", None), ("-5", None), ("1 2 3", None),
])
def test_pid_files(text, parsed):
    assert identity.parse_pid_file(text) == parsed


def test_a_program_is_known_also_once_an_upgrade_replaced_its_file():
    assert identity.runs("/usr/sbin/charon-systemd", "/usr/sbin/charon-systemd")
    assert identity.runs("/usr/sbin/charon-systemd (deleted)", "/usr/sbin/charon-systemd")
    assert not identity.runs("/usr/bin/sleep", "/usr/sbin/charon-systemd")
    assert not identity.runs(None, "/usr/sbin/charon-systemd")


def test_a_process_that_is_not_the_one_meant_is_not_held_and_not_signalled(sleeper):
    p = sleeper()
    assert processes.Held.take(p.pid, lambda pid: False) is None
    assert p.poll() is None
    held = processes.Held.take(p.pid, lambda pid: True)
    held.signal(signal.SIGTERM)
    assert processes.wait_ended([held], 10)
    held.close()
    assert p.wait(10) == -signal.SIGTERM


def test_a_live_vpnd_is_told_from_anything_else(sleeper):
    p = sleeper()
    trusted = frozenset({0, os.geteuid()})
    assert processes.vpnd_refusal(p.pid, trusted) == \
        f"pid {p.pid} is not a vpnd daemon: it runs 'sleep'"
    assert processes.vpnd_refusal(os.getpid(), trusted).startswith(f"pid {os.getpid()} is not")


def spawner_with(tmp_path, ns, text) -> CharonSpawner:
    d = tmp_path / "run" / "charon" / ns
    d.mkdir(parents=True, mode=0o700)
    (d / "charon.pid").write_text(text)
    (d / "charon.pid").chmod(0o644)
    return CharonSpawner(str(tmp_path / "run"), True)


def test_a_pid_file_naming_another_program_is_not_believed_nor_signalled(tmp_path, sleeper):
    p = sleeper()
    spawner = spawner_with(tmp_path, "ns1", f"{p.pid} {processes.start_time(p.pid)}\n")
    assert spawner.pid("ns1") is None
    assert spawner.namespaces() == []
    assert spawner.stop_all(["ns1"], timeout=1) == []
    assert p.poll() is None


def test_a_pid_file_of_a_charon_is_believed_only_while_it_is_that_charon(
        tmp_path, sleeper, monkeypatch):
    # `sleep` stands in for charon-systemd: the program is what is checked.
    monkeypatch.setattr(charon_process, "CHARON", "/usr/bin/sleep")
    p = sleeper()
    start = processes.start_time(p.pid)
    assert spawner_with(tmp_path / "a", "ns1", f"{p.pid} {start + 1}\n").pid("ns1") is None
    assert spawner_with(tmp_path / "b", "ns1", f"{p.pid}").pid("ns1") == p.pid  # old format
    spawner = spawner_with(tmp_path / "c", "ns1", f"{p.pid} {start}\n")
    assert spawner.pid("ns1") == p.pid and spawner.namespaces() == ["ns1"]
    assert spawner.stop_all(["ns1"], timeout=10) == ["ns1"]
    assert p.poll() is not None  # ended, and reaped by stop_all (it is our child)
    assert not (tmp_path / "c" / "run" / "charon" / "ns1" / "charon.pid").exists()


@pytest.mark.parametrize("plant", ["symlink", "writable"])
def test_a_pid_file_that_is_not_plainly_vpnd_s_is_not_read(tmp_path, sleeper, monkeypatch, plant):
    monkeypatch.setattr(charon_process, "CHARON", "/usr/bin/sleep")
    p = sleeper()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(f"{p.pid}")
    spawner = spawner_with(tmp_path, "ns1", "")
    pid_file = tmp_path / "run" / "charon" / "ns1" / "charon.pid"
    if plant == "symlink":
        pid_file.unlink()
        pid_file.symlink_to(elsewhere)
    else:
        pid_file.write_text(f"{p.pid}")
        pid_file.chmod(0o666)
    assert spawner.pid("ns1") is None
    assert spawner.stop_all(["ns1"], timeout=1) == []
    assert p.poll() is None


def test_a_socket_someone_else_bound_is_not_talked_to(tmp_path):
    """PSKs go over the VICI socket: one bound by another user (before
    charon could) gets not even a version request."""
    import socket
    import threading
    from vici.protocol import Message, Packet, Transport
    spawner = CharonSpawner(str(tmp_path / "run"), True)
    path = spawner.socket_path("ns1")
    path.parent.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX)
    asked = []

    def answer():  # any request: success, as charon's version would
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    asked.append(Transport(conn).receive())
                    Transport(conn).send(bytes([Packet.CMD_RESPONSE])
                                         + Message.serialize({"version": "5"}))
                except OSError:
                    pass
    try:
        listener.bind(str(path))
        listener.listen()
        threading.Thread(target=answer, daemon=True).start()
        assert spawner.answers("ns1") is True  # root's: talked to
        os.chown(path, 65534, -1, follow_symlinks=False)
        assert spawner.answers("ns1") is False
        assert len(asked) == 1
    finally:
        listener.close()
