"""Planning: desired state + live state + what vpnd applied -> typed steps.

Pure: no I/O. The plan is computed per namespace (one charon each). Changes
are detected against the record of what vpnd applied (by fingerprint), never
against charon's own listing, which omits proposals, secrets and lifetimes
and expands defaults. vpnd owns only what its record names: a connection or
secret that someone else loaded is never in the record, so no step touches it.

The steps and their reasons are in steps.py, the actions in actions.py.
"""
from __future__ import annotations

from typing import Mapping

from vpnd.base.conns import AppliedConn, DesiredConn, Intent
from vpnd.base.live import LiveState
from vpnd.plan.actions import LoadConn, LoadShared, TerminateIke, UnloadConn, UnloadShared
from vpnd.plan.steps import Reason, Step, disruption, ike_ids


def plan_namespace(namespace: str,
                   desired: Mapping[str, DesiredConn],
                   applied: Mapping[str, AppliedConn],
                   live: LiveState,
                   held_sources: frozenset[str] = frozenset(),
                   intents: Mapping[str, Intent] | None = None,
                   held_names: frozenset[str] = frozenset(),
                   settled_secrets: tuple[str, ...] | None = None) -> tuple[Step, ...]:
    """Steps that make one charon match `desired`, removals first.

    `held_sources` are state files that are invalid right now and whose last
    valid version is not known: what they applied earlier stays as it is.
    `intents`: changes begun but not recorded (a vpnd killed mid-change).
    `held_names`: connections invalid right now, with no valid version
    known: what was applied under those names stays too.
    `settled_secrets`: settled(desired, applied), if known.
    """
    intents = intents or {}
    removals = []
    for name in sorted(applied.keys() - desired.keys()):
        old = applied[name]
        if old.source in held_sources or name in held_names:
            continue  # held: what it applied stays until it is valid again
        removals.append(_removed(namespace, name, old, live))
    if settled_secrets is not None and live.conns.issuperset(desired) and \
            live.shared.issuperset(settled_secrets):
        # Each connection as applied, and loaded: _change would say None
        # of each (a resync that finds nothing moved asks no more).
        return tuple(removals)
    changes = []
    for name in sorted(desired):
        step = _change(namespace, name, desired[name], applied.get(name), live,
                       intents.get(name))
        if step is not None:
            changes.append(step)
    return (*removals, *changes)


def settled(desired: Mapping[str, DesiredConn],
            applied: Mapping[str, AppliedConn]) -> tuple[str, ...] | None:
    """The secret ids of `desired` if every connection in it is as its
    record says it was applied, else None: then nothing needs loading
    while charon holds them all. Pure over the two, so a look may keep it
    while neither moves."""
    secrets = []
    for name, want in desired.items():
        old = applied.get(name)
        if old is None or not _as_applied(want, old):
            return None
        secrets.append(want.secret_id)
    return tuple(secrets)


def _as_applied(want: DesiredConn, old: AppliedConn) -> bool:
    return old.fingerprint == want.fingerprint and old.secret_id == want.secret_id and \
        old.source == want.source and old.service_id == want.service_id


def _removed(namespace: str, name: str, old: AppliedConn, live: LiveState) -> Step:
    """No longer wanted: out of charon, with its SAs and its secret."""
    actions = []
    if name in live.conns:
        actions.append(UnloadConn(name))
    if name in live.ike_sas:
        actions.append(TerminateIke(name))
    if old.secret_id in live.shared:
        actions.append(UnloadShared(old.secret_id))
    return Step(namespace, name, old.service_id, Reason.REMOVED, tuple(actions), None,
                disruption(live, ike_ids(live, name),
                           "no longer wanted (removed, or admin_state_up false)"))


def _change(namespace: str, name: str, want: DesiredConn, old: AppliedConn | None,
            live: LiveState, intent: Intent | None) -> Step | None:
    """The step that brings one desired connection about, or None."""
    if old is not None and _as_applied(want, old) and name in live.conns and \
            want.secret_id in live.shared:
        return None  # as applied, and loaded: most of a full look, so nothing is built
    record = AppliedConn(name, want.service_id, want.source,
                         want.fingerprint, want.secret_id, want.parts)
    load = (LoadShared(want.secret_id, of=want), LoadConn(name, of=want))
    if old is None:
        # Loaded but not ours on record: a record lost with data_dir, or a
        # vpnd restarted mid-apply. Loading an identical config is a no-op
        # in charon, so adopting this way disturbs nothing that matches.
        reason = Reason.ADOPT if name in live.conns else Reason.NEW
        return Step(namespace, name, want.service_id, reason, load, record)
    if old.fingerprint != want.fingerprint:
        if intent is not None and intent.fingerprint == want.fingerprint \
                and name in live.conns:
            return _resumed(namespace, name, want, old, live, intent, load, record)
        return _changed(namespace, name, want, old, live, load, record)
    if name not in live.conns or want.secret_id not in live.shared:
        # charon restarted, or someone unloaded it: put it back, and
        # have the peer clear what it may still hold of a dead charon.
        reload = (load[0], LoadConn(name, initial_contact=True, of=want))
        return Step(namespace, name, want.service_id, Reason.RELOAD, reload, record)
    if old != record:
        # Same config now coming from another file: only the record moves.
        return Step(namespace, name, want.service_id, Reason.MOVED, (), record)
    return None


def _changed(namespace, name, want: DesiredConn, old: AppliedConn, live: LiveState,
             load, record) -> Step:
    """Break before make: charon keeps a responder's SAs on the old config
    through any reload, so end them, then load afresh."""
    actions = []
    if name in live.conns:
        actions.append(UnloadConn(name))
    if name in live.ike_sas:
        actions.append(TerminateIke(name, ike_ids(live, name)))
    if old.secret_id != want.secret_id and old.secret_id in live.shared:
        actions.append(UnloadShared(old.secret_id))
    if _same_secret(old, want, live):
        load = load[1:]
    return Step(namespace, name, want.service_id, Reason.CHANGED, (*actions, *load), record,
                disruption(live, ike_ids(live, name), _why(old.parts, want), name=name))


def _resumed(namespace, name, want, old, live, intent: Intent, load, record) -> Step:
    """The rest of a change a killed vpnd had begun: end only what it was
    ending (an SA charon made since is the new configuration's), and load
    (a no-op if it had landed). No unload: for an initiator that would end
    the new SA too."""
    actions = []
    ending: tuple[str, ...] = ()
    if set(ike_ids(live, name)) & set(intent.ending):
        ending = ike_ids(live, name)
        actions.append(TerminateIke(name, ending))
    if old.secret_id != want.secret_id and old.secret_id in live.shared:
        actions.append(UnloadShared(old.secret_id))
    why = _why(old.parts, want) if ending else \
        "a change begun before vpnd was killed, whose SAs were already ended"
    return Step(namespace, name, want.service_id, Reason.RESUMED, (*actions, *load), record,
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
