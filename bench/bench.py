"""How fast a change lands: vpnd side by side with `swanctl --load-all`.

Run as root: `scripts/bench` (N=1000), `scripts/bench --smoke` (N=20).
Sets up its own namespaces and charons, prints a table, cleans up. Every
figure is measured in this run, on this machine, for both: the median of
--reps repetitions, with min and max. Benchmark connections are
response-only with peers in 198.18.0.0/15 and the namespaces have no
route out: nothing is ever sent off this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import vici

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpnd.drivers.charon_process import CharonSpawner  # noqa: E402
from vpnd.drivers.strongswan_mapping import render  # noqa: E402
from lab.testbed import TwoSites, VpndProcess, ip, kill_namespace_processes, wait_for  # noqa: E402
from vpnd.state.validation import parse_service  # noqa: E402

# bursts.py imports its helpers from here: the running script, not a second copy.
sys.modules.setdefault("bench", sys.modules[__name__])
import bursts  # noqa: E402
import tenant_files  # noqa: E402

# One service (and file) per connection, as an agent writes them.
PER_FILE = 1
LOCAL = "198.18.0.1"
WRITES = ("requests: load-", "requests: unload-", "requests: initiate", "requests: terminate")


# --- desired state ------------------------------------------------------

def services(ns: str, n: int, first: int = 0, psk_suffix: str = "",
             per_file: int = PER_FILE) -> list[dict]:
    """n response-only connections in files of per_file, peers in 198.19.0.0/16
    (and on into 198.20.0.0/16 past 62,500)."""
    out = []
    for f in range((n + per_file - 1) // per_file):
        conns = []
        for i in range(first + f * per_file, first + min(n, (f + 1) * per_file)):
            peer = f"198.{19 + i // 62500}.{i % 62500 // 250}.{i % 250 + 1}"
            conns.append({"id": f"b{i:05d}", "peer_address": peer, "peer_id": peer,
                          "local_cidrs": ["198.18.1.0/24"], "peer_cidrs": [f"{peer}/32"],
                          "psk": f"bench-psk-{i}{psk_suffix}", "initiator": "response-only",
                          "ikepolicy": {"ike_version": "v2", "pfs": "group14",
                                        "auth_algorithm": "sha256"},
                          "ipsecpolicy": {"pfs": "group14", "auth_algorithm": "sha256"}})
        out.append({"id": f"{ns}-s{f:05d}", "namespace": ns, "external_ip": LOCAL,
                    "ipsec_site_connections": conns})
    return out


def swanctl_conf(docs: list[dict]) -> str:
    """The same connections and secrets as a swanctl.conf, from vpnd's own
    mapping, so both sides load exactly the same configuration."""
    conns, secrets_ = [], []
    for doc in docs:
        service, errors = parse_service(doc, "bench")
        assert not errors, errors
        for conn in service.connections:
            r = render(conn, libipsec=True)
            conns.append(_section(r.conn))
            owners = "\n".join(f"        id-{k} = {o}" for k, o in enumerate(r.secret["owners"]))
            secrets_.append(f"    ike-{r.name} {{\n{owners}\n        secret = "
                            f"\"{r.secret['data']}\"\n    }}")
    return ("connections {\n" + "\n".join(conns) + "\n}\nsecrets {\n" +
            "\n".join(secrets_) + "\n}\n")


def _section(d: dict, indent: int = 1) -> str:
    pad = "    " * indent
    lines = []
    for key, value in d.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key} {{\n{_section(value, indent + 1)}\n{pad}}}")
        elif isinstance(value, list):
            lines.append(f"{pad}{key} = {','.join(value)}")
        else:
            lines.append(f"{pad}{key} = {value}")
    return "\n".join(lines)


# --- helpers ----------------------------------------------------------------

def median(values):
    return statistics.median(values), min(values), max(values)


def new_namespace(name: str) -> None:
    new_namespaces([name])


def new_namespaces(names: list[str]) -> None:
    ip_batch([f"netns add {n}" for n in names])
    for n in names:
        # Only loopback and a local address on it: no route out of here.
        ip_batch(["link set lo up", f"addr add {LOCAL}/32 dev lo"], netns=n)


def ip_batch(lines: list[str], netns: str | None = None, check: bool = True) -> None:
    """Many `ip` commands in one process (500 namespaces in a second)."""
    subprocess.run(["ip", *(["-n", netns] if netns else []), "-force", "-batch", "-"],
                   input="\n".join(lines) + "\n", text=True, check=check,
                   capture_output=True)


def swanctl_load(conf: Path, sock: str) -> None:
    subprocess.run(["swanctl", "--load-all", "--file", str(conf), "--uri", f"unix://{sock}"],
                   check=True, capture_output=True)


def charon_memory(namespaces: set[str]) -> list[dict]:
    """RSS, PSS and USS (kB) of every charon in these namespaces: PSS is
    its fair share of the pages charons share (libraries), USS its own."""
    inodes = {os.stat(f"/run/netns/{n}").st_ino for n in namespaces}
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "charon-systemd" or \
                    os.stat(f"/proc/{pid}/ns/net").st_ino not in inodes:
                continue
            fields = dict(line.split(":", 1) for line in
                          Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        except OSError:
            continue
        kb = {k: int(v.split()[0]) for k, v in fields.items()}
        out.append({"rss": kb["Rss"], "pss": kb["Pss"],
                    "uss": kb["Private_Clean"] + kb["Private_Dirty"]})
    return out


def fresh_charon(spawner: CharonSpawner, ns: str) -> str:
    spawner.stop(ns)
    return spawner.ensure(ns)


def vici_writes_in_log(spawner: CharonSpawner, ns: str) -> int:
    text = spawner.log_path(ns).read_text() if spawner.log_path(ns).exists() else ""
    return sum(text.count(w) for w in WRITES)


def log_events(path: Path, event: str, since: int = 0) -> list[dict]:
    out = []
    for line in path.read_text().splitlines()[since:]:
        if f'"{event}"' in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


class LogTail:
    """vpnd's JSON log from where it ends now: each poll reads only what
    was added (re-reading a 10 MB log every 20 ms took a core from the
    vpnd and charon being timed)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size
        self.events: list[dict] = []

    def find(self, event: str, **fields) -> list[dict]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written waits for the next poll
        self.offset += end
        for line in data[:end].splitlines():
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass
        return [e for e in self.events if e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items())]


