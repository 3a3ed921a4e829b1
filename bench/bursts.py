"""Bursts: many state files changing at once, beside charon's own floor.

For each N in --burst-sizes, in one namespace, one connection a file,
every connection sharing one ikepolicy and one ipsecpolicy (as
bench.services() makes them):

- charon's floor: a VICI session of the bench's own sends exactly the
  messages vpnd's mapping renders (strongswan_mapping.render, as
  swanctl_conf does), pipelined where vpnd can pipeline (a cold start, a
  shared policy change: every request sent at once, from a thread of its
  own, while the answers are read), one request after another where a
  change must wait for an answer (list-sas before the unload), timed
  from the first send to the last answer. The messages are framed before
  the clock starts: what is left is charon's own work and the socket's.
- vpnd, timed from charon's side (its log lines "added/updated/replaced
  vici connection: NAME", as figure 2 is): a cold start of N files; one
  change among N (traffic selector, peer address, PSK), beside the floor
  of the requests that change needs; all N files rewritten
  byte-identical; the shared ikepolicy's lifetime changed in all N
  (beside `swanctl --load-all` of the same edit); a flood of N new files
  into a vpnd that has none.

Bursts are timed by reading charon's own log file (vpnd's strongswan.conf
has every charon write one, the floor's charon too), not with a VICI log
listener: a listener costs charon itself time under a burst (1000
pipelined loads here: 250 ms without one, 400 ms with one), and would slow
the very thing being timed. Single changes are timed with the listener,
as figure 2 is (one line each). The file is polled every few ms: a
burst's times are late by up to that much.
"""
from __future__ import annotations

import json
import os
import re
import socket
import struct
import threading
import time
from pathlib import Path

import vici
from vici.protocol import Message, Packet

import bench as b  # the running bench.py (it registers itself under this name)
from lab.testbed import wait_for
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.drivers.strongswan_mapping import render
from vpnd.state.validation import parse_service

# Generous: today's vpnd takes minutes for a policy change of 10,000.
DEADLINE = 600
LIFETIME = 3600  # seconds: neutron.DEFAULT_LIFETIME, what services() gets


# --- what vpnd loads, as messages ---------------------------------------------

def rendered(doc: dict):
    """The Rendered (load-conn and load-shared messages) of each connection
    of a state file, from vpnd's own parsing and mapping."""
    service, errors = parse_service(doc, "bench")
    assert not errors, errors
    return [render(conn, libipsec=True) for conn in service.connections]


def frame(command: str, message: dict) -> bytes:
    """One request as it goes on the socket (vici.protocol.Transport.send)."""
    packet = Packet.request(command, Message.serialize(message))
    return struct.pack("!I", len(packet)) + packet


def with_lifetime(doc: dict, value: int) -> dict:
    doc = json.loads(json.dumps(doc))
    for conn in doc["ipsec_site_connections"]:
        conn["ikepolicy"]["lifetime"] = {"units": "seconds", "value": value}
    return doc


def changed(doc: dict, kind: str, rep: int) -> dict:
    """A state file with one change of its connection: its traffic
    selector ("ts"), its peer (address and id, as a peer that moved:
    "peer"), or its PSK ("psk"). Bench addresses only (198.18.0.0/15)."""
    doc = json.loads(json.dumps(doc))
    conn = doc["ipsec_site_connections"][0]
    if kind == "ts":
        conn["peer_cidrs"] = [f"198.18.{100 + rep % 100}.0/24"]
    elif kind == "peer":
        peer = f"198.18.{200 + rep // 250 % 50}.{rep % 250 + 1}"
        conn["peer_address"] = conn["peer_id"] = peer
    else:
        conn["psk"] = f"{conn['psk']}-changed{rep}"
    return doc


# The requests a change of each kind needs, one after another (what vpnd's
# plan makes of it: list-sas of that name first, for its SAs to end).
CHANGE_REQUESTS = {
    "ts": "list-sas, unload-conn, load-conn",
    "peer": "list-sas, unload-conn, load-shared, load-conn",
    "psk": "list-sas, unload-conn, load-shared, load-conn",
}

# Which connection the rep-th change of each kind touches: figure 2's
# rule for the traffic selector, others beside it.
PICK = {"ts": 0, "peer": 11, "psk": 23}


def pick(kind: str, rep: int, n: int) -> int:
    return (rep * 37 + PICK[kind]) % n


