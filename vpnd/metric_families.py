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
CONN_LABELS = ("service", "connection", "namespace")


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


def families(snap: Snapshot, now: float) -> list:
    # Imported here: the daemon imports this module's data classes whether
    # metrics are on or not, and need not load the client library for them.
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily)

    up = GaugeMetricFamily("vpnd_connection_up", "1 if the connection is ACTIVE, else 0",
                           labels=CONN_LABELS)
    status = GaugeMetricFamily("vpnd_connection_status",
                               "The connection's status, as a state set (1 for the current)",
                               labels=(*CONN_LABELS, "status"))
    age = GaugeMetricFamily("vpnd_connection_status_age_seconds",
                            "Seconds since the connection's status or reason last changed",
                            labels=CONN_LABELS)
    traffic = {kind: CounterMetricFamily(
        f"vpnd_connection_{kind}", f"{kind.capitalize()} through the connection's installed "
        f"CHILD_SAs (starts again when they are replaced)", labels=(*CONN_LABELS, "direction"))
        for kind in ("bytes", "packets")}
    rekeys = CounterMetricFamily("vpnd_connection_rekeys",
                                 "Rekeys charon reported since vpnd started",
                                 labels=(*CONN_LABELS, "level"))
    for service in snap.report:
        sid, ns = service.get("id") or "", service.get("namespace") or ""
        for cid, conn in service.get("ipsec_site_connections", {}).items():
            labels = (sid, cid, ns)
            up.add_metric(labels, 1.0 if conn["status"] == "ACTIVE" else 0.0)
            for s in STATUSES:
                status.add_metric((*labels, s), 1.0 if conn["status"] == s else 0.0)
            since = _epoch(conn.get("since"))
            if since is not None:
                age.add_metric(labels, max(0.0, now - since))
            children = conn.get("child_sas", {}).values()
            for kind, family in traffic.items():
                for way in ("in", "out"):
                    family.add_metric((*labels, way),
                                      float(sum(c.get(f"{kind}_{way}", 0) for c in children)))
            rekeys.add_metric((*labels, "ike"), float(conn.get("ike_rekeys", 0)))
            rekeys.add_metric((*labels, "child"), float(conn.get("child_rekeys", 0)))

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
    return [up, status, age, *traffic.values(), rekeys, charon_up, restarts, duration,
            passes, last, writes, invalid, build]
