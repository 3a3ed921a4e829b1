"""The Prometheus metrics, built from what vpnd already holds (pure).

A scrape never calls charon: `connection_parts` and `daemon_exposition`
turn the last published status report and the daemon's counters into
the text format, afresh each time, so a connection that is gone has no
series left (no stale labels). Labels are the Neutron ids people search by: service,
connection, namespace; the per-connection label set stays that size, so
1000 connections make a few thousand series.
"""
from __future__ import annotations

import calendar
import math
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


def connection_exposition(report, now: float) -> str:
    """The per-connection series in the Prometheus text format (pure)."""
    return b"".join(connection_parts(report, now)).decode()


def connection_parts(report, now: float) -> list:
    """connection_exposition as bytes, a family at a time (joined by the
    caller with what follows). Each connection's samples go into its
    families' buffers as they are made: at 1000 connections the 11,000
    lines as strings, joined, encoded and joined again were 4 MB at once
    for 1.1 MB of text."""
    heads = [f"# HELP {name} {text}\n# TYPE {name} {kind}\n".encode()
             for name, kind, text in _CONN_FAMILIES]
    up, status, age, octets, packets, rekeys = bufs = [bytearray() for _ in _CONN_FAMILIES]
    for service in report:
        sid, ns = _label(service.get("id")), _label(service.get("namespace"))
        for cid, conn in service.get("ipsec_site_connections", {}).items():
            cid = _label(cid)
            ids = f'connection="{cid}",namespace="{ns}",service="{sid}"'
            current = conn["status"]
            up += f"vpnd_connection_up{{{ids}}} {1.0 if current == 'ACTIVE' else 0.0}\n".encode()
            status += "".join(f'vpnd_connection_status{{{ids},status="{s}"}} '
                              f"{1.0 if current == s else 0.0}\n" for s in STATUSES).encode()
            since = _epoch(conn.get("since"))
            if since is not None:
                age += (f"vpnd_connection_status_age_seconds{{{ids}}} "
                        f"{max(0.0, now - since)}\n").encode()
            children = conn.get("child_sas", {}).values()
            for family, kind in ((octets, "bytes"), (packets, "packets")):
                for way in ("in", "out"):
                    total = float(sum(c.get(f"{kind}_{way}", 0) for c in children))
                    family += (f'vpnd_connection_{kind}_total{{connection="{cid}",'
                               f'direction="{way}",namespace="{ns}",service="{sid}"}} '
                               f"{total}\n").encode()
            for level in ("ike", "child"):
                rekeys += (f'vpnd_connection_rekeys_total{{connection="{cid}",'
                           f'level="{level}",namespace="{ns}",service="{sid}"}} '
                           f"{float(conn.get(f'{level}_rekeys', 0))}\n").encode()
    return [part for head, buf in zip(heads, bufs) for part in (head, buf)]


def daemon_exposition(snap: Snapshot, now: float) -> bytes:
    """The daemon's and charons' families in the text format, as the
    official client's generate_latest writes them (a test holds the two
    alike). Written here, not by the client library: importing it loads
    OpenSSL (its exposition module's signatures name ssl's types), 7 MB
    of a daemon's RSS for eight families."""
    out: list[str] = []

    def family(name, kind, help_text, samples=()):
        out.append(f"# HELP {name} {_help(help_text)}\n# TYPE {name} {kind}\n")
        for suffix, labels, value in samples:
            shown = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels))
            out.append(f"{name}{suffix}{{{shown}}} {_number(value)}\n" if shown
                       else f"{name}{suffix} {_number(value)}\n")

    family("vpnd_charon_up", "gauge", "1 if the namespace's charon answers",
           [("", (("namespace", ns),), 1.0 if answers else 0.0)
            for ns, answers in sorted(snap.charons.items())])
    family("vpnd_charon_restarts_total", "counter",
           "Times vpnd started a namespace's charon again after it died or stopped answering",
           [("", (("namespace", ns),), float(n)) for ns, n in sorted(snap.charon_restarts.items())])
    rounds, total, buckets = snap.rounds, 0, []
    for top, n in zip((*BUCKETS, float("inf")), rounds.bucket_counts):
        total += n
        buckets.append(("_bucket", (("le", "+Inf" if top == float("inf") else repr(top)),),
                        float(total)))
    family("vpnd_reconcile_duration_seconds", "histogram", "How long each reconcile round took",
           [*buckets, ("_count", (), float(total)), ("_sum", (), rounds.seconds_sum)])
    family("vpnd_reconcile_passes_total", "counter", "Reconcile rounds by outcome",
           [("", (("outcome", o),), float(rounds.outcomes.get(o, 0))) for o in ("ok", "failed")])
    family("vpnd_last_full_reconcile_success_timestamp_seconds", "gauge",
           "When a full resync last ended with nothing failing (0: not yet)",
           [("", (), rounds.last_full_success or 0.0)])
    family("vpnd_vici_writes_total", "counter", "Writes vpnd sent to charons",
           [("", (), float(snap.vici_writes))])
    family("vpnd_invalid_state_files", "gauge",
           "State files (or their connections) with problems now",
           [("", (), float(snap.invalid_files))])
    family("vpnd_build_info", "gauge", "vpnd's version", [("", (("version", snap.version),), 1.0)])
    return "".join(out).encode()


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value) -> str:
    """As the client library writes a sample's value (Go's float format)."""
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