# --- charon's floor -------------------------------------------------------------

class Floor:
    """A charon of the bench's own, in a namespace of the bench's own, and
    a raw VICI session to it."""

    def __init__(self, bench, ns: str, name: str):
        self.bench, self.ns = bench, ns
        self.spawner = CharonSpawner(str(bench.work / name), True)
        bench.spawners.append(self.spawner)
        self.sock: socket.socket | None = None

    def fresh(self) -> "Floor":
        """An empty charon (a new one) and a session to it."""
        self.close()
        path = b.fresh_charon(self.spawner, self.ns)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(DEADLINE)  # a charon that stopped answering ends the bench
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        return self

    def close(self) -> None:
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
            self.sock = None

    def stop(self) -> None:
        self.close()
        self.spawner.stop(self.ns)

    def _receive(self) -> bytes:
        head = self.reader.read(4)
        if len(head) < 4:
            raise ConnectionError("charon closed the session")
        payload = self.reader.read(struct.unpack("!I", head)[0])
        return payload

    @staticmethod
    def _check(payload: bytes, what: str) -> None:
        packet = Packet.parse(payload)
        if packet.response_type != Packet.CMD_RESPONSE:
            raise RuntimeError(f"{what}: answer of type {packet.response_type}")
        answer = Message.deserialize(packet.payload)
        if answer.get("success") not in (None, b"yes"):
            raise RuntimeError(f"{what}: {answer.get('errmsg', b'failed').decode()}")

    def pipelined(self, frames: list[tuple[str, bytes]]) -> float:
        """Every request sent (in a thread of its own), every answer read
        meanwhile; seconds from the first send to the last answer. The
        answers are checked after the clock stops."""
        blob = b"".join(f for _, f in frames)
        answers = []
        sender = threading.Thread(target=self.sock.sendall, args=(blob,), daemon=True)
        t0 = time.perf_counter()
        sender.start()
        for _ in frames:
            answers.append(self._receive())
        took = time.perf_counter() - t0
        sender.join()
        for (what, _), payload in zip(frames, answers):
            self._check(payload, what)
        return took

    def request(self, framed: bytes, what: str) -> None:
        self.sock.sendall(framed)
        self._check(self._receive(), what)

    def list_sas(self, framed: tuple[bytes, bytes, bytes]) -> list:
        """list-sas of one connection, streamed, as the vici binding (and so
        vpnd) asks: register for list-sa events, the request, unregister
        (framed by list_sas_frames)."""
        register, request, unregister = framed
        self.sock.sendall(register)
        assert Packet.parse(self._receive()).response_type == Packet.EVENT_CONFIRM
        self.sock.sendall(request)
        sas = []
        while True:
            packet = Packet.parse(self._receive())
            if packet.response_type == Packet.EVENT:
                sas.append(Message.deserialize(packet.payload))
                continue
            assert packet.response_type == Packet.CMD_RESPONSE
            break
        self.sock.sendall(unregister)
        assert Packet.parse(self._receive()).response_type == Packet.EVENT_CONFIRM
        return sas

    def one_change(self, r, new_secret: bool) -> float:
        """What vpnd must do for one changed connection, one request after
        another: its SAs asked, unloaded, (its secret,) loaded."""
        sas = list_sas_frames(r.name)
        unload = frame("unload-conn", {"name": r.name})
        shared, conn = frame("load-shared", r.secret), frame("load-conn", r.conn)
        t0 = time.perf_counter()
        self.list_sas(sas)
        self.request(unload, "unload-conn")
        if new_secret:
            self.request(shared, "load-shared")
        self.request(conn, "load-conn")
        return time.perf_counter() - t0


def list_sas_frames(name: str) -> tuple[bytes, bytes, bytes]:
    def framed(packet: bytes) -> bytes:
        return struct.pack("!I", len(packet)) + packet
    return (framed(Packet.register_event("list-sa")),
            framed(Packet.request("list-sas", Message.serialize({"ike": name}))),
            framed(Packet.unregister_event("list-sa")))


def load_frames(docs: list[dict]) -> list[tuple[str, bytes]]:
    """load-shared + load-conn of every connection, in vpnd's order."""
    out = []
    for doc in docs:
        for r in rendered(doc):
            out += [("load-shared", frame("load-shared", r.secret)),
                    ("load-conn", frame("load-conn", r.conn))]
    return out


