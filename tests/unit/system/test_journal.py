"""Journal entries: structured fields, fixed message ids, no surprises."""
from __future__ import annotations

import os
import socket
import struct

import pytest

from vpnd.system import journal


def test_status_transitions_become_up_and_down_events():
    up = journal.fields("info", {"event": "connection status", "service": "s1",
                                 "connection": "c1", "netns": "qrouter-r", "status": "ACTIVE",
                                 "reason": "", "timestamp": "t"})
    assert up["VPND_EVENT"] == "connection-up"
    assert up["MESSAGE_ID"] == journal.MESSAGE_IDS["connection-up"]
    assert (up["VPND_SERVICE"], up["VPND_CONNECTION"], up["VPND_NETNS"], up["IKE_SA_NAME"]) \
        == ("s1", "c1", "qrouter-r", "c1")
    assert (up["PRIORITY"], up["SYSLOG_IDENTIFIER"]) == ("6", "vpnd")
    down = journal.fields("warning", {"event": "connection status", "connection": "c1",
                                      "status": "ERROR", "reason": "x"})
    assert down["VPND_EVENT"] == "connection-down" and down["PRIORITY"] == "4"
    assert down["VPND_REASON"] == "x" and "reason=x" in down["MESSAGE"]


def test_every_named_event_type_has_a_distinct_id():
    assert len(set(journal.MESSAGE_IDS.values())) == len(journal.MESSAGE_IDS) == 7
    assert journal.fields("error", {"event": "invalid state file"})["MESSAGE_ID"] == \
        journal.MESSAGE_IDS["config-invalid"]


def test_native_protocol_encoding_and_delivery(tmp_path):
    entry = {"MESSAGE": "two\nlines", "PRIORITY": "6"}
    data = journal.encode(entry)
    assert data == (b"MESSAGE\n" + struct.pack("<Q", 9) + b"two\nlines\n" + b"PRIORITY=6\n")
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    journal.JournalLogger(path).info(entry)
    assert server.recv(4096) == data
    server.close()


def test_structlog_delivers_through_the_journal_logger(tmp_path, monkeypatch):
    import structlog
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    monkeypatch.setattr(journal, "SOCKET", path)
    monkeypatch.setattr(journal.JournalLogger.__init__, "__defaults__", (path,))
    from vpnd.system import log
    log.setup("journal", "info")
    try:
        log.get().info("change applied", connection="c9", netns="ns1")
        data = server.recv(65536).decode()
    finally:
        structlog.reset_defaults()
        server.close()
    assert "VPND_EVENT=change-applied\n" in data and "IKE_SA_NAME=c9\n" in data


def test_an_entry_too_big_for_a_datagram_arrives_as_a_sealed_memfd(tmp_path):
    import array
    import fcntl
    import os
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    logger = journal.JournalLogger(path)
    logger.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    entry = {"MESSAGE": "x" * 300_000, "PRIORITY": "3"}
    logger.error(entry)
    data, ancillary, _, _ = server.recvmsg(16, socket.CMSG_SPACE(4))
    server.close()
    assert data == b""  # the entry is in the passed file, not the datagram
    [(level, kind, payload)] = ancillary
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    fd = array.array("i", payload)[0]
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 400_000) == journal.encode(entry)
    finally:
        os.close(fd)


def test_tracebacks_reach_json_output_as_text(capsys):
    import io
    import json as json_mod
    import structlog
    from vpnd.system import log
    stream = io.StringIO()
    log.setup("json", "info", stream=stream)
    try:
        try:
            raise ValueError("the cause, spelt out")
        except ValueError:
            log.get().exception("reconcile failed")
    finally:
        structlog.reset_defaults()
    line = json_mod.loads(stream.getvalue())
    assert "Traceback" in line["exception"] and "the cause, spelt out" in line["exception"]


