"""The Prometheus exposition, from what vpnd holds (metric_families.py)."""
from __future__ import annotations

import calendar

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from vpnd.observe.metric_families import (BUCKETS, Rounds, Snapshot, connection_exposition,
                                          daemon_exposition)


def conn(status="ACTIVE", **extra):
    c = {"status": status, "since": "2026-11-26T10:00:00Z", "ike_rekeys": 2,
         "child_rekeys": 3}
    if status == "ACTIVE":
        c["child_sas"] = {"c1": {"bytes_in": 640, "bytes_out": 320, "packets_in": 5,
                                 "packets_out": 4}}
    return {**c, **extra}


def families(snap: Snapshot, now: float) -> list:
    """The daemon's and charons' families as the official client builds
    them: what daemon_exposition must write."""
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily)

    charon_up = GaugeMetricFamily("vpnd_charon_up", "1 if the namespace's charon answers",
                                  labels=("namespace",))
    for ns, answers in sorted(snap.charons.items()):
        charon_up.add_metric((ns,), 1.0 if answers else 0.0)
    restarts = CounterMetricFamily("vpnd_charon_restarts",
                                   "Times vpnd started a namespace's charon again after it "
                                   "died or stopped answering", labels=("namespace",))
    for ns, n in sorted(snap.charon_restarts.items()):
        restarts.add_metric((ns,), float(n))

    rounds = snap.rounds
    buckets, total = [], 0
    for top, n in zip((*BUCKETS, float("inf")), rounds.bucket_counts):
        total += n
        buckets.append(("+Inf" if top == float("inf") else repr(top), float(total)))
    duration = HistogramMetricFamily("vpnd_reconcile_duration_seconds",
                                     "How long each reconcile round took",
                                     buckets=buckets, sum_value=rounds.seconds_sum)
    passes = CounterMetricFamily("vpnd_reconcile_passes", "Reconcile rounds by outcome",
                                 labels=("outcome",))
    for outcome in ("ok", "failed"):
        passes.add_metric((outcome,), float(rounds.outcomes.get(outcome, 0)))
    last = GaugeMetricFamily("vpnd_last_full_reconcile_success_timestamp_seconds",
                             "When a full resync last ended with nothing failing (0: not yet)")
    last.add_metric((), rounds.last_full_success or 0.0)
    writes = CounterMetricFamily("vpnd_vici_writes", "Writes vpnd sent to charons")
    writes.add_metric((), float(snap.vici_writes))
    invalid = GaugeMetricFamily("vpnd_invalid_state_files",
                                "State files (or their connections) with problems now")
    invalid.add_metric((), float(snap.invalid_files))
    build = GaugeMetricFamily("vpnd_build_info", "vpnd's version", labels=("version",))
    build.add_metric((snap.version,), 1.0)
    return [charon_up, restarts, duration, passes, last, writes, invalid, build]


def snapshot(conns, rounds=None):
    report = [{"id": "svc-1", "namespace": "qrouter-1", "ipsec_site_connections": conns}]
    return Snapshot(report, {"qrouter-1": True}, {"qrouter-1": 2}, 17, 1,
                    rounds or Rounds(), "0.1.0")


SINCE = calendar.timegm((2026, 11, 26, 10, 0, 0))


def exposition(snap, now=SINCE + 42.0) -> str:
    class One(Collector):
        def collect(self):
            return families(snap, now)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    assert daemon_exposition(snap, now) == generate_latest(registry)
    return connection_exposition(snap.report, now) + daemon_exposition(snap, now).decode()


