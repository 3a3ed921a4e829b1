"""A change costs its own file: the state, the rendering and the status kept
up to date file by file must say exactly what a rebuild of everything says,
whatever sequence of edits (clashing ids included) got them there."""
from __future__ import annotations

import json
import os
import random

import pytest

from lab.factory import connection_doc, service_doc
from lab.fakes import QuietDriver
from vpnd.observe import publish
from vpnd.base.config import CharonConfig, Config
from vpnd.drivers.strongswan_mapping import render
from vpnd.base.live import ChildSa, IkeSa, LiveState
from vpnd.loop.reconciler import Reconciler
from vpnd.apply.record import Record
from vpnd.plan.render import Renderer
from vpnd.state.statefiles import StateDir
from vpnd.observe.status import NamespaceView
from vpnd.observe.status_book import StatusBook

FILES = [f"f{i}.json" for i in range(7)]
IDS = ["s1", "s2", "s3"]
CONNS = ["c1", "c2", "c3", "c4"]
NAMESPACES = ["qrouter-a", "qrouter-b"]


def random_edit(rng: random.Random, directory) -> str:
    """Write, break or remove one file; ids are drawn from small pools so
    that files clash (and stop clashing) often."""
    name = rng.choice(FILES)
    path = directory / name
    roll = rng.random()
    if roll < 0.15:
        if path.exists():
            path.unlink()
        return str(path)
    if roll < 0.25:
        text = "{ not json"
    else:
        conns = [connection_doc(c, f"incremental-psk-{c}") for c in
                 rng.sample(CONNS, rng.randint(1, 2))]
        if roll < 0.35:
            conns[0]["mtu"] = "bad"  # one invalid connection, the rest applied
        text = json.dumps(service_doc(rng.choice(IDS), conns,
                                      namespace=rng.choice(NAMESPACES),
                                      admin_state_up=rng.random() > 0.1))
    path.write_text(text)
    st = os.stat(path)  # same-size rewrites within a tick are still seen
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + rng.randint(1, 10**9)))
    return str(path)


def summary(state) -> dict:
    return {"services": dict(state.services),
            "errors": {p: [str(e) for e in es] for p, es in state.errors.items()},
            "held": set(state.held), "warnings": dict(state.warnings),
            "broken": {p: {k: [str(e) for e in es] for k, es in b.items()}
                       for p, b in state.broken.items()},
            "ids": dict(state.ids),
            "namespaces": {ns: set(ps) for ns, ps in state.namespaces.items()}}


def rendered(r) -> dict:
    return {"conns": {ns: {n: (c.fingerprint, c.source, c.children) for n, c in conns.items()}
                      for ns, conns in r.conns.items() if conns},
            "errors": dict(r.errors), "by_source": dict(r.by_source)}


@pytest.mark.parametrize("seed", range(6))
def test_a_scan_of_the_changed_file_says_what_a_scan_of_everything_says(tmp_path, seed):
    rng = random.Random(seed)
    scoped, everything = StateDir(str(tmp_path)), StateDir(str(tmp_path))
    record = Record(str(tmp_path / "data")).load()
    scoped_render = Renderer(lambda c: render(c, libipsec=True), record.fingerprint)
    for _ in range(150):
        path = random_edit(rng, tmp_path)
        state, changed = scoped.scan({path})
        scoped_render.update(state, changed)
        full, _ = everything.scan()
        assert summary(state) == summary(full)
        fresh = Renderer(lambda c: render(c, libipsec=True), record.fingerprint)
        fresh.update(full, set(full.services))
        assert rendered(scoped_render.rendered) == rendered(fresh.rendered)


def test_a_later_file_is_let_in_once_the_earlier_one_lets_the_id_go(tmp_path):
    d = StateDir(str(tmp_path))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(service_doc("s1", [connection_doc("c1", "clash-psk")])))
    b.write_text(json.dumps(service_doc("s1", [connection_doc("c2", "clash-psk")])))
    state, _ = d.scan()
    assert str(b) in state.held and "already used by" in str(state.errors[str(b)][0])
    a.unlink()
    state, changed = d.scan({str(a)})
    assert changed == {str(a), str(b)}  # b's standing moved with a
    assert str(b) in state.services and str(b) not in state.errors


