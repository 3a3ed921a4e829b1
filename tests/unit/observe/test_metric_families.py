"""The Prometheus exposition, from what vpnd holds (metric_families.py)."""
from __future__ import annotations

import calendar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from vpnd.observe.metric_families import Rounds, Snapshot, connection_exposition, families


def conn(status="ACTIVE", **extra):
    c = {"status": status, "since": "2026-11-26T10:00:00Z", "ike_rekeys": 2,
         "child_rekeys": 3}
    if status == "ACTIVE":
        c["child_sas"] = {"c1": {"bytes_in": 640, "bytes_out": 320, "packets_in": 5,
                                 "packets_out": 4}}
    return {**c, **extra}


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
    return connection_exposition(snap.report, now) + generate_latest(registry).decode()


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
