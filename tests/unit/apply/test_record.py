"""The record survives a kill: changes are journaled as they land."""
from __future__ import annotations

import os

from vpnd.base.conns import AppliedConn, Intent
from vpnd.apply.record import Record


def conn(name, fp="fp"):
    return AppliedConn(name, "svc", "a.json", fp, f"vpnd-{name}")


def test_changes_not_yet_saved_are_found_after_a_kill(tmp_path):
    r = Record(str(tmp_path)).load()
    r.set("ns", "c1", conn("c1"))
    r.save()
    r.set("ns", "c2", conn("c2"))  # lands ...
    r.set("ns", "c1", conn("c1", "fp2"))
    r.set("ns", "c3", conn("c3"))
    r.set("ns", "c3", None)  # ... and one is removed again; then kill -9
    again = Record(str(tmp_path)).load()
    assert dict(again.applied("ns")) == {"c1": conn("c1", "fp2"), "c2": conn("c2")}


def test_a_save_folds_the_journal_in(tmp_path):
    r = Record(str(tmp_path)).load()
    r.set("ns", "c1", conn("c1"))
    assert os.path.getsize(tmp_path / "applied.journal") > 0
    r.save()
    assert os.path.getsize(tmp_path / "applied.journal") == 0
    assert oct(os.stat(tmp_path / "applied.journal").st_mode & 0o777) == "0o600"
    r.set("ns", "c2", conn("c2"))
    assert set(Record(str(tmp_path)).load().applied("ns")) == {"c1", "c2"}


def test_a_line_torn_by_the_kill_is_ignored(tmp_path):
    r = Record(str(tmp_path)).load()
    r.set("ns", "c1", conn("c1"))
    with open(tmp_path / "applied.journal", "a") as f:
        f.write('["ns","c2",{"service_id":"sv')
    assert set(Record(str(tmp_path)).load().applied("ns")) == {"c1"}


def test_a_change_begun_and_not_recorded_is_known_after_a_kill_until_it_is(tmp_path):
    r = Record(str(tmp_path)).load()
    r.set("ns", "c1", conn("c1"))
    r.intend("ns", "c1", Intent("fp2", ("7",)))  # then kill -9
    again = Record(str(tmp_path)).load()
    assert dict(again.intended("ns")) == {"c1": Intent("fp2", ("7",))}
    again.save()  # a save keeps it ...
    assert dict(Record(str(tmp_path)).load().intended("ns")) == {"c1": Intent("fp2", ("7",))}
    again.set("ns", "c1", conn("c1", "fp2"))  # ... until the change is recorded
    assert dict(Record(str(tmp_path)).load().intended("ns")) == {}
    again.save()
    assert dict(Record(str(tmp_path)).load().intended("ns")) == {}


def test_a_dry_run_record_writes_nothing(tmp_path):
    Record(str(tmp_path / "data")).load(create_key=False).fingerprint({"a": 1})
    assert not (tmp_path / "data").exists()
