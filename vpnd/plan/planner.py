"""Planning: desired state + live state + what vpnd applied -> typed steps.

Pure: no I/O. The plan is computed per namespace (one charon each). Changes
are detected against the record of what vpnd applied (by fingerprint), never
against charon's own listing, which omits proposals, secrets and lifetimes
and expands defaults. vpnd owns only what its record names: a connection or
secret that someone else loaded is never in the record, so no step touches it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from vpnd.base.live import LiveState


@dataclass(frozen=True, slots=True)
class DesiredConn:
    """One desired connection, everything known of it in one place: where
    it comes from, the model, the fingerprint of what it renders to for
    charon, and that rendering: kept (`conn_message`, `secret_message`) or,
    to keep 10,000 connections small, made again when a step needs it
    (`render`: model -> strongswan_mapping.Rendered, a few microseconds)."""

    name: str
    service_id: str
    source: str
    fingerprint: str
    conn_message: dict | None
    secret_id: str
    secret_message: dict | None = field(default=None, repr=False)
    namespace: str = ""
    model: object = field(default=None, repr=False, compare=False)  # model.Connection
    children: tuple[str, ...] = ()  # CHILD_SA names
    initiates: bool = False  # bi-directional: vpnd keeps it initiated
    parts: str = ""  # fingerprints of its parts (render.parts): what changed
    render: object = field(default=None, repr=False, compare=False)

    def message(self) -> dict:
        """The load-conn message."""
        return self.conn_message if self.conn_message is not None else \
            self.render(self.model).conn

    def secret(self) -> dict:
        """The load-shared message (it holds the PSK)."""
        return self.secret_message if self.secret_message is not None else \
            self.render(self.model).secret


@dataclass(frozen=True, slots=True)
class AppliedConn:
    """One line of the record: what vpnd loaded into a charon, and from where."""

    name: str
    service_id: str
    source: str
    fingerprint: str
    secret_id: str
    # Fingerprints of the parts (PSK, IKE, CHILD_SA settings), so a plan can
    # say what changed; records from before them have none.
    parts: str = field(default="", compare=False)


UPKEEP = ("duplicate", "no SA", "mtu", "standby")

# --- actions: each is one write (VICI, or netlink for a route MTU) -------

# A load's message is given, or rendered from `of` (a DesiredConn) just
# before it is sent: a cold start of 10,000 connections then never holds
# 10,000 rendered messages at once.

@dataclass(frozen=True)
class LoadShared:
    secret_id: str
    message: dict | None = field(default=None, repr=False)
    of: DesiredConn | None = field(default=None, repr=False, compare=False)

    def body(self) -> dict:
        return self.message if self.message is not None else self.of.secret()

    def describe(self) -> str:
        return f"load-shared {self.secret_id}"


@dataclass(frozen=True)
class LoadConn:
    name: str
    message: dict | None = None
    # Into a charon that lost this connection (it died, or was restarted):
    # the peer may still hold the SAs that died with it, so the first
    # IKE_SA tells it to clear them (INITIAL_CONTACT).
    initial_contact: bool = False
    # Its local address is not on this node (standby.py): loaded, not started.
    start: bool = True
    of: DesiredConn | None = field(default=None, repr=False, compare=False)

    def body(self) -> dict:
        return self.message if self.message is not None else self.of.message()

    def describe(self) -> str:
        return (f"load-conn {self.name}" + (" with INITIAL_CONTACT" if self.initial_contact
                                             else "")
                + ("" if self.start else " (standby: not started)"))


@dataclass(frozen=True)
class UnloadConn:
    name: str

    def describe(self) -> str:
        return f"unload-conn {self.name}"


@dataclass(frozen=True)
class TerminateIke:
    # unload-conn leaves a responder's SAs up: terminate is what really ends
    # a removed or changed tunnel on this side.
    name: str
    # The IKE_SAs (unique ids) it ends, as the plan saw them: what a vpnd
    # killed mid-change must not end twice (Intent).
    ending: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"terminate ike {self.name}"


@dataclass(frozen=True)
class TerminateDuplicate:
    """End one surplus SA of a connection (ike or child, by unique id)."""

    name: str
    kind: str  # "ike" | "child"
    uniqueid: str

    def describe(self) -> str:
        return f"terminate duplicate {self.kind} SA #{self.uniqueid} of {self.name}"


@dataclass(frozen=True)
class Initiate:
    """Start a bi-directional connection that has no SA (without waiting)."""

    name: str
    children: tuple[str, ...]

    def describe(self) -> str:
        return f"initiate {self.name}"


@dataclass(frozen=True)
class UnloadShared:
    secret_id: str

    def describe(self) -> str:
        return f"unload-shared {self.secret_id}"


@dataclass(frozen=True)
class SetRouteMtu:
    """Put a connection's mtu on its route into the tunnel (netlink, not
    charon: the route is charon's, the MTU on it is vpnd's)."""

    route: object = field(compare=False)  # mtu.Route, as read
    mtu: int = 0  # 0: take the route MTU off (the device's applies)

    def describe(self) -> str:
        if not self.mtu:
            return f"remove route mtu {self.route.mtu} for {self.route.cidr}"
        return f"set route mtu {self.mtu} for {self.route.cidr}"


Action = (LoadShared | LoadConn | UnloadConn | TerminateIke | UnloadShared
          | TerminateDuplicate | Initiate | SetRouteMtu)


@dataclass(frozen=True)
class Intent:
    """A change begun: journaled before its first action, so that a vpnd
    killed before the change's record line knows, on restart, that the
    SAs it was ending (`ending`) are the only ones to end; the new ones
    charon made since are the changed configuration's."""

    fingerprint: str
    ending: tuple[str, ...]


