"""The Prometheus metrics, built from what vpnd already holds (pure).

A scrape never calls charon: `families(snapshot, now)` turns the last
published status report and the daemon's counters into metric families,
afresh each time, so a connection that is gone has no series left (no
stale labels). Labels are the Neutron ids people search by: service,
connection, namespace; the per-connection label set stays that size, so
1000 connections make a few thousand series.
"""
from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field

STATUSES = ("ACTIVE", "DOWN", "ERROR")
# Reconcile round durations (seconds): one change lands in ~10 ms, a cold
# start of 1000 connections in ~0.6 s.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Rounds:
    """Reconcile rounds as they end (the daemon's loop adds them)."""

    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    seconds_sum: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)  # ok | failed -> rounds
    last_full_success: float | None = None  # wall clock

    def add(self, seconds: float, failed: bool, full: bool, wall: float) -> None:
        i = next((i for i, top in enumerate(BUCKETS) if seconds <= top), len(BUCKETS))
        self.bucket_counts[i] += 1
        self.seconds_sum += seconds
        outcome = "failed" if failed else "ok"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if full and not failed:
            self.last_full_success = wall


@dataclass(frozen=True)
class Snapshot:
    report: list[dict]  # the last published status report
    charons: dict[str, bool]  # namespace -> its charon answers
    charon_restarts: dict[str, int]
    vici_writes: int
    invalid_files: int
    rounds: Rounds
    version: str


def _epoch(iso: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


# Per connection: (name, type, help, extra label, the values of a status
# entry). Written as text directly (connection_exposition): at 1000
# connections that is 11,000 samples, and the client library's generic
# formatter took 80 ms a scrape for them; ids need no escaping beyond what
# _label does, and the label prefix of each connection is made once.
_CONN_FAMILIES = (
    ("vpnd_connection_up", "gauge", "1 if the connection is ACTIVE, else 0"),
    ("vpnd_connection_status", "gauge",
     "The connection's status, as a state set (1 for the current one)"),
    ("vpnd_connection_status_age_seconds", "gauge",
     "Seconds since the connection's status or reason last changed"),
    ("vpnd_connection_bytes_total", "counter",
     "Bytes through the connection's installed CHILD_SAs (starts again when they are "
     "replaced)"),
    ("vpnd_connection_packets_total", "counter",
     "Packets through the connection's installed CHILD_SAs (starts again when they are "
     "replaced)"),
    ("vpnd_connection_rekeys_total", "counter", "Rekeys charon reported since vpnd started"),
)


def _label(value) -> str:
    return str(value or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def connection_exposition(report: list[dict], now: float) -> str:
    """The per-connection series in the Prometheus text format (pure)."""
    lines = {name: [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
             for name, kind, text in _CONN_FAMILIES}
    up, status, age, octets, packets, rekeys = (lines[f[0]] for f in _CONN_FAMILIES)
    for service in report:
        sid, ns = _label(service.get("id")), _label(service.get("namespace"))
        for cid, conn in service.get("ipsec_site_connections", {}).items():
            ids = f'connection="{_label(cid)}",namespace="{ns}",service="{sid}"'
            current = conn["status"]
            up.append(f"vpnd_connection_up{{{ids}}} {1.0 if current == 'ACTIVE' else 0.0}")
            for s in STATUSES:
                status.append(f'vpnd_connection_status{{{ids},status="{s}"}} '
                              f"{1.0 if current == s else 0.0}")
            since = _epoch(conn.get("since"))
            if since is not None:
                age.append(f"vpnd_connection_status_age_seconds{{{ids}}} "
                           f"{max(0.0, now - since)}")
            children = conn.get("child_sas", {}).values()
            for family, kind in ((octets, "bytes"), (packets, "packets")):
                for way in ("in", "out"):
                    total = float(sum(c.get(f"{kind}_{way}", 0) for c in children))
                    family.append(f'vpnd_connection_{kind}_total{{connection="{_label(cid)}",'
                                  f'direction="{way}",namespace="{ns}",service="{sid}"}} '
                                  f"{total}")
            for level in ("ike", "child"):
                rekeys.append(f'vpnd_connection_rekeys_total{{connection="{_label(cid)}",'
                              f'level="{level}",namespace="{ns}",service="{sid}"}} '
                              f"{float(conn.get(f'{level}_rekeys', 0))}")
    return "\n".join(line for family in lines.values() for line in family) + "\n"


def families(snap: Snapshot, now: float) -> list:
    """The daemon's and charons' metric families (the client library
    formats these few)."""
    # Imported here: the daemon imports this module's data classes whether
    # metrics are on or not, and need not load the client library for them.
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