def test_a_connection_has_up_status_traffic_age_and_rekeys_by_its_ids():
    text = exposition(snapshot({"c1": conn(), "c2": conn("DOWN")}))
    labels = 'connection="c1",namespace="qrouter-1",service="svc-1"'
    ids = 'namespace="qrouter-1",service="svc-1"'  # label names come out sorted
    for line in (f"vpnd_connection_up{{{labels}}} 1.0",
                 f'vpnd_connection_status{{{labels},status="ACTIVE"}} 1.0',
                 f'vpnd_connection_status{{{labels},status="DOWN"}} 0.0',
                 f'vpnd_connection_bytes_total{{connection="c1",direction="in",{ids}}} 640.0',
                 f'vpnd_connection_packets_total{{connection="c1",direction="out",{ids}}} 4.0',
                 f'vpnd_connection_rekeys_total{{connection="c1",level="child",{ids}}} 3.0',
                 f"vpnd_connection_status_age_seconds{{{labels}}} 42.0",
                 'vpnd_connection_up{connection="c2",namespace="qrouter-1",service="svc-1"} 0.0',
                 'vpnd_charon_up{namespace="qrouter-1"} 1.0',
                 'vpnd_charon_restarts_total{namespace="qrouter-1"} 2.0',
                 "vpnd_vici_writes_total 17.0", "vpnd_invalid_state_files 1.0",
                 'vpnd_build_info{version="0.1.0"} 1.0'):
        assert line in text, line


def test_a_removed_connection_leaves_no_series():
    assert 'connection="c2"' in exposition(snapshot({"c1": conn(), "c2": conn()}))
    assert 'connection="c2"' not in exposition(snapshot({"c1": conn()}))


def test_rounds_make_a_histogram_outcomes_and_the_last_full_success():
    rounds = Rounds()
    rounds.add(0.008, failed=False, full=False, wall=100.0)
    rounds.add(0.7, failed=True, full=True, wall=200.0)
    rounds.add(0.3, failed=False, full=True, wall=300.0)
    text = exposition(snapshot({}, rounds))
    assert 'vpnd_reconcile_duration_seconds_bucket{le="0.01"} 1.0' in text
    assert 'vpnd_reconcile_duration_seconds_bucket{le="0.5"} 2.0' in text
    assert 'vpnd_reconcile_duration_seconds_bucket{le="+Inf"} 3.0' in text
    assert "vpnd_reconcile_duration_seconds_count 3.0" in text
    assert 'vpnd_reconcile_passes_total{outcome="failed"} 1.0' in text
    assert "vpnd_last_full_reconcile_success_timestamp_seconds 300.0" in text


def test_series_stay_bounded_at_a_thousand_connections():
    text = exposition(snapshot({f"c{i}": conn() for i in range(1000)}))
    series = [l for l in text.splitlines() if l and not l.startswith("#")]
    per_connection = 1 + 3 + 1 + 2 + 2 + 2  # up, status x3, age, bytes, packets, rekeys
    assert len(series) < 1000 * per_connection + 50


def test_the_text_written_by_hand_parses_as_the_exposition_format():
    from prometheus_client.parser import text_string_to_metric_families
    odd = {"c1": conn(), "$.ipsec_site_connections[1]": conn("ERROR")}
    parsed = {f.name: f for f in text_string_to_metric_families(exposition(snapshot(odd)))}
    assert parsed["vpnd_connection_up"].type == "gauge"
    assert parsed["vpnd_connection_bytes"].type == "counter"
    up = {s.labels["connection"]: s.value for s in parsed["vpnd_connection_up"].samples}
    assert up == {"c1": 1.0, "$.ipsec_site_connections[1]": 0.0}


@pytest.mark.parametrize("case", ["empty", "busy", "odd labels"])
def test_the_daemon_families_are_written_as_the_official_client_writes_them(case):
    rounds = Rounds()
    charons, restarts, version = {}, {}, "0.1.0"
    if case != "empty":
        for seconds, failed in ((0.004, False), (0.3, True), (40.0, False), (0.01, False)):
            rounds.add(seconds, failed, True, 1_764_150_000.5)
        charons, restarts = {"qrouter-2": False, "qrouter-1": True}, {"qrouter-1": 12345678}
    if case == "odd labels":
        charons = {'ns"1\\x\ny': True}
        version = 'v"2\\'
    snap = Snapshot([], charons, restarts, 10 ** 9 + 7, 3, rounds, version)

    class One(Collector):
        def collect(self):
            return families(snap, 0.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    assert daemon_exposition(snap, 0.0) == generate_latest(registry)


def test_the_content_type_is_the_official_clients():
    from prometheus_client import CONTENT_TYPE_LATEST
    from vpnd.observe.metrics_server import CONTENT_TYPE
    assert CONTENT_TYPE == CONTENT_TYPE_LATEST
