"""Whatever sits in the state dir, reading it ends in a service or in
errors that name the file: never an exception, never a hang, never an
unbounded read. Real files, FIFOs and links in a temporary directory."""
from __future__ import annotations

import codecs
import json
import os

import pytest

from lab.factory import connection_doc, service_doc
from vpnd.state.one_file import MAX_ERRORS, read_file
from vpnd.state.statefiles import StateDir

GOOD = json.dumps(service_doc())


def problems(path, limit=1 << 20) -> list[str]:
    service, errors = read_file(str(path), limit)
    assert service is None
    return [str(e) for e in errors]


def only(path, limit=1 << 20) -> str:
    [problem] = problems(path, limit)
    assert problem.startswith(f"{path}: $: "), problem
    return problem.split(": $: ", 1)[1]


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"  \n", "empty file"),
    (codecs.BOM_UTF8 + GOOD.encode(), "starts with a byte order mark"),
    (codecs.BOM_UTF16_LE + GOOD.encode("utf-16-le"), "UTF-16 text: save it as UTF-8"),
    (GOOD.encode("utf-16-be"), "has NUL bytes: UTF-16 or binary, not UTF-8 text"),
    (b'{"id": "\xff"}', "not UTF-8 text (byte 8)"),
    (b'{"id": NaN}', "NaN is not a number JSON allows"),
    (b'{"id": -Infinity}', "-Infinity is not a number JSON allows"),
    (b'{"mtu": 1e999}', "a number too large to use: 1e999"),
    (b'{"mtu": ' + b"9" * 5000 + b"}", "an integer of 5000 digits (at most 20)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"id": "a", "psk": "x", "id": "b"}', "the key 'id' appears twice in one object"),
    (b"{ not json", "not valid JSON: Expecting property name enclosed in double quotes"),
])
def test_content_that_is_no_state_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    assert message in only(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "fifo.json"
    os.mkfifo(path)
    assert only(path) == "not a regular file (a FIFO)"


def test_a_directory_named_json_is_refused(tmp_path):
    (tmp_path / "dir.json").mkdir()
    assert only(tmp_path / "dir.json") == "not a regular file (a directory)"


def test_symlinks(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "svc.json").write_text(GOOD)
    d = tmp_path / "state"
    d.mkdir()
    (d / "out.json").symlink_to(outside / "svc.json")  # volumes do this: read
    (d / "zero.json").symlink_to("/dev/zero")
    (d / "loop.json").symlink_to(d / "loop.json")
    (d / "dangling.json").symlink_to(d / "nothing-here")
    service, errors = read_file(str(d / "out.json"))
    assert service is not None and not errors
    assert only(d / "zero.json") == "a link to /dev/zero: state files are regular files"
    assert only(d / "loop.json") == "a symlink loop"
    assert only(d / "dangling.json") == f"a symlink to {d / 'nothing-here'}, which does not exist"


def test_a_file_over_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # 50 MB, sparse
    assert only(path) == ("52428800 bytes, larger than the 1048576 allowed "
                          "(state_file_max_bytes)")
    path.write_text(" " * 2000 + GOOD)  # the configured limit, not the default
    assert only(path, limit=1024) == (f"{2000 + len(GOOD)} bytes, larger than the 1024 "
                                      "allowed (state_file_max_bytes)")


def test_a_file_with_thousands_of_problems_reports_a_bounded_number(tmp_path):
    path = tmp_path / "many.json"
    path.write_text(json.dumps(service_doc(conns=[
        connection_doc(f"c{i}", mtu="not a number") for i in range(5000)])))
    found = problems(path)
    assert len(found) == MAX_ERRORS + 1
    assert found[-1].endswith(f"and {5000 - MAX_ERRORS} more invalid connections")



def test_the_state_dir_shows_every_hostile_file_by_name_and_keeps_the_good_one(tmp_path):
    (tmp_path / "good.json").write_text(GOOD)
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone")
    (tmp_path / "dir.json").mkdir()
    state, changed = StateDir(str(tmp_path)).scan()
    assert list(state.services) == [str(tmp_path / "good.json")]
    assert set(state.errors) == {str(tmp_path / n) for n in
                                 ("fifo.json", "loop.json", "dangling.json", "dir.json")}