def test_a_scoped_scan_stats_only_the_changed_file(tmp_path, monkeypatch):
    for i in range(200):
        (tmp_path / f"s{i:03d}.json").write_text(json.dumps(
            service_doc(f"s{i}", [connection_doc(f"c{i}", "stat-psk")])))
    d = StateDir(str(tmp_path))
    d.scan()
    seen = []
    real_stat = os.stat

    def counting(path, *args, **kw):
        seen.append(str(path))
        return real_stat(path, *args, **kw)

    monkeypatch.setattr(os, "stat", counting)
    changed = tmp_path / "s007.json"
    changed.write_text(json.dumps(service_doc("s7", [connection_doc("c7", "stat-psk-2")])))
    state, paths = d.scan({str(changed)})
    assert paths == {str(changed)}
    files = [p for p in seen if p.endswith(".json")]
    assert files == [str(changed)], files  # not the 199 others


def _without_times(value):
    """status fields that follow the clock (SA ages as timestamps, since)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items()
                if k not in ("since", "established", "installed", "rekeys_since")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


@pytest.mark.parametrize("seed", range(4))
def test_status_rebuilt_entry_by_entry_equals_status_built_whole(tmp_path, seed):
    rng = random.Random(seed)
    state_dir = tmp_path / "state"
    state_dir.mkdir()

    config = Config(state_dir=str(state_dir), run_dir=str(tmp_path / "run"),
                    data_dir=str(tmp_path / "data"), charon=CharonConfig(libipsec=True))
    rec = Reconciler(config, QuietDriver(), statedir=StateDir(str(state_dir)),
                     record=Record(config.data_dir).load(), namespace_exists=lambda ns: True)
    for step in range(120):
        if rng.random() < 0.5:
            rec.read_files({random_edit(rng, state_dir)})
        else:
            ns, name = rng.choice(NAMESPACES), rng.choice(CONNS)
            what = rng.random()
            if what < 0.4:
                sas = tuple(IkeSa(n, str(step), "ESTABLISHED",
                                  (ChildSa(n, f"{step}{n}", "INSTALLED"),))
                            for n in rng.sample(CONNS, rng.randint(0, 3)))
                rec.observed.set_view(ns, NamespaceView(
                    LiveState(frozenset(rng.sample(CONNS, rng.randint(0, 4))), frozenset(), sas)))
            elif what < 0.5:
                rec.observed.set_view(ns, NamespaceView(None, "charon gone"))
            elif what < 0.7:
                rec.observed.take(ns, "log", {"ikesa-name": name, "msg": rng.choice([
                    "received AUTHENTICATION_FAILED notify error",
                    "giving up after 5 retransmits"])})
            elif what < 0.85:
                rec.observed.replace_apply_errors(
                    ns, {(ns, name): "load-conn failed: refused"}, {name})
            else:
                rec.observed.replace_apply_errors(ns, {}, {name})
        rec.write_status()
        assert _without_times(rec.status.report()) == _without_times(
            publish.report(rec.desired_state, rec.observed, rec.rendered))
        written = json.loads(open(config.status_file).read())
        assert _without_times(written["services"]) == _without_times(rec.status.report())


def test_a_scrape_between_an_entry_text_and_its_place_reads_the_others():
    # What a metrics scrape (its own thread) can meet while the loop drops
    # an entry: its text gone, its place in the order not yet, or the
    # reverse when one comes.
    book = StatusBook()
    book.order = ["/s/a.json", "/s/b.json", "/s/c.json"]
    book.texts = {p: book.packer.pack(t) for p, t in (
        ("/s/a.json", '{"id":"a"}'), ("/s/c.json", '{"id":"c"}'), ("/s/d.json", '{"id":"d"}'))}
    assert book.report() == [{"id": "a"}, {"id": "c"}]


def test_an_entrys_keys_are_held_packed_and_come_back_as_they_were():
    from vpnd.observe.status_book import _packed, _unpacked
    for keys in ((), (("s", "c1"),), ((None, "c1"),), (("s", "c1"), ("s", "c2")),
                 ((None, "c1"), (None, "c2"))):
        assert _unpacked(_packed(keys)) == keys
    assert _packed((("s", "c1"),)) == ("s", "c1")  # one pair: held alone