@dataclass(frozen=True)
class Disruption:
    """What a step will end, as the plan predicts it from the live state."""

    ike_sas: tuple[str, ...] = ()  # unique ids
    child_sas: tuple[str, ...] = ()
    interrupts_traffic: bool = False  # an installed CHILD_SA of it ends
    why: str = ""

    def to_dict(self) -> dict:
        return {"ike_sas": list(self.ike_sas), "child_sas": list(self.child_sas),
                "interrupts_traffic": self.interrupts_traffic, "why": self.why}


NO_DISRUPTION = Disruption()


def disruption(live: LiveState, ike_ids, why: str, child_ids=(), name=None) -> Disruption:
    """Ending these IKE_SAs (with their CHILD_SAs) and these CHILD_SAs;
    `name`: all of them are that connection's (only its SAs are looked at)."""
    ike_ids = set(ike_ids)
    child_ids = set(child_ids)
    sas = live.sas if name is None else live.by_name.get(name, ())
    ending = [c for sa in sas for c in sa.children
              if sa.uniqueid in ike_ids or c.uniqueid in child_ids]
    return Disruption(tuple(sorted(ike_ids, key=_num)),
                      tuple(sorted({c.uniqueid for c in ending}, key=_num)),
                      any(c.state == "INSTALLED" for c in ending), why)


def _num(uniqueid: str):
    return (len(uniqueid), uniqueid)


@dataclass(frozen=True)
class Step:
    """The actions for one connection; the record changes only if all succeed."""

    namespace: str
    name: str
    service_id: str
    # new | changed | reload (missing from charon) | adopt | removed | moved;
    # upkeep: duplicate | no SA | mtu
    reason: str
    actions: tuple[Action, ...]
    record: AppliedConn | None  # the record line afterwards; None: forget it
    disrupts: Disruption = NO_DISRUPTION

    @property
    def upkeep(self) -> bool:
        """A step that keeps what is loaded in shape; it changes no record."""
        return self.reason in UPKEEP

    def to_dict(self) -> dict:
        """The shape conf/plan.schema.json documents."""
        return {"namespace": self.namespace, "connection": self.name,
                "service": self.service_id, "reason": self.reason,
                "actions": [a.describe() for a in self.actions],
                "disrupts": self.disrupts.to_dict()}


