"""Reconciling: the state files, and one namespace at a time.

Level-triggered: whatever asked for a look, `reconcile_namespace` reads
the namespace's live state fresh, plans (loads and removals from the
record, upkeep, route MTUs), applies through the one apply path and says
how it went as an outcome for the work queue. A look `scoped` to some
state files plans only their connections, and reads only what it needs:
that is how one change lands within a round trip or two.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import time
from dataclasses import dataclass

import structlog

from vpnd.system import addresses, log, netns
from vpnd.plan import mtu
from vpnd.observe import publish
from vpnd.apply import routes
from vpnd.plan import standby as standby_mod
from vpnd.apply.applier import Applier
from vpnd.loop.charon_checks import CharonChecks, unreachable
from vpnd.state.desired import DesiredState
from vpnd.drivers.base import Driver
from vpnd.base.errors import CharonNotAnswering, DriverUnavailable
from vpnd.base.live import EMPTY, LiveState
from vpnd.observe.observed import Observed
from vpnd.plan.planner import LoadConn, Step, plan_namespace
from vpnd.apply.record import Record
from vpnd.plan.render import Renderer, Rendered
from vpnd.state.statefiles import LAST_VALID, StateDir
from vpnd.observe.status import NamespaceView
from vpnd.observe.status_book import StatusBook
from vpnd.plan.upkeep import REINITIATE_FIRST, Upkeep
from vpnd.loop.workqueue import Done, Outcome, RequeueAfter, Retry, Terminal

_look_ids = itertools.count(1)

# A look that applies more connections than this to a charon vpnd is not
# yet listening to subscribes after applying them. At 1000 the log events
# cost 100-200 ms of a 0.5 s cold start; at 100, ~10 ms.
EVENTS_BEFORE_LOADS_MAX = 100
# How long a smaller look that loads connections which initiate waits for
# a new event session to be subscribed (a round trip or two, normally).
SUBSCRIBE_WAIT = 2.0
# A scoped look asks charon for the SAs of each name that moves (list-sas
# filtered by name: 0.3-0.45 ms each, at 100 to 10,000 connections loaded),
# or reads the namespace once (get-conns, get-shared, list-sas: 1.2 ms at
# 100, 3.2 ms at 1,000, 18 ms at 10,000, measured without SAs: about
# 1 ms + 1.7 us a connection, so the whole read pays from 3 + N/200 names).
# SAs make the whole read dearer (each is listed), hence N/100.
ONE_READ_PER_NAME = 100
ONE_READ_MIN = 4


def one_read_pays(names: int, loaded: int) -> bool:
    """Whether one read of the whole namespace costs less than asking for
    the SAs of `names` connections one by one, with `loaded` loaded."""
    return names >= ONE_READ_MIN and names * ONE_READ_PER_NAME >= loaded


@dataclass(frozen=True)
class PassResult:
    steps: tuple[Step, ...]
    failed: dict[tuple[str, str], str]
    namespaces: tuple[str, ...]


class Reconciler:
    def __init__(self, config, driver: Driver, statedir: StateDir | None = None,
                 record: Record | None = None, namespace_exists=netns.exists,
                 clock=time.monotonic):
        self.config = config
        self.driver = driver
        self.statedir = statedir or StateDir(
            config.state_dir, config.state_file_max_bytes,
            keep_dir=os.path.join(config.data_dir, LAST_VALID), keep=True,
            state_owner=config.state_owner, max_files=config.state_files_max)
        self.record = record or Record(config.data_dir).load()
        self.namespace_exists = namespace_exists
        self.clock = clock
        self.log = log.get()
        self.observed = Observed(counting_since=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime()))
        self.upkeep = Upkeep()
        self.applier = Applier(driver, self.record, self.observed, self.log, clock)
        self.checks = CharonChecks(driver, self.observed, self.log, clock,
                                   config.charon.restart_unanswering_after)
        self._render = Renderer(driver.render, self.record.fingerprint)
        self.desired_state: DesiredState = self.statedir.state
        self.rendered: Rendered = self._render.rendered
        self._reported_errors: dict[str, tuple[str, ...]] = {}
        self.reloads = 0  # SIGHUPs handled; `vpnd reload` waits for it to move
        self.status = StatusBook()
        self._changed_files: set[str] = set()  # read since status was last built
        self.write_problem: str | None = None  # what could not be written (publish.py)
        self.on_event = lambda ns, label, event: None  # set by the daemon

    # --- the state files -----------------------------------------------------

    def read_files(self, only: set[str] | None = None) -> tuple[set[str], set[str]]:
        """Re-read the state files that changed (`only`: just these, as
        inotify named them); returns (the namespaces they touch, before
        and after; the files that changed). Costs the changed files only."""
        missing_before, not_read_before = self.statedir.missing, self.statedir.not_read
        state, changed = self.statedir.scan(only)
        if self.statedir.not_read != not_read_before and self.statedir.not_read:
            self.log.error("too many state files", state_dir=self.config.state_dir,
                           error=self.statedir.too_many())
        if self.statedir.missing != missing_before:
            if self.statedir.missing:
                self.log.warning("state dir missing", state_dir=self.config.state_dir,
                                 meaning="what its files said stands until it is back")
            else:
                self.log.info("state dir back", state_dir=self.config.state_dir)
        self.desired_state = state
        before = {self.rendered.by_source[p][0] for p in changed if p in self.rendered.by_source}
        log.redactor.add(self._render.update(state, changed))
        self._report_file_errors(state, changed)
        touched = before | {state.services[p].namespace for p in changed
                            if p in state.services}
        touched |= {ns for p in changed for ns, _ in self.record.by_source.get(p, ())}
        self._changed_files |= changed
        return touched, changed

    def take_changed_files(self) -> set[str]:
        changed, self._changed_files = self._changed_files, set()
        return changed

    def source_of(self, ns: str, name: str) -> str | None:
        """The state file a connection comes from, if any."""
        conn = self.rendered.conns.get(ns, {}).get(name) or \
            self.record.namespaces.get(ns, {}).get(name)
        return None if conn is None else conn.source

    def namespaces(self) -> set[str]:
        """Every namespace vpnd serves: desired, or holding what it applied."""
        return (set(self.desired_state.namespaces)
                | {ns for ns, conns in list(self.record.namespaces.items()) if conns})

    def prestart(self, namespaces) -> None:
        """Start, together, the charons of these namespaces that had none
        answering; each namespace's look waits for its own. Settings are
        written first: a charon reads them at start."""
        if self.config.charon.mode == "external":
            return
        for ns in namespaces:
            view = self.observed.views.get(ns)
            if (view is not None and view.live is not None) or not self.namespace_exists(ns):
                continue
            try:
                self.checks.configure(ns, self._models(ns))
                self.driver.start(ns)
            except DriverUnavailable:
                pass  # the namespace's look tries again, and reports it

    # --- one namespace ---------------------------------------------------------

    def reconcile_namespace(self, ns: str, scope: set[str] | None = None,
                            retrying: bool = False, dry_run: bool = False,
                            deadline: float | None = None) -> tuple[tuple[Step, ...], Outcome]:
        """Look at one namespace: (the steps, applied unless dry_run; the
        outcome). `scope`: only these state files' connections; `retrying`:
        this look is the key's retry (re-initiation waits for one)."""
        with structlog.contextvars.bound_contextvars(look_id=next(_look_ids), netns=ns):
            return self._reconcile_namespace(ns, scope, retrying, dry_run, deadline)

    def _reconcile_namespace(self, ns, scope, retrying, dry_run, deadline):
        views = self.observed.views
        if self.config.charon.mode != "external" and not self.namespace_exists(ns):
            views[ns] = NamespaceView(None, f"namespace {ns} does not exist")
            return (), Terminal(f"namespace {ns} does not exist")
        if scope is None:
            desired = self.rendered.of(ns)
            applied = self.record.applied(ns)
        else:
            # Only what these files declare, and what they (or these
            # names) applied: looked up, never a walk of the namespace.
            desired = self.rendered.of_sources(ns, scope)
            recorded = self.record.applied(ns)
            applied = {**self.record.applied_from(ns, scope),
                       **{k: recorded[k] for k in desired if k in recorded}}
        running = ns in views and views[ns].live is not None
        try:
            if not dry_run and (scope is None or not running):
                # charon-wide settings (retransmission) follow all of a
                # namespace's connections: full looks keep them current.
                self.checks.configure(ns, self._models(ns))
            live, whole = self._read_live(ns, running, desired, applied, scope, dry_run)
        except DriverUnavailable as e:
            views[ns] = NamespaceView(None, unreachable(e))
            if not dry_run:
                self.checks.note(ns, unreachable(e), "charon unavailable")
                return (), Retry(unreachable(e), first=self.checks.recover(ns, e))
            live, whole = EMPTY, True  # a plan then says what would be loaded once it runs
        if live is not EMPTY:
            self.checks.check(ns)
            desired = self.checks.drop_unsupported(ns, desired, whole=scope is None)
        standby = self._standby(ns, scope, desired)
        steps = plan_namespace(ns, desired, applied, live, self.desired_state.held,
                               self.record.intended(ns), self.desired_state.held_names(ns))
        if standby:
            steps = tuple(_not_started(s, standby) for s in steps)
        upkeep, recheck, missing = (), None, ()
        if scope is None and live is not EMPTY:
            came = frozenset(self.observed.standby.get(ns, {}).keys() - standby.keys())
            if not dry_run:
                self.observed.set_standby(ns, standby)
            upkeep, recheck, missing = self._upkeep(ns, live, desired, retrying, dry_run,
                                                    standby, came)
        if dry_run:
            views[ns] = NamespaceView(live)
            return (*steps, *upkeep), Done()

        self._listen(ns, steps)
        failed: dict[tuple[str, str], str] = {}
        # A large batch into a charon vpnd listens to: its log events muted
        # meanwhile (charon spends more on sending them than on the loads).
        muted = sum(1 for s in steps if s.actions) > EVENTS_BEFORE_LOADS_MAX
        if muted:
            self.driver.mute_log(ns, True)
        try:
            left = self.applier.apply(ns, (*steps, *upkeep), failed, deadline)
        finally:
            if muted:
                self.driver.mute_log(ns, False)
        if left:
            # Not applied: the next look plans them again (and counts them then).
            not_done = {id(s) for s in left}
            steps = tuple(s for s in steps if id(s) not in not_done)
            upkeep = tuple(s for s in upkeep if id(s) not in not_done)
        self.driver.watch(ns, self.on_event)  # nothing to do if it runs
        # A scoped look at a charon that answered, with few names, read only
        # the SAs of the connections that moved: not a view of the namespace.
        partial = not whole
        acted = {s.name for s in (*steps, *upkeep) if s.actions and s.reason != "mtu"}
        if acted:
            try:
                if partial and not one_read_pays(len(acted), len(self.record.applied(ns))):
                    # What moved, asked fresh, into the view the last full
                    # look made: the others' SAs are as they were.
                    live = self._patched(ns, acted)
                else:
                    live = self.driver.live_state(ns, start=False)
                partial = False
            except DriverUnavailable as e:
                views[ns] = NamespaceView(None, unreachable(e))
                return steps, Retry(unreachable(e))
        if not partial:
            views[ns] = NamespaceView(live)
        self.checks.answered(ns)
        if any(s.actions or s.record for s in steps):
            self.record.save_if_due()
        self.observed.replace(self.observed.apply_errors, ns, failed,
                              None if scope is None else set(desired) | set(applied))
        return (*steps, *upkeep), self._outcome(failed, left, missing, recheck)

    def _outcome(self, failed, left, missing, recheck) -> Outcome:
        if left:
            return RequeueAfter(0)  # over its budget: the rest after the others
        if failed:
            # A refused write backs off: not re-sent on every look.
            return Retry(next(iter(failed.values())), recheck=recheck)
        if missing:
            return Retry(f"no SA for bi-directional {', '.join(missing)}",
                         first=REINITIATE_FIRST, recheck=recheck)
        return RequeueAfter(recheck) if recheck is not None else Done()

    def _patched(self, ns: str, names: set[str]) -> LiveState:
        """The namespace's last view with these connections as they are
        now: loaded as the record says, their SAs asked fresh."""
        view = self.observed.views.get(ns)
        old = view.live if view is not None and view.live is not None else EMPTY
        recorded = self.record.applied(ns)
        loaded = {n for n in names if n in recorded}
        secrets = {recorded[n].secret_id for n in loaded}
        return old.patched(names, loaded, secrets, self.driver.sas_of(ns, sorted(names)))

    def _standby(self, ns: str, scope, desired) -> dict[str, str]:
        """connection -> its local address, not on this node (HA routers:
        the VIP is elsewhere). A full look reads the namespace's addresses;
        a scoped one keeps what the last full look found."""
        if scope is not None:
            return dict(self.observed.standby.get(ns, {}))
        present = None
        if self.namespace_exists(ns):
            try:
                present = addresses.read(ns)
            except Exception as e:  # netlink errors come in several kinds
                self.log.warning("addresses not read", netns=ns, error=str(e))
        return standby_mod.standby(desired, present)

    def _upkeep(self, ns: str, live: LiveState, desired, retrying: bool, dry_run: bool,
                standby=None, came=frozenset()):
        """Upkeep and route MTU steps for a full look at a namespace. A dry
        run shows what is pending, timers or not."""
        upkeep = Upkeep(grace=0) if dry_run else self.upkeep
        steps, recheck, missing = upkeep.plan(ns, live, self.record.applied(ns), desired,
                                              self.clock(), retrying or dry_run,
                                              standby, came)
        have_sa = live.ike_sas  # a property that builds a set: once
        up = [c for name, c in desired.items() if name in have_sa]
        if up and self.namespace_exists(ns):
            try:
                mtu_steps, standing = mtu.plan(ns, up, routes.read(ns))
            except Exception as e:  # netlink errors come in several kinds
                self.log.warning("routes not read", error=str(e))
                mtu_steps, standing = (), {c.name: f"not applied: {e}" for c in up}
            steps = (*steps, *mtu_steps)
            for name, state in standing.items():
                self.observed.mtu[(ns, name)] = state
        return steps, recheck, missing

    def _listen(self, ns: str, steps) -> None:
        """Events (SA up/down, charon's log lines with failure reasons)
        flow from before the loads, so that the first attempt's outcome
        is seen; but charon logs every load too, and for many new
        connections streaming those lines costs it (and vpnd) more than
        the loads: then the subscription waits until after them, and its
        "subscribed" event brings a fresh look at what happened between."""
        applying = [s for s in steps if s.actions]
        if len(applying) <= EVENTS_BEFORE_LOADS_MAX:
            # A bi-directional connection initiates as it loads, and its
            # first outcome comes within a few round trips: then the
            # subscription is waited for, or that outcome could be missed.
            wanted = self.rendered.conns.get(ns, {})
            initiates = any(s.name in wanted and wanted[s.name].initiates for s in applying)
            self.driver.watch(ns, self.on_event, wait=SUBSCRIBE_WAIT if initiates else 0.0)

    def _read_live(self, ns, running, desired, applied, scope,
                   dry_run) -> tuple[LiveState, bool]:
        """(The namespace's live state, whether it is all of it): of a
        charon that was answering, what a scoped look needs; if it stopped
        answering, it is lost, and a charon vpnd runs is started again (not
        by a dry run)."""
        if running and not dry_run:
            try:
                if scope is not None:
                    return self._live_of_changed(ns, desired, applied)
                return self.driver.live_state(ns, start=False), True
            except CharonNotAnswering:
                raise  # there, but stopped or wedged: starting another would not help
            except DriverUnavailable as e:
                self.log.warning("charon lost", error=str(e))
                self.observed.views[ns] = NamespaceView(None, unreachable(e))
                if self.config.charon.mode != "external":
                    self.observed.restarted(ns)  # the look below starts it again
        return self.driver.live_state(ns, start=not dry_run), True

    def _live_of_changed(self, ns: str, wanted: dict, recorded: dict) -> tuple[LiveState, bool]:
        """What a scoped look needs of a charon that was answering: what is
        loaded, from the record, and the SAs of just the connections whose
        configuration moved, asked fresh; or, for a batch of many, the
        whole namespace read once. A charon that lost what vpnd loaded is
        found by the next full look."""
        moving = {n for n, d in wanted.items()
                  if n not in recorded or recorded[n].fingerprint != d.fingerprint}
        moving |= recorded.keys() - wanted.keys()
        if one_read_pays(len(moving), len(self.record.applied(ns))):
            return self.driver.live_state(ns, start=False), True
        return LiveState(conns=frozenset(recorded),
                         shared=frozenset(a.secret_id for a in recorded.values()),
                         sas=self.driver.sas_of(ns, sorted(moving))), False

    def _models(self, ns: str) -> list:
        return [c.model for c in self.rendered.of(ns).values()]

    # --- status ------------------------------------------------------------

    @property
    def last_report(self) -> list[dict]:
        """The status last published."""
        return self.status.report()

    def write_status(self, extra: dict | None = None) -> None:
        publish.write(self, extra)

    def _report_file_errors(self, state: DesiredState, changed) -> None:
        """Log the problems of the files that changed, once each."""
        for path in changed:
            errors = state.problems_of(path)
            reported = tuple(str(e) for e in errors)
            if not reported:
                self._reported_errors.pop(path, None)
                continue
            if self._reported_errors.get(path) != reported:
                invalid = "invalid state file" if path in state.errors else \
                    "invalid connection"
                for e in errors:
                    self.log.error(invalid, file=e.file, path=e.path, problem=e.message)
            self._reported_errors[path] = reported

    # --- everything at once (vpnd plan, tests) -----------------------------------

    def reconcile(self, dry_run: bool = False) -> PassResult:
        """Read the files and look at every namespace once, in order."""
        self.read_files()
        scope = sorted(self.namespaces())
        if not dry_run:
            self.prestart(scope)
        steps, failed = [], {}
        for ns in scope:
            done, _ = self.reconcile_namespace(ns, dry_run=dry_run)
            steps.extend(done)
            failed.update({k: v for k, v in self.observed.apply_errors.items() if k[0] == ns})
        if not dry_run:
            self.write_status()
            self.statedir.flush_kept()
        return PassResult(tuple(steps), failed, tuple(scope))


def _not_started(step: Step, standby) -> Step:
    """A step that loads a connection in standby loads it without starting it."""
    if step.name not in standby:
        return step
    actions = tuple(dataclasses.replace(a, start=False) if isinstance(a, LoadConn) else a
                    for a in step.actions)
    return dataclasses.replace(step, actions=actions)
