"""A dry run (`vpnd plan`) reads and plans, and writes nothing: no charon
started, configured or written to, and nothing in observed state, whether
charon answers or not (review item 1)."""
from __future__ import annotations

import json

import pytest

from lab.factory import connection_doc, service_doc
from lab.fakes import QuietDriver
from vpnd.base.config import CharonConfig, Config
from vpnd.base.errors import DriverUnavailable
from vpnd.base.live import LiveState
from vpnd.apply.record import Record
from vpnd.loop.reconciler import Reconciler

NS = "qr-plan"


class ReadOnlyCharon(QuietDriver):
    """Answers reads (or refuses them, `down`); any write fails the test."""

    def __init__(self, down: bool = False):
        self.down = down
        self.reads: list[bool] = []  # each live_state's `start`

    def live_state(self, namespace, start=True):
        self.reads.append(start)
        if self.down:
            raise DriverUnavailable("no charon here")
        return LiveState(frozenset(), frozenset(), ())

    def _written(self, *args, **kwargs):
        raise AssertionError("a dry run wrote to charon")

    configure = ensure_running = execute = apply_many = watch = start = restart = _written


@pytest.mark.parametrize("down", [False, True], ids=["charon answers", "charon down"])
def test_a_dry_run_plans_the_loads_and_writes_nothing(tmp_path, down):
    state = tmp_path / "state"
    state.mkdir()
    conn = connection_doc("c1", "psk-c1-xyz", peer_address="198.19.0.1",
                          peer_id="198.19.0.1", local_cidrs=["198.18.1.0/24"],
                          peer_cidrs=["198.19.1.1/32"], initiator="response-only")
    path = state / "s1.json"
    path.write_text(json.dumps(service_doc("s1", [conn], namespace=NS,
                                           external_ip="198.18.0.1")))
    path.chmod(0o600)
    config = Config(state_dir=str(state), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    driver = ReadOnlyCharon(down)
    # As `vpnd plan` reads the record: a dry run writes no first key either.
    record = Record(str(tmp_path / "data")).load(create_key=False)
    rec = Reconciler(config, driver, record=record, namespace_exists=lambda ns: True)
    rec.observed.dirty.take()  # what construction marked

    result = rec.reconcile(dry_run=True)

    assert [(s.name, str(s.reason)) for s in result.steps if s.actions] == [("c1", "new")]
    assert driver.reads == [False]  # never a start
    assert dict(rec.observed.views) == {} and dict(rec.observed.standby) == {}
    assert dict(rec.observed.capability_errors) == {} and rec.observed.charon_problems == {}
    assert rec.observed.dirty.take() == (set(), set())
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "data").exists()