def test_the_redactor_masks_any_current_psk_wherever_it_hides():
    from vpnd.system.log import SecretRedactor
    r = SecretRedactor()
    r.add({"secret-one", "secret-one-longer", "abc"})
    event = r(None, "info", {"event": "x", "reason": "x secret-one-longer y",
                             "nested": {"k": ["secret-one"]},
                             "error": ValueError("bad secret-one"), "n": 3, "short": "abc"})
    assert event == {"event": "x", "reason": "x <redacted> y", "nested": {"k": ["<redacted>"]},
                     "error": "bad <redacted>", "n": 3, "short": "abc"}
    r.add(set())  # PSKs no longer in use stay masked: they were secrets
    assert r(None, "info", {"error": "secret-one"}) == {"error": "<redacted>"}


def test_a_new_psk_is_masked_at_once_and_old_ones_stay_masked():
    from vpnd.system.log import SecretRedactor
    r = SecretRedactor()
    r.add({f"psk-number-{i}" for i in range(100)})
    r.add({f"psk-number-{i}" for i in range(1, 100)} | {"psk-rotated"})
    event = r(None, "info", {"a": "psk-rotated", "b": "psk-number-0", "c": "psk-number-7"})
    assert set(event.values()) == {"<redacted>"}


def test_psks_read_in_many_passes_are_all_masked_overlaps_too():
    """A cold start reads 10,000 files 250 at a time: each pass adds its
    own PSKs, and a PSK inside a longer one read in another pass still
    leaves nothing of the longer one."""
    from vpnd.system.log import SecretRedactor
    r = SecretRedactor()
    for start in range(0, 10_000, 250):
        r.add({f"psk-{i:05d}-tail" for i in range(start, start + 250)})
    r.add({"psk-00007-tail-and-more", "-and", "ail-and-m"})
    event = r(None, "info", {"a": "x psk-00000-tail y", "b": "psk-09999-tail",
                             "c": "[psk-00007-tail-and-more]", "d": "a-andb", "e": "psk-1"})
    assert event == {"a": "x <redacted> y", "b": "<redacted>", "c": "[<redacted>]",
                     "d": "a<redacted>b", "e": "psk-1"}


def test_a_psk_that_is_a_common_word_masks_no_event_name_id_or_namespace():
    """A tenant chooses its PSK: "connection" must neither erase what every
    line says nor tell that tenant, by the gaps, that it is a PSK."""
    from vpnd.system.log import SecretRedactor
    r = SecretRedactor()
    r.add({"connection", "applied", "ns-router"})
    fields = {"event": "change applied", "netns": "ns-router", "connection": "connection",
              "service": "svc-applied", "file": "/state/connection.json", "keys": 3}
    assert r(None, "info", dict(fields)) == fields
    # Where a PSK could hide (charon's text, an exception), it is masked.
    assert r(None, "info", {"event": "apply failed", "error": "bad key connection"}) == \
        {"event": "apply failed", "error": "bad key <redacted>"}
    # A field that holds a secret as such is masked whole, known or not.
    assert r(None, "info", {"event": "x", "psk": "never-seen"})["psk"] == "<redacted>"


@pytest.mark.parametrize("fmt", ["journal", "json", "console"])
def test_a_log_call_never_raises_on_a_name_that_is_not_utf8(tmp_path, monkeypatch, fmt):
    """os.fsdecode turns a file name's byte 0xff into a lone surrogate;
    the journal's encoding of it raised, and every scan failed."""
    import io
    import structlog
    from vpnd.system import log
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    monkeypatch.setattr(journal.JournalLogger.__init__, "__defaults__", (path,))
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, as a pipe is
    log.setup(fmt, "info", stream=stream)
    name = os.fsdecode(b"/state/bad-\xff.json")
    try:
        log.get().warning("invalid state file", file=name, errors=[f"{name}: $: bad"])
        log.get().info("after it", file="/state/good.json")
        if fmt == "journal":
            first, second = server.recv(65536), server.recv(65536)
        else:
            stream.flush()
            first, second = stream.buffer.getvalue().splitlines()[:2]
    finally:
        structlog.reset_defaults()
        server.close()
    assert b"bad-\\udcff.json" in first or b"bad-\\xff.json" in first, first
    assert b"after it" in second