def plan_namespace(namespace: str,
                   desired: Mapping[str, DesiredConn],
                   applied: Mapping[str, AppliedConn],
                   live: LiveState,
                   held_sources: frozenset[str] = frozenset(),
                   intents: Mapping[str, Intent] | None = None,
                   held_names: frozenset[str] = frozenset()) -> tuple[Step, ...]:
    """Steps that make one charon match `desired`, removals first.

    `held_sources` are state files that are invalid right now and whose last
    valid version is not known: what they applied earlier stays as it is.
    `intents`: changes begun but not recorded (a vpnd killed mid-change).
    `held_names`: connections invalid right now, with no valid version
    known: what was applied under those names stays too.
    """
    intents = intents or {}
    removals, changes = [], []
    for name in sorted(applied.keys() - desired.keys()):
        old = applied[name]
        if old.source in held_sources or name in held_names:
            continue
        actions = []
        if name in live.conns:
            actions.append(UnloadConn(name))
        if name in live.ike_sas:
            actions.append(TerminateIke(name))
        if old.secret_id in live.shared:
            actions.append(UnloadShared(old.secret_id))
        removals.append(Step(namespace, name, old.service_id, "removed",
                             tuple(actions), None, disruption(
                                 live, _ike_ids(live, name),
                                 "no longer wanted (removed, or admin_state_up false)")))

    for name in sorted(desired):
        want = desired[name]
        old = applied.get(name)
        if old is not None and old.fingerprint == want.fingerprint and \
                old.secret_id == want.secret_id and old.source == want.source and \
                old.service_id == want.service_id and name in live.conns and \
                want.secret_id in live.shared:
            continue  # as applied, and loaded: most of a full look, so nothing is built
        record = AppliedConn(name, want.service_id, want.source,
                             want.fingerprint, want.secret_id, want.parts)
        load = (LoadShared(want.secret_id, of=want), LoadConn(name, of=want))
        if old is None:
            # Loaded but not ours on record: a record lost with data_dir, or a
            # vpnd restarted mid-apply. Loading an identical config is a no-op
            # in charon, so adopting this way disturbs nothing that matches.
            reason = "adopt" if name in live.conns else "new"
            changes.append(Step(namespace, name, want.service_id, reason, load, record))
        elif old.fingerprint != want.fingerprint:
            intent = intents.get(name)
            if intent is not None and intent.fingerprint == want.fingerprint \
                    and name in live.conns:
                changes.append(_resumed(namespace, name, want, old, live, intent, load, record))
                continue
            # Break before make: charon keeps a responder's SAs on the old
            # config through any reload, so end them, then load afresh.
            actions = []
            if name in live.conns:
                actions.append(UnloadConn(name))
            if name in live.ike_sas:
                actions.append(TerminateIke(name, _ike_ids(live, name)))
            if old.secret_id != want.secret_id and old.secret_id in live.shared:
                actions.append(UnloadShared(old.secret_id))
            if _same_secret(old, want, live):
                load = load[1:]
            changes.append(Step(namespace, name, want.service_id, "changed",
                                (*actions, *load), record,
                                disruption(live, _ike_ids(live, name),
                                           _why(old.parts, want), name=name)))
        elif name not in live.conns or want.secret_id not in live.shared:
            # charon restarted, or someone unloaded it: put it back, and
            # have the peer clear what it may still hold of a dead charon.
            reload = (load[0], LoadConn(name, initial_contact=True, of=want))
            changes.append(Step(namespace, name, want.service_id, "reload", reload, record))
        elif old != record:
            # Same config now coming from another file: only the record moves.
            changes.append(Step(namespace, name, want.service_id, "moved", (), record))
    return (*removals, *changes)


def _ike_ids(live: LiveState, name: str) -> tuple[str, ...]:
    return tuple(sorted(sa.uniqueid for sa in live.by_name.get(name, ())))


def _resumed(namespace, name, want, old, live, intent: Intent, load, record) -> Step:
    """The rest of a change a killed vpnd had begun: end only what it was
    ending (an SA charon made since is the new configuration's), and load
    (a no-op if it had landed). No unload: for an initiator that would end
    the new SA too."""
    actions = []
    ending: tuple[str, ...] = ()
    if set(_ike_ids(live, name)) & set(intent.ending):
        ending = _ike_ids(live, name)
        actions.append(TerminateIke(name, ending))
    if old.secret_id != want.secret_id and old.secret_id in live.shared:
        actions.append(UnloadShared(old.secret_id))
    why = _why(old.parts, want) if ending else \
        "a change begun before vpnd was killed, whose SAs were already ended"
    return Step(namespace, name, want.service_id, "resumed", (*actions, *load), record,
                disruption(live, ending, why, name=name))


_PARTS = {"psk": "PSK", "ike": "IKE settings", "child": "CHILD_SA settings"}


def _parts(parts: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in parts.split(";") if "=" in p)


def _same_secret(old: AppliedConn, want: DesiredConn, live: LiveState) -> bool:
    """charon holds this very secret (PSK and owners, under this id): a
    change of other settings need not load it again. Not only one write
    saved: a load-shared costs charon more the more secrets it holds
    (measured: 0.5 ms with 100, 2 ms with 10,000, half of a whole change).
    A record from before the parts were kept cannot tell, and loads it."""
    psk = _parts(old.parts).get("psk")
    return psk is not None and psk == _parts(want.parts).get("psk") and \
        old.secret_id == want.secret_id and want.secret_id in live.shared


def _why(old_parts: str, want: DesiredConn) -> str:
    """What changed, from the parts' fingerprints, and what that costs."""
    old, new = _parts(old_parts), _parts(want.parts)
    changed = [words for key, words in _PARTS.items() if old and old.get(key) != new.get(key)]
    what = " and ".join(changed) or "configuration"
    again = "re-established" if want.initiates else "ended (the peer re-establishes it)"
    return f"{what} changed: IKE_SA {again}"