def cold_floor(floor: Floor, docs: list[dict], reps: int) -> list[float]:
    frames = load_frames(docs)
    took = []
    for _ in range(reps):
        floor.fresh()
        took.append(floor.pipelined(frames))
    return took


def policy_floors(floor: Floor, docs: list[dict], reps: int) -> tuple[list, list]:
    """With all N loaded: unload-conn + load-conn of every one with a new
    IKE lifetime, pipelined; and load-conn only ("replaced"). No SAs
    (response-only, no peer), so nothing to terminate."""
    unload_load, load_only = [], []
    value = LIFETIME
    for rep in range(reps):
        for into in (unload_load, load_only):
            value += 3600
            frames = []
            for doc in docs:
                for r in rendered(with_lifetime(doc, value)):
                    if into is unload_load:
                        frames.append(("unload-conn", frame("unload-conn", {"name": r.name})))
                    frames.append(("load-conn", frame("load-conn", r.conn)))
            into.append(floor.pipelined(frames))
    return unload_load, load_only


def change_floors(floor: Floor, docs: list[dict], changes: int) -> dict[str, list[float]]:
    """One change at a time against a charon holding all N: the median of
    `changes` of each kind."""
    out = {}
    for kind in CHANGE_REQUESTS:
        took = []
        for rep in range(changes):
            [r] = rendered(changed(docs[pick(kind, rep, len(docs))], kind, rep))
            took.append(floor.one_change(r, new_secret=kind != "ts"))
        out[kind] = took
    return out


def one_change_floors(bench, ns: str, docs: list[dict]) -> dict[str, tuple]:
    """The floors of figure 2's changes at this N: a charon of the bench's
    own in `ns` (beside vpnd's there, as figure 2's swanctl one is),
    loaded with all N, then one change at a time; stopped again."""
    floor = Floor(bench, ns, f"floor-{ns}")
    try:
        floor.fresh().pipelined(load_frames(docs))
        return {k: b.median(v) for k, v in change_floors(floor, docs, bench.args.changes).items()}
    finally:
        floor.stop()


# --- vpnd, timed from charon's side ---------------------------------------------

def change_label(kind: str, n: int) -> str:
    return f"2 one change among N={n}: {KIND[kind]} ({CHANGE_REQUESTS[kind]})"


def current(v, doc: dict) -> dict:
    """A state file as it is now (earlier figures changed some)."""
    return json.loads((v.state_dir / f"{doc['id']}.json").read_text())


def time_changes(v, log: b.CharonLog, docs: list[dict], kinds, changes: int) -> dict:
    """Figure 2's way, for each kind: one file renamed, timed to charon's
    log line for its connection; one change at a time (the pass that
    made it finished before the next)."""
    out = {}
    for kind in kinds:
        took = []
        for rep in range(changes):
            doc = changed(current(v, docs[pick(kind, rep, len(docs))]), kind, rep)
            name = doc["ipsec_site_connections"][0]["id"]
            tail = b.LogTail(v.log_path)
            log.seen.pop(name, None)
            t0, _ = drop(v, [doc])
            took.append(log.wait(name) - t0)
            wait_for(lambda: tail.find("reconciled"), 60, interval=0.02,
                     what="the pass to finish")
        out[kind] = took
    return out


def more_changes(bench, v, ns: str, docs: list[dict], floors: dict) -> None:
    """Figure 2's peer and PSK rows, beside its traffic selector row, on
    the vpnd figure 2 ran on."""
    n = len(docs)
    log = b.CharonLog(v.socket(ns))
    try:
        for kind, took in time_changes(v, log, docs, ("peer", "psk"),
                                       bench.args.changes).items():
            m = b.median(took)
            big = n >= 1000
            bench.row(change_label(kind, n), m, None, "<= 1.5x floor" if big else "",
                      _within(m[0], floors[kind], 1.5) if big else None, floor=floors[kind])
    finally:
        log.close()


