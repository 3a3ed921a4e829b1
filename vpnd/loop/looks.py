"""Looking at one namespace: three kinds of look, each read top to bottom.

A full look (`scope` None) reads all of the namespace, plans loads,
removals, upkeep and route MTUs, and applies them; a scoped look (some
state files changed) plans only their connections and reads of charon
only what moves; a dry run (`vpnd plan`) reads and plans and writes
nothing. The kind is decided once, in `reconcile_namespace`; the steps
they share are named below it. Reconciler (reconciler.py) is a
NamespaceLooks: these methods use what it holds, listed at the top.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Callable

import structlog

from vpnd.apply.applier import Applier
from vpnd.apply.record import Record
from vpnd.base.errors import DriverUnavailable
from vpnd.base.live import EMPTY, LiveState
from vpnd.drivers.base import Driver
from vpnd.loop import live_reads, namespace_reads, subscribing
from vpnd.loop.charon_checks import CharonChecks, unreachable
from vpnd.loop.charon_restarts import UnansweringCharons
from vpnd.loop.look_memo import LookMemo
from vpnd.loop.workqueue import Done, Outcome, RequeueAfter, Retry, Terminal
from vpnd.observe.observed import Observed
from vpnd.observe.status import NamespaceView
from vpnd.plan import standby as standby_mod
from vpnd.plan.actions import LoadConn
from vpnd.plan.planner import plan_namespace, settled
from vpnd.plan.render import Rendered
from vpnd.plan.steps import Step
from vpnd.plan.upkeep import REINITIATE_FIRST, Upkeep, initiators_of
from vpnd.state.desired import DesiredState

_look_ids = itertools.count(1)

# A charon that cannot be used is looked at again after this (doubling
# while it stays so); one that is being restarted, soon: the next look
# starts it.
RETRY_FIRST = 1.0
RETRY_AFTER_RESTART = 0.2


@dataclass(frozen=True)
class _Look:
    """What one look read and planned, for applying: the live state
    (`whole`: all of the namespace, not just what moves), its steps and
    upkeep (with what upkeep found: when to look again, the connections
    with no SA)."""
    live: LiveState
    whole: bool
    steps: tuple[Step, ...]
    upkeep: tuple[Step, ...] = ()
    recheck: float | None = None
    missing: tuple[str, ...] = ()
    scope: set | None = None  # the connections the apply errors are of; None: all


class NamespaceLooks:
    """The looks at one namespace, over what the Reconciler holds."""
    config: object
    driver: Driver
    record: Record
    observed: Observed
    rendered: Rendered
    desired_state: DesiredState
    checks: CharonChecks
    restarts: UnansweringCharons
    reads: live_reads.LiveReader
    upkeep: Upkeep
    applier: Applier
    memo: LookMemo
    namespace_exists: Callable[[str], bool]
    clock: Callable[[], float]
    log: object
    on_event: Callable

    # --- one namespace: the kind of look is decided once, here -----------------

    def reconcile_namespace(self, ns: str, scope: set[str] | None = None,
                            retrying: bool = False,
                            deadline: float | None = None) -> tuple[tuple[Step, ...], Outcome]:
        """Look at one namespace and apply what it needs: (the steps
        applied, the outcome). `scope`: only these state files'
        connections; `retrying`: this look is the key's retry
        (re-initiation waits for one)."""
        with structlog.contextvars.bound_contextvars(look_id=next(_look_ids), netns=ns):
            if scope is None:
                return self._full_look(ns, retrying, deadline)
            return self._scoped_look(ns, scope, deadline)

    def dry_run_namespace(self, ns: str) -> tuple[Step, ...]:
        """`vpnd plan` of one namespace: read and plan, write nothing (no
        charon started or configured, no observed state); upkeep shows
        what is pending, timers or not."""
        with structlog.contextvars.bound_contextvars(look_id=next(_look_ids), netns=ns):
            if self._gone(ns):
                return ()
            desired, applied = self.rendered.of(ns), self.record.applied(ns)
            try:
                live = self.driver.live_state(ns, start=False)
            except DriverUnavailable:
                live = EMPTY  # the plan then says what would be loaded once it runs
            if live is not EMPTY:
                self.checks.log_problem(ns)
                desired = self.checks.without_unsupported(ns, desired)
            standby = self._read_standby(ns, desired)
            steps = self._plan(ns, desired, applied, live, standby)
            if live is EMPTY:
                return steps
            came = frozenset(self.observed.standby.get(ns, {}).keys() - standby.keys())
            upkeep, _, _ = Upkeep(grace=0).plan(ns, live, applied, desired, self.clock(),
                                                True, standby, came)
            mtu_steps, _ = self._mtu_steps(ns, desired, live)
            return (*steps, *upkeep, *mtu_steps)

    def _full_look(self, ns: str, retrying: bool, deadline):
        """All of the namespace: its charon's settings, the whole live
        state, standby from its addresses, upkeep and route MTUs. Read
        afresh each time; what is worked out from every connection alone
        is kept while they stay as they were (self.memo)."""
        if reason := self._gone(ns):
            return self._terminal(ns, reason)
        memo = self.memo
        desired = memo.get(ns, "desired", (self.rendered.version_of(ns),),
                           lambda: self.rendered.of(ns))
        applied = self.record.applied(ns)
        models = memo.get(ns, "models", (desired,),
                          lambda: tuple(c.model for c in desired.values()))
        try:
            # charon-wide settings (retransmission) follow all of a
            # namespace's connections: full looks keep them current.
            self.checks.configure(ns, models)
            live = self.reads.whole(ns, running=_running(self.observed.views.get(ns)))
        except DriverUnavailable as e:
            return self._unavailable(ns, e)
        if live is not EMPTY:
            self.checks.check(ns, models)
            desired = self.checks.drop_unsupported(ns, desired, whole=True)
        present = namespace_reads.present_addresses(ns, self.namespace_exists(ns), self.log)
        standby = memo.get(ns, "standby", (desired, present),
                           lambda: standby_mod.standby(desired, present))
        secrets = memo.get(ns, "settled", (desired, self.record.version_of(ns)),
                           lambda: settled(desired, applied))
        steps = self._plan(ns, desired, applied, live, standby, secrets)
        if live is EMPTY:
            return self._apply(ns, _Look(live, True, steps), deadline)
        came = frozenset(self.observed.standby.get(ns, {}).keys() - standby.keys())
        self.observed.set_standby(ns, standby)
        initiators = memo.get(ns, "initiators", (desired,), lambda: initiators_of(desired))
        upkeep, recheck, missing = self.upkeep.plan(ns, live, applied, desired, self.clock(),
                                                    retrying, standby, came, initiators)
        mtu_steps, standing = self._mtu_steps(ns, desired, live)
        for name, state in standing.items():
            self.observed.note_mtu((ns, name), state)
        return self._apply(ns, _Look(live, True, steps,
                                     (*upkeep, *mtu_steps), recheck, missing), deadline)

    def _scoped_look(self, ns: str, scope: set[str], deadline):
        """Only what these state files declare, and what they (or these
        names) applied: looked up, never a walk of the namespace. Of a
        charon that answers, only the SAs of what moves are read; standby
        stays as the last full look found it; no upkeep."""
        if reason := self._gone(ns):
            return self._terminal(ns, reason)
        desired = self.rendered.of_sources(ns, scope)
        recorded = self.record.applied(ns)
        applied = {**self.record.applied_from(ns, scope),
                   **{k: recorded[k] for k in desired if k in recorded}}
        models = None  # the namespace's connections: walked only when charon (re)starts
        try:
            if not _running(self.observed.views.get(ns)):
                models = self._models(ns)
                self.checks.configure(ns, models)
                live, whole = self.reads.whole(ns, running=False), True
            else:
                live, whole = self.reads.scoped(ns, desired, applied, len(recorded))
        except DriverUnavailable as e:
            return self._unavailable(ns, e)
        if live is not EMPTY:
            # A new charon's kernel check, or the session's last answer.
            self.checks.check(ns, models)
            desired = self.checks.drop_unsupported(ns, desired, whole=False)
        standby = dict(self.observed.standby.get(ns, {}))
        steps = self._plan(ns, desired, applied, live, standby)
        return self._apply(ns, _Look(live, whole, steps,
                                     scope=set(desired) | set(applied)), deadline)

    # --- the steps the looks share ----------------------------------------------

    def _gone(self, ns: str) -> str | None:
        """Why there is nothing to look at, if the namespace does not exist
        (a charon vpnd runs lives in it; an external one needs none)."""
        if self.config.charon.mode != "external" and not self.namespace_exists(ns):
            return f"namespace {ns} does not exist"
        return None

    def _terminal(self, ns: str, reason: str):
        self.memo.forget(ns)
        self.checks.forget(ns)
        self.observed.set_view(ns, NamespaceView(None, reason))
        return (), Terminal(reason)

    def _unavailable(self, ns: str, e: DriverUnavailable):
        """The charon cannot be used: said in status, and retried soon if
        it is being restarted."""
        reason = unreachable(e)
        self.observed.set_view(ns, NamespaceView(None, reason))
        self.checks.note(ns, reason, "charon unavailable")
        restarted = self.restarts.restart_if_wedged(ns, e)
        return (), Retry(reason, first=RETRY_AFTER_RESTART if restarted else RETRY_FIRST)

    def _read_standby(self, ns: str, desired) -> dict[str, str]:
        return namespace_reads.standby_of(ns, desired, self.namespace_exists(ns), self.log)

    def _mtu_steps(self, ns: str, desired, live: LiveState):
        return namespace_reads.mtu_steps(ns, desired, live, self.namespace_exists(ns), self.log)

    def _plan(self, ns: str, desired, applied, live: LiveState, standby,
              settled_secrets=None) -> tuple[Step, ...]:
        """The steps from the record and the live state to `desired`; a
        connection in standby is loaded without starting it."""
        steps = plan_namespace(ns, desired, applied, live, self.desired_state.held,
                               self.record.intended(ns), self.desired_state.held_names(ns),
                               settled_secrets)
        if standby:
            steps = tuple(_not_started(s, standby) for s in steps)
        return steps

    def _apply(self, ns: str, look: "_Look", deadline):
        """Apply a look's steps, then read again what moved: the view,
        the record saved if due, the apply errors, the outcome."""
        subscribing.subscribe_before(self.driver, ns, look.steps,
                                     self.rendered.conns.get(ns, {}), self.on_event)
        failed: dict[tuple[str, str], str] = {}
        with subscribing.log_muted_for(self.driver, ns, look.steps):
            left = self.applier.apply(ns, (*look.steps, *look.upkeep), failed, deadline)
        # Not applied: the next look plans them again (and counts them then).
        not_done = {id(s) for s in left}
        steps = tuple(s for s in look.steps if id(s) not in not_done)
        done = (*steps, *(s for s in look.upkeep if id(s) not in not_done))
        self.driver.watch(ns, self.on_event)  # nothing to do if it runs
        acted = {s.name for s in done if s.actions and s.reason != "mtu"}
        live = look.live
        if acted:
            view = self.observed.views.get(ns)
            try:
                live = live_reads.reread(self.driver, ns, look.whole,
                                         view.live if _running(view) else EMPTY,
                                         self.record.applied(ns), acted)
            except DriverUnavailable as e:
                self.observed.set_view(ns, NamespaceView(None, unreachable(e)))
                return done, Retry(unreachable(e))
        if acted or look.whole:
            # A scoped look that read only the SAs of what moved, and
            # applied nothing, has no view of the namespace to give.
            self.observed.set_view(ns, NamespaceView(live))
        self.restarts.answered(ns)
        if any(s.actions or s.record for s in steps):
            self.record.save_if_due()
        self.observed.replace_apply_errors(ns, failed, look.scope)
        return done, _outcome(failed, left, look.missing, look.recheck)

    def _models(self, ns: str) -> list:
        return [c.model for c in self.rendered.of(ns).values()]


def _running(view: NamespaceView | None) -> bool:
    """Whether the last look found the namespace's charon answering."""
    return view is not None and view.answering


def _outcome(failed, left, missing, recheck) -> Outcome:
    if left:
        return RequeueAfter(0)  # over its budget: the rest after the others
    if failed:
        # A refused write backs off: not re-sent on every look.
        return Retry(next(iter(failed.values())), recheck=recheck)
    if missing:
        return Retry(f"no SA for bi-directional {', '.join(missing)}",
                     first=REINITIATE_FIRST, recheck=recheck)
    return RequeueAfter(recheck) if recheck is not None else Done()


def _not_started(step: Step, standby) -> Step:
    """A step that loads a connection in standby loads it without starting it."""
    if step.name not in standby:
        return step
    actions = tuple(dataclasses.replace(a, start=False) if isinstance(a, LoadConn) else a
                    for a in step.actions)
    return dataclasses.replace(step, actions=actions)