def ts(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the figures ------------------------------------------------------------

class CharonLog:
    """charon's own view of a change: a VICI session of the bench's own,
    subscribed to charon's log, notes when each "added/updated/replaced
    vici connection: NAME" line arrives (charon logs it once the
    connection is loaded)."""

    def __init__(self, socket_path: str):
        self.seen: dict[str, float] = {}
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(socket_path)
        self.events = vici.Session(self.sock).listen(["log"])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for _label, event in self.events:
                msg = event.get("msg", b"").decode(errors="replace")
                if "vici connection: " in msg:
                    self.seen[msg.rsplit(" ", 1)[1]] = time.time()
        except Exception:  # closed at the end
            pass

    def wait(self, name: str, timeout: float = 60) -> float:
        return wait_for(lambda: self.seen.get(name), timeout, interval=0.001,
                        what=f"charon's log line for {name}")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Bench:
    def __init__(self, args):
        self.args = args
        self.tag = secrets.token_hex(3)
        self.work = Path(tempfile.mkdtemp(prefix="vpnd-bench-"))
        self.namespaces: list[str] = []
        self.vpnds: list[VpndProcess] = []
        self.spawners: list[CharonSpawner] = []
        self.labs: list[TwoSites] = []
        self.rows: list[tuple] = []
        self.rss: dict[int, float] = {}

    def cleanup(self):
        for v in self.vpnds:
            try:
                v.cleanup()
            except Exception:
                pass
        for s in self.spawners:
            s.stop_all(s.namespaces())
        for lab in self.labs:
            lab.destroy()
        for ns in self.namespaces:
            kill_namespace_processes(ns)
        if self.namespaces:
            ip_batch([f"netns del {ns}" for ns in self.namespaces], check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def row(self, name, vpnd, baseline=None, target="", ok=None, unit="s", floor=None):
        """floor: charon's own time for the same requests (bursts.py)."""
        self.rows.append((name, vpnd, baseline, target, ok, unit, floor))

    def run(self):
        if not self.args.bursts_only:
            self.figures()
        if not self.args.quick:
            bursts.run(self)  # (11) and charon's floor, for each of --burst-sizes
        if not (self.args.quick or self.args.bursts_only):
            # (12) the costliest file a tenant can write (smoke: a smaller cap)
            tenant_files.run(self, cap=64 * 1024 if self.args.smoke else tenant_files.MAX_BYTES)

    def figures(self):
        sizes = sorted(self.args.sizes)
        for n in sizes:
            self.scale(n, biggest=n == sizes[-1])
        if len(sizes) > 1:
            lo, hi = sizes[0], sizes[-1]
            per = (self.rss[hi] - self.rss[lo]) * 1024 / (hi - lo)
            self.row(f"6 RSS per connection ({lo} -> {hi})", (per, per, per), None, "", None,
                     unit="kB")
        if self.args.quick:
            return
        # (8) metrics, (4) status latency, (9) many namespaces.
        n = self.args.metrics_n
        ns = f"vbm{self.tag}n"
        new_namespace(ns)
        self.namespaces.append(ns)
        self.metrics(self.docs(ns, n), n, self.args.reps)
        self.status_latency(self.args.reps)
        self.many_namespaces(self.args.namespaces, self.args.per_namespace)

    def docs(self, ns: str, n: int) -> list[dict]:
        return services(ns, n, per_file=self.args.per_file)

    def scale(self, n: int, biggest: bool):
        """Figures 1-3, 5, 6 at N connections in one namespace."""
        reps = self.args.reps if n < 10000 else max(2, self.args.reps // 2)
        ns = f"vb{self.tag}{n}"
        new_namespace(ns)
        self.namespaces.append(ns)
        docs = self.docs(ns, n)
        conf = self.work / f"swanctl-{n}.conf"
        conf.write_text(swanctl_conf(docs))

        # (1) cold start, vpnd and swanctl: into a charon that runs, and
        # from nothing (the charon's start included).
        base = CharonSpawner(str(self.work / f"swanctl-run-{n}"), True)
        self.spawners.append(base)
        swan, swan_whole = [], []
        for _ in range(reps):
            base.stop(ns)
            t0 = time.monotonic()
            sock = base.ensure(ns)
            t1 = time.monotonic()
            swanctl_load(conf, sock)
            swan.append(time.monotonic() - t1)
            swan_whole.append(time.monotonic() - t0)
        base.stop(ns)
        cold, whole = [], []
        for rep in range(reps):
            for into, what in ((cold, "running"), (whole, "nothing")):
                v = self.new_vpnd(f"cold{n}-{rep}-{what}", docs)
                spawner = CharonSpawner(str(v.run_dir), True)
                self.spawners.append(spawner)
                if into is cold:
                    spawner.ensure(ns)
                into.append(self.first_pass(v))
                # load-shared + load-conn per connection (+ reload-settings once)
                assert v.status_document()["vici_writes"] >= 2 * n
                if not (rep == reps - 1 and into is whole):
                    v.cleanup()
        self.row(f"1 cold start, N={n}, charon running", median(cold), median(swan),
                 "vpnd <= swanctl" if n >= 10000 else "",
                 median(cold)[0] <= median(swan)[0] if n >= 10000 else None)
        self.row(f"1 cold start, N={n}, from nothing", median(whole), median(swan_whole),
                 "vpnd <= swanctl" if n >= 10000 else "",
                 median(whole)[0] <= median(swan_whole)[0] if n >= 10000 else None)

        # (2) one change among N, by atomic rename, timed to charon's own
        # log line for that connection (and to vpnd's, for the record).
        v = self.vpnds[-1]
        # A change in a running vpnd: once what a cold start leaves behind
        # is done (its last valid copies, one a file, written in a thread
        # of their own, would otherwise share the 2 cores with the first
        # changes).
        kept = v.data_dir / "last-valid"
        wait_for(lambda: kept.is_dir() and len(list(kept.glob("*.json"))) >= len(docs), 300,
                 interval=0.1, what="the last valid copies written")
        spawner = CharonSpawner(str(v.run_dir), True)
        charon = CharonLog(v.socket(ns))
        change, logged = [], []
        for rep in range(self.args.changes):
            doc = json.loads(json.dumps(docs[(rep * 37) % len(docs)]))
            conn = doc["ipsec_site_connections"][0]
            conn["peer_cidrs"] = [f"198.18.{100 + rep}.0/24"]
            tail = LogTail(v.log_path)
            tmp = v.state_dir / f".{doc['id']}.tmp"
            tmp.write_text(json.dumps(doc))
            tmp.chmod(0o600)
            charon.seen.pop(conn["id"], None)
            t0 = time.time()
            os.replace(tmp, v.state_dir / f"{doc['id']}.json")
            change.append(charon.wait(conn["id"]) - t0)
            events = wait_for(lambda: tail.find("change applied", connection=conn["id"]), 60,
                              interval=0.02, what="the change applied")
            logged.append(ts(events[0]) - t0)
            # One change at a time: let that pass finish (status, record).
            wait_for(lambda: tail.find("reconciled"), 60, interval=0.02,
                     what="the pass to finish")
        charon.close()
        swan = []
        sock = fresh_charon(base, ns)
        swanctl_load(conf, sock)
        for rep in range(reps):
            conn = docs[(rep * 37) % len(docs)]["ipsec_site_connections"][0]
            text = conf.read_text()
            old = f"remote_ts = {conn['peer_cidrs'][0]}"
            assert old in text
            conf.write_text(text.replace(old, f"remote_ts = 198.18.{100 + rep}.0/24", 1))
            t0 = time.monotonic()
            swanctl_load(conf, sock)
            swan.append(time.monotonic() - t0)
        base.stop(ns)
        floors = bursts.one_change_floors(self, ns, docs)
        m, ratio = median(change)[0], median(swan)[0] / median(change)[0]
        target = "<= 3 ms" + (", >= 100x" if n == 1000 else "") + ", <= 1.5x floor"
        ok = m <= 0.003 and (ratio >= 100 if n == 1000 else True) and \
            m <= 1.5 * floors["ts"][0]
        self.row(f"2 one change among N={n} (charon's log)", median(change), median(swan),
                 target, ok if n >= 1000 else None, floor=floors["ts"])
        self.row("2   the same, vpnd's log", median(logged), None, "", None)
        bursts.more_changes(self, v, ns, docs, floors)

        # (10) `vpnd status` on N connections: the command, start to end.
        took = []
        for _ in range(reps):
            t0 = time.monotonic()
            done = v.cli("status")
            took.append(time.monotonic() - t0)
            assert done.returncode == 0 and done.stdout.count("\n") > n, done.stderr
        self.row(f"10 vpnd status, N={n}", median(took), None,
                 "<= 200 ms" if n >= 10000 else "", median(took)[0] <= 0.2 if n >= 10000 else None)

        rss = peak_rss_mb(v.proc.pid)
        self.rss[n] = rss
        if not biggest or self.args.quick:
            self.row(f"6 peak RSS, N={n}", (rss, rss, rss), None, "", None, unit="MB")
            v.cleanup()
            return

        # (3) resync with nothing changed: 0.1 s each, so more of them.
        resync, writes = [], 0
        for _ in range(4 * reps):
            before = (v.status_document()["vici_writes"], vici_writes_in_log(spawner, ns))
            # Only what the log gains is read: re-reading its 20,000 lines
            # every 5 ms took half a core from the vpnd being timed.
            tail = LogTail(v.log_path)
            v.signal(signal.SIGHUP)
            events = wait_for(lambda: tail.find("reconciled", trigger="SIGHUP"), 60,
                              interval=0.005, what="the resync")
            resync.append(events[0]["ms"] / 1000)
            after = (v.status_document()["vici_writes"], vici_writes_in_log(spawner, ns))
            writes += (after[0] - before[0]) + (after[1] - before[1])
        m = median(resync)[0]
        self.row(f"3 resync, nothing changed, N={n}", median(resync), None,
                 f"<= 50 ms, 0 writes (seen: {writes})", m <= 0.050 and writes == 0)

        # (5) idle CPU and (6) peak RSS, N loaded, nothing changing.
        window = self.args.idle / reps
        idle = []
        for _ in range(reps):
            c0, t0 = cpu_seconds(v.proc.pid), time.monotonic()
            end = t0 + window
            wait_for(lambda: time.monotonic() >= end, window + 5, interval=0.5,
                     what="the idle window")
            idle.append((cpu_seconds(v.proc.pid) - c0) / (time.monotonic() - t0))
        rss = peak_rss_mb(v.proc.pid)
        self.rss[n] = rss
        # The 0.5 % target was set for N=1000; at 10,000 the look every
        # status_interval (10 s) reads and plans ten times as much.
        small = n <= 1000
        self.row(f"5 idle CPU, N={n} ({self.args.idle:.0f} s)", median(idle), None,
                 "< 0.5 % of a core" if small else "",
                 median(idle)[0] < 0.005 if small else None, unit="%")
        self.row(f"6 peak RSS, N={n}", (rss, rss, rss), None, "<= 60 MB", rss <= 60, unit="MB")
        v.cleanup()

    def metrics(self, docs, n, reps):
        """vpnd with metrics on, in a namespace of the bench's own (its
        loopback), the same N connections; scraped from inside it."""
        mon = f"vbm{self.tag}"
        new_namespace(mon)
        self.namespaces.append(mon)
        ip("-n", mon, "link", "set", "lo", "up")
        v = self.new_vpnd("metrics", docs, metrics={"listen": "127.0.0.1:19577"})
        v.start(wrap=("ip", "netns", "exec", mon))
        wait_for(lambda: (v.status_document() or {}).get("vici_writes", 0) >= 2 * n, 600,
                 interval=0.05, what="vpnd with metrics loaded")
        scrape = ("import json, sys, time, urllib.request\n"
                  "out = []\n"
                  "for _ in range(int(sys.argv[1])):\n"
                  "    t0 = time.monotonic()\n"
                  "    body = urllib.request.urlopen('http://127.0.0.1:19577/metrics').read()\n"
                  "    out.append(time.monotonic() - t0)\n"
                  "assert b'vpnd_connection_up' in body\n"
                  "print(json.dumps(out))")
        done = subprocess.run(["ip", "netns", "exec", mon, sys.executable, "-c", scrape,
                               str(max(reps, 5) * 4)], capture_output=True, text=True,
                              check=True, timeout=300)
        times = json.loads(done.stdout)
        rss = peak_rss_mb(v.proc.pid)
        m = median(times)
        self.row(f"8 metrics scrape, N={n}", m, None, "<= 50 ms", m[0] <= 0.050)
        if n in self.rss:
            added = rss - self.rss[n]
            self.row(f"8 metrics: peak RSS added, N={n}", (added, added, added), None,
                     "<= 10 MB", added <= 10, unit="MB")
        v.cleanup()

    def status_latency(self, reps):
        lab = TwoSites(prefix="vbl").create()
        self.labs.append(lab)
        a, b = VpndProcess(self.work / "lat-a"), VpndProcess(self.work / "lat-b")
        self.vpnds += [a, b]
        for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
            conn = {"id": "c1", "peer_address": peer.wan4, "peer_id": peer.wan4,
                    "local_cidrs": [me.lan4], "peer_cidrs": [peer.lan4], "psk": "bench-lat-psk",
                    "initiator": "bi-directional" if side == "b" else "response-only",
                    "ikepolicy": {"ike_version": "v2"}}
            v.write("svc.json", {"id": f"svc-{side}", "namespace": me.gw,
                                 "external_ip": me.wan4, "ipsec_site_connections": [conn]})
        a.start()
        b.start()
        a.wait_conn("svc-a", "c1", timeout=60)
        spawner_b = CharonSpawner(str(b.run_dir), True)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(a.socket(lab.a.gw))
        # The SA event is timed as it reaches a listener of our own on a's
        # charon; the latency is from then until status.json says so.
        events = vici.Session(sock).listen(["child-updown"], timeout=0.001)
        next(events)  # registered
        down, up = [], []
        for _ in range(reps):
            for going_up, into in ((False, down), (True, up)):
                if going_up:
                    b.start()  # starts its charon; bi-directional, it initiates
                else:
                    b.stop()  # so that nothing brings the SA back at once
                    # The peer's charon deletes its SAs on the way out.
                    threading.Thread(target=spawner_b.stop, args=(lab.b.gw,)).start()
                want = "ACTIVE" if going_up else "DOWN"
                seen_at, deadline = None, time.monotonic() + 60
                for label, ev in events:
                    now = time.time()
                    if label and seen_at is None and (ev.get("up") == b"yes") == going_up:
                        seen_at = now
                    if seen_at is not None and \
                            (a.conn_status("svc-a", "c1") or {}).get("status") == want:
                        into.append(time.time() - seen_at)
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"status never became {want}")
        events.close()
        sock.close()
        both = down + up
        self.row("4 status latency (SA down/up -> status.json)", median(both), None,
                 "<= 1 s", median(both)[0] <= 1.0)

    def many_namespaces(self, n_ns: int, per_ns: int):
        """(9) Many routers: n_ns namespaces with per_ns connections each,
        from nothing (vpnd starts every charon); a change in one of them;
        what each charon costs in memory."""
        names = [f"vr{self.tag}{i:03d}" for i in range(n_ns)]
        new_namespaces(names)
        self.namespaces += names
        docs = [d for k, ns in enumerate(names)
                for d in services(ns, per_ns, first=k * per_ns, per_file=per_ns)]
        whole = []
        reps = max(1, self.args.reps // 2)
        for rep in range(reps):
            v = self.new_vpnd(f"routers{rep}", docs)
            self.spawners.append(CharonSpawner(str(v.run_dir), True))
            whole.append(self.first_pass(v, timeout=900))
            assert v.status_document()["vici_writes"] >= 2 * n_ns * per_ns
            if rep < reps - 1:
                v.cleanup()
        self.row(f"9 {n_ns} namespaces x {per_ns}, from nothing", median(whole), None,
                 "<= 5 s", median(whole)[0] <= 5.0)
        mem = charon_memory(set(names))
        assert len(mem) == n_ns, f"{len(mem)} charons of {n_ns}"
        for what in ("rss", "pss", "uss"):
            per = median([m[what] / 1024 for m in mem])
            self.row(f"9   charon {what.upper()} per namespace", per, None, "", None, unit="MB")
        total = sum(m["pss"] for m in mem) / 1024
        self.row(f"9   all {n_ns} charons, PSS", (total, total, total), None, "", None, unit="MB")
        # One change in one of the namespaces, timed as in figure 2.
        v = self.vpnds[-1]
        change = []
        for rep in range(self.args.changes):
            k = (rep * 7) % n_ns
            doc = json.loads(json.dumps(docs[k]))
            conn = doc["ipsec_site_connections"][0]
            conn["peer_cidrs"] = [f"198.18.{100 + rep}.0/24"]
            charon = CharonLog(v.socket(names[k]))
            tail = LogTail(v.log_path)
            tmp = v.state_dir / f".{doc['id']}.tmp"
            tmp.write_text(json.dumps(doc))
            tmp.chmod(0o600)
            t0 = time.time()
            os.replace(tmp, v.state_dir / f"{doc['id']}.json")
            change.append(charon.wait(conn["id"]) - t0)
            charon.close()
            wait_for(lambda: tail.find("reconciled"), 60, interval=0.02,
                     what="the pass to finish")
        self.row(f"9   one change in one of {n_ns} namespaces", median(change), None,
                 "as in one namespace", None)
        v.cleanup()

    def new_vpnd(self, name, docs, **config) -> VpndProcess:
        """A vpnd (not started) with these state files, cleaned up at the end."""
        v = VpndProcess(self.work / name, log_format="json", **config)
        self.vpnds.append(v)
        for d in docs:
            v.write(f"{d['id']}.json", d)
        return v

    def first_pass(self, v: VpndProcess, timeout: float = 600) -> float:
        t0 = time.monotonic()
        v.start()
        wait_for(lambda: v.status_document() is not None, timeout, interval=0.002,
                 what="vpnd's first pass")
        return time.monotonic() - t0

    def table(self) -> str:
        def fmt(v, unit):
            if v is None:
                return "-"
            med, lo, hi = v
            if unit == "%":
                return f"{med * 100:.3f} % ({lo * 100:.3f}-{hi * 100:.3f})"
            if unit == "MB":
                return f"{med:.1f} MB"
            if unit == "kB":
                return f"{med:.1f} kB"
            scale, u = (1000, "ms") if med < 10 else (1, "s")
            return f"{med * scale:.1f} {u} ({lo * scale:.1f}-{hi * scale:.1f})"
        def times(r):
            return "-" if r is None else f"{r:.2f}x" if r < 10 else f"{r:.0f}x"
        header = ("figure", "vpnd median (min-max)", "swanctl --load-all", "ratio",
                  "charon floor", "vpnd/floor", "target", "")
        rows = [header]
        for name, vpnd, base, target, ok, unit, floor in self.rows:
            r = base[0] / vpnd[0] if base and vpnd and vpnd[0] else None
            f = vpnd[0] / floor[0] if floor and vpnd and floor[0] else None
            rows.append((name, fmt(vpnd, unit), fmt(base, unit), times(r), fmt(floor, unit),
                         times(f), target, "" if ok is None else ("PASS" if ok else "MISS")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                         for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000],
                        help="connections in one namespace, one row each")
    parser.add_argument("--per-file", type=int, default=PER_FILE,
                        help="connections per state file (an agent writes one)")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--changes", type=int, default=15, help="changes timed per N")
    parser.add_argument("--idle", type=float, default=60, help="idle CPU window, seconds")
    parser.add_argument("--metrics-n", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--per-namespace", type=int, default=2)
    parser.add_argument("--burst-sizes", type=int, nargs="*", default=[2000, 10000],
                        help="N for the burst rows and charon's floor (bursts.py); "
                             "none: no burst rows")
    parser.add_argument("--bursts-only", action="store_true",
                        help="the burst rows only (for iterating on bursts)")
    parser.add_argument("--quick", action="store_true",
                        help="figures 1, 2 (and 6) only (for profiling work)")
    parser.add_argument("--smoke", action="store_true",
                        help="small sizes, 2 repetitions, short windows: that it runs, "
                             "not figures")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.reps, args.changes, args.idle = [10, 20], 2, 2, 2
        args.metrics_n, args.namespaces, args.per_namespace = 20, 3, 2
        args.burst_sizes = [20, 40]
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 1
    from vpnd.system import log
    log.setup("json", "error")  # the spawner's own lines would clutter the table
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()
    print(f"vpnd benchmark: {os.uname().machine}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}, N={[] if args.bursts_only else args.sizes}, "
          f"{args.per_file} connection(s) "
          f"per file, {args.reps} repetitions, {args.changes} changes per N, "
          f"bursts at N={args.burst_sizes}")
    print(bench.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