def drop(v, docs: list[dict], contents: list[bytes] | None = None,
         staged: bool = False) -> tuple[float, float]:
    """The state files renamed in, one after another, as fast as a Python
    loop can: each written to a dot-tmp name beside it and renamed (as an
    agent writes one), or, staged, all written first into a directory of
    their own on the same file system and then only renamed in (a burst
    as sharp as this machine's file system allows: writing a file costs
    it 0.25-0.6 ms, a rename 0.06-0.16 ms). Returns the wall-clock time of
    the first rename and how long the renames took."""
    def write(path: Path, data: bytes) -> None:
        with open(path, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as f:
            f.write(data)
    names = [f"{doc['id']}.json" for doc in docs]
    data = contents if contents is not None else [json.dumps(d).encode() for d in docs]
    if staged:
        staging = v.base / "staging"
        staging.mkdir(exist_ok=True)
        for name, d in zip(names, data):
            write(staging / name, d)
    first = None
    t0 = time.monotonic()
    for name, d in zip(names, data):
        tmp = staging / name if staged else v.state_dir / f".{name}.tmp"
        if not staged:
            write(tmp, d)
        if first is None:
            first = time.time()  # as figure 2: the clock starts at the rename
        os.replace(tmp, v.state_dir / name)
    return first, time.monotonic() - t0


class CharonFileLog:
    """charon's log file from where it ends now: when each "added/updated/
    replaced vici connection: NAME" line was first read (the wall clock
    of the poll that found it; charon flushes each line)."""

    LINE = re.compile(rb"(?:added|updated|replaced) vici connection: (\S+)\n")

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.seen: dict[str, float] = {}

    def poll(self) -> list[str]:
        """The names logged since the last poll."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written waits for the next poll
        now = time.time()
        names = [m.group(1).decode() for m in self.LINE.finditer(data, 0, end)]
        for name in names:
            self.seen.setdefault(name, now)
        self.offset += end
        return names

    def all_logged(self, names: list[str], t0: float, timeout: float,
                   what: str) -> float | None:
        """Seconds from t0 until charon had logged every one of names;
        None if it had not within timeout (self.seen says which it had)."""
        left = set(names)

        def done():
            left.difference_update(self.poll())
            return not left
        try:
            wait_for(done, timeout, interval=0.002, what=what)
        except TimeoutError:
            return None
        return max(self.seen[n] for n in names) - t0


def quiet_after(tail: b.LogTail, t0: float, settle: float, timeout: float) -> tuple[float, int]:
    """Seconds from t0 to the end of the last round vpnd logged
    ("reconciled") once no more rounds came for `settle` seconds (a fixed
    window: it is what "and no more" means), and how many rounds there
    were since t0; (0, 0) if none at all. Call once the renames are done."""
    last = {"count": None, "since": 0.0}

    def settled():
        rounds = [e for e in tail.find("reconciled") if b.ts(e) >= t0]
        now = time.monotonic()
        if len(rounds) != last["count"]:
            last["count"], last["since"] = len(rounds), now
        return (rounds,) if now - last["since"] >= settle else None
    (rounds,) = wait_for(settled, timeout, interval=0.02, what="vpnd quiet after the burst")
    return (b.ts(rounds[-1]) - t0 if rounds else 0.0), len(rounds)


def names_of(docs: list[dict]) -> list[str]:
    return [c["id"] for d in docs for c in d["ipsec_site_connections"]]


def loaded_names(sock_path: str) -> set[str]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    try:
        answer = vici.Session(s).get_conns()
        return {c.decode() for c in answer.get("conns", [])}
    finally:
        s.close()


class Bursts:
    """The burst rows at one N: charon's floor and swanctl first (each in
    a charon of its own, one after another in the same namespace), then
    one vpnd through a cold start, one changes, a byte-identical rewrite
    and a shared policy change, then a second vpnd for the flood."""

    def __init__(self, bench, n: int):
        self.bench, self.n = bench, n
        self.args = bench.args
        self.big = n >= 1000  # targets apply from here (below, fixed costs rule)
        self.reps = 1 if self.args.smoke else \
            self.args.reps if n < 10000 else max(2, self.args.reps // 2)
        # A fixed window: no more rounds for this long is "quiet".
        self.settle = 0.25 if self.args.smoke else 2.0
        self.ns = f"vbb{bench.tag}{n}"
        b.new_namespace(self.ns)
        bench.namespaces.append(self.ns)
        self.docs = b.services(self.ns, n, per_file=1)
        self.names = names_of(self.docs)

    def row(self, name, vpnd, floor=None, swan=None, target="", ok=None):
        self.bench.row(name, vpnd, swan, target if self.big else "",
                       ok if self.big else None, floor=floor)

    def run(self) -> None:
        n = self.n
        floor = Floor(self.bench, self.ns, f"floor-{n}")
        try:
            cold = b.median(cold_floor(floor, self.docs, self.reps))
            changes = {k: b.median(v) for k, v in
                       change_floors(floor, self.docs, self.args.changes).items()}
            unload_load, load_only = (b.median(x) for x in
                                      policy_floors(floor, self.docs, self.reps))
        finally:
            floor.stop()
        swan = self.swanctl_policy()

        v = self.bench.new_vpnd(f"bursts{n}", self.docs)
        spawner = CharonSpawner(str(v.run_dir), True)
        self.bench.spawners.append(spawner)
        spawner.ensure(self.ns)  # charon running, as the floor's was
        try:
            vpnd_cold = self.cold_start(v, spawner, cold)
            # As figure 2: what a cold start leaves behind is done first.
            kept = v.data_dir / "last-valid"
            wait_for(lambda: kept.is_dir() and len(list(kept.glob("*.json"))) >= n, DEADLINE,
                     interval=0.1, what="the last valid copies written")
            log = b.CharonLog(v.socket(self.ns))
            try:
                self.one_changes(v, log, changes)
            finally:
                log.close()
            self.identical(v, spawner)
            self.policy(v, spawner, unload_load, load_only, swan)
        finally:
            v.cleanup()
        self.flood(vpnd_cold)

    def cold_start(self, v, spawner, floor) -> tuple[float | None, float | None]:
        """vpnd started on N files, its charon running: seconds until charon
        logged all N, from vpnd's start and from its first log line."""
        log = CharonFileLog(spawner.log_path(self.ns))
        t0 = time.time()
        v.start()
        took = log.all_logged(self.names, t0, DEADLINE, "the cold start's loads")
        wait_for(lambda: v.status_document() is not None, DEADLINE, interval=0.02,
                 what="vpnd's first pass")
        missing = "" if took is not None else \
            f" [{len(set(self.names) - log.seen.keys())} not seen in {DEADLINE} s]"
        self.row(f"11 cold start N={self.n}, charon running (charon's log){missing}",
                 _one(took), floor, target="<= 1.3x floor", ok=_within(took, floor, 1.3))
        started = b.log_events(v.log_path, "vpnd started")
        since = None
        if took is not None and started:
            # Without the interpreter's start and vpnd's imports.
            since = t0 + took - b.ts(started[0])
            self.row("11   the same, from vpnd's log line \"vpnd started\"", _one(since), floor)
        return took, since

    def swanctl_policy(self):
        """`swanctl --load-all` of the conf with the ikepolicy lifetime
        changed (its rekey_time and over_time), into a charon holding the
        conf as it was."""
        base = CharonSpawner(str(self.bench.work / f"swanctl-bursts-{self.n}"), True)
        self.bench.spawners.append(base)
        conf = self.bench.work / f"swanctl-bursts-{self.n}.conf"
        conf.write_text(b.swanctl_conf(self.docs))
        took = []
        value = LIFETIME
        try:
            sock = b.fresh_charon(base, self.ns)
            b.swanctl_load(conf, sock)
            for _ in range(self.reps):
                value += 3600
                conf.write_text(b.swanctl_conf([with_lifetime(d, value) for d in self.docs]))
                t0 = time.monotonic()
                b.swanctl_load(conf, sock)
                took.append(time.monotonic() - t0)
        finally:
            base.stop(self.ns)
        return b.median(took)

    def one_changes(self, v, log: b.CharonLog, floors: dict) -> None:
        for kind, took in time_changes(v, log, self.docs, CHANGE_REQUESTS,
                                       self.args.changes).items():
            m = b.median(took)
            self.row(change_label(kind, self.n), m, floors[kind], target="<= 1.5x floor",
                     ok=_within(m[0], floors[kind], 1.5))

    def identical(self, v, spawner) -> None:
        """All N files renamed over with the same bytes: nothing to write."""
        contents = [(v.state_dir / f"{d['id']}.json").read_bytes() for d in self.docs]
        before = (v.status_document()["vici_writes"], b.vici_writes_in_log(spawner, self.ns))
        tail = b.LogTail(v.log_path)
        t0, dropped = drop(v, self.docs, contents, staged=True)
        quiet, rounds = quiet_after(tail, t0, self.settle, DEADLINE)
        after = (v.status_document()["vici_writes"], b.vici_writes_in_log(spawner, self.ns))
        vpnd_writes, logged_writes = after[0] - before[0], after[1] - before[1]
        self.row(f"11 all N={self.n} rewritten byte-identical: quiet ({rounds} rounds; "
                 f"writes {vpnd_writes} vpnd, {logged_writes} charon log)",
                 _one(quiet), target="<= 1 s, 0 writes",
                 ok=quiet <= 1.0 and vpnd_writes == logged_writes == 0)
        self.row("11   its renames took (staged: renames only)", _one(dropped))
        self.row("11   quiet after the last rename", _one(max(0.0, quiet - dropped)))

    def policy(self, v, spawner, unload_load, load_only, swan) -> None:
        """The shared ikepolicy's lifetime changed in all N files."""
        docs = [with_lifetime(current(v, d), 7200) for d in self.docs]
        before = v.status_document()["vici_writes"]
        tail = b.LogTail(v.log_path)
        log = CharonFileLog(spawner.log_path(self.ns))
        t0, dropped = drop(v, docs, staged=True)
        took = log.all_logged(self.names, t0, DEADLINE, "the policy change's loads")
        seen = sum(1 for name in self.names if name in log.seen)
        quiet, rounds = quiet_after(tail, t0, self.settle, DEADLINE)
        writes = v.status_document()["vici_writes"] - before
        self.row(f"11 shared ikepolicy lifetime changed in all N={self.n} (charon's log)"
                 + ("" if took is not None else f" [{seen} seen in {DEADLINE} s]"),
                 _one(took), unload_load, swan, "<= 1.5x floor, <= 0.5x swanctl",
                 _within(took, unload_load, 1.5) and _within(took, swan, 0.5))
        self.row("11   floor with load-conn only (replaced, no unload)", None, load_only)
        self.row(f"11   vpnd quiet again ({rounds} rounds, {writes} VICI writes)", _one(quiet))
        self.row("11   its renames took (staged: renames only)", _one(dropped))
        self.row("11   charon had all, after the last rename", _after(took, dropped))

    def flood(self, colds: tuple) -> None:
        """N new files dropped at once into a running vpnd with none."""
        v = self.bench.new_vpnd(f"flood{self.n}", [])
        spawner = CharonSpawner(str(v.run_dir), True)
        self.bench.spawners.append(spawner)
        sock = spawner.ensure(self.ns)  # running, as for the cold start
        try:
            v.start()
            wait_for(lambda: v.status_document() is not None, 60, interval=0.02,
                     what="vpnd's first pass (no files)")
            cold, since = colds
            deadline = max(30.0, 3 * (cold or DEADLINE / 3))
            log = CharonFileLog(spawner.log_path(self.ns))
            # Dropped at once: written beside the state dir, then renamed
            # in (as a node given all its files, or a volume, gets them).
            t0, dropped = drop(v, self.docs, staged=True)
            took = log.all_logged(self.names, t0, deadline, "the flood's loads")
            missing = len(set(self.names) - loaded_names(sock))
            ratios = ", ".join(f"{took / c:.2f}x {what}" for c, what in
                               ((cold, "cold start"), (since, "from started"))
                               if took is not None and c)
            self.row(f"11 flood: N={self.n} new files into an empty vpnd ({missing} missing, "
                     f"waited up to {deadline:.0f} s; {ratios or 'not all seen'})",
                     _one(took), target="0 missing, <= 1.2x cold start",
                     ok=missing == 0 and took is not None and cold is not None
                     and took <= 1.2 * cold)
            self.row("11   its renames took (staged: renames only)", _one(dropped))
            self.row("11   charon had all, after the last rename", _after(took, dropped))
        finally:
            v.cleanup()


KIND = {"ts": "traffic selector", "peer": "peer", "psk": "PSK"}


def _one(value):
    return None if value is None else (value, value, value)


def _after(took, dropped):
    """From the last rename (approximately: the first, plus the loop)."""
    return None if took is None else _one(max(0.0, took - dropped))


def _within(value, floor, factor) -> bool:
    return value is not None and floor is not None and value <= factor * floor[0]


def run(bench) -> None:
    for n in sorted(bench.args.burst_sizes):
        Bursts(bench, n).run()
