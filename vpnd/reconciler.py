"""One reconcile pass: read desired and live state, plan, apply, report.

Level-triggered: whatever woke it, a pass re-reads the state files (only
changed ones are re-parsed) and the live state of each namespace in scope,
and never trusts an event's payload. A change to one file puts only the
namespaces that file touches (before and after) in scope.
"""
from __future__ import annotations

import itertools
import os
import queue
import time
from dataclasses import dataclass, field

import structlog

from . import log, mtu, netns, reasons
from . import status as status_mod
from .drivers.base import Driver
from .errors import DriverError, DriverUnavailable, Unsupported
from .live import EMPTY, LiveState
from .plan import DesiredConn, LoadConn, LoadShared, Step, plan_namespace
from .record import Record
from .desired import DesiredState
from .statefiles import StateDir
from .status import NamespaceView
from .upkeep import SaUpkeep

_pass_ids = itertools.count(1)

# A pass that applies more connections than this to a charon vpnd is not
# yet listening to subscribes after applying them (see below). At 1000 the
# log events cost 100-200 ms of a 0.5 s cold start; at 100, ~10 ms.
EVENTS_BEFORE_LOADS_MAX = 100
# How long a smaller pass that loads connections which initiate waits for
# a new event session to be subscribed (a round trip or two, normally).
SUBSCRIBE_WAIT = 2.0


@dataclass
class Desired:
    """Desired state per namespace, rendered for the driver."""

    conns: dict[str, dict[str, DesiredConn]] = field(default_factory=dict)
    children: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    psks: set[str] = field(default_factory=set)
    initiators: set[tuple[str, str]] = field(default_factory=set)  # bi-directional
    models: dict[str, list] = field(default_factory=dict)  # namespace -> Connections

    def merge(self, other: "Desired") -> None:
        for ns, conns in other.conns.items():
            self.conns.setdefault(ns, {}).update(conns)
        for ns, models in other.models.items():
            self.models.setdefault(ns, []).extend(models)
        self.children.update(other.children)
        self.errors.update(other.errors)
        self.psks |= other.psks
        self.initiators |= other.initiators


@dataclass(frozen=True)
class PassResult:
    steps: tuple[Step, ...]
    failed: dict[tuple[str, str], str]
    namespaces: tuple[str, ...]


class Reconciler:
    def __init__(self, config, driver: Driver, statedir: StateDir | None = None,
                 record: Record | None = None, namespace_exists=netns.exists):
        self.config = config
        self.driver = driver
        self.statedir = statedir or StateDir(config.state_dir)
        self.record = record or Record(config.data_dir).load()
        self.namespace_exists = namespace_exists
        self.log = log.get()
        self.desired_state = DesiredState({}, {})
        self.views: dict[str, NamespaceView] = {}
        self.apply_errors: dict[tuple[str, str], str] = {}
        # (namespace, connection) -> how its mtu stands on the tunnel routes
        self.mtu_outcomes: dict[tuple[str, str], str] = {}
        # Connections the running charon cannot negotiate (get-algorithms).
        self.capability_errors: dict[tuple[str, str], str] = {}
        # What is wrong with a namespace's charon as a whole (plugins it
        # did not load), reported once when it appears or changes.
        self.charon_problems: dict[str, str] = {}
        self._desired = Desired()
        self._rendered: dict[int, tuple] = {}  # id(service) -> (service, Desired)
        self._last_status: dict[tuple[str, str], tuple[str, str]] = {}
        self._reported_errors: dict[str, tuple[str, ...]] = {}
        self.last_report: list[dict] = []
        self.reloads = 0  # SIGHUPs handled; `vpnd reload` waits for it to move
        # Namespaces whose charon could not be reached in a pass:
        # namespace -> (monotonic time of the next try, current delay).
        self._retry: dict[str, tuple[float, float]] = {}
        # Events arrive on watcher threads; the loop drains them.
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.wake = lambda: None  # set by the daemon: interrupts its select()
        self.failures: dict[tuple[str, str], str] = {}  # last failure charon logged
        self.rekeys: dict[tuple[str, str], int] = {}
        self.upkeep = SaUpkeep(driver, self.log)
        self._since: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}

    # --- desired state ---------------------------------------------------

    def _render(self, state: DesiredState) -> Desired:
        """Render every desired connection for the driver. A service object
        is new only when its file was re-parsed, so what it renders to is
        cached by identity: a pass renders only what changed."""
        out = Desired()
        cache = {}
        for service in state.services.values():
            part = self._rendered.get(id(service))
            if part is None or part[0] is not service:
                part = (service, self._render_service(service))
            cache[id(service)] = part
            out.merge(part[1])
        self._rendered = cache
        return out

    def _render_service(self, service) -> Desired:
        out = Desired()
        ns_conns = out.conns.setdefault(service.namespace, {})
        for conn in service.connections:
            out.psks.add(conn.psk)
            if not (service.admin_state_up and conn.admin_state_up):
                continue
            key = (service.namespace, conn.id)
            try:
                r = self.driver.render(conn)
            except Unsupported as e:
                out.errors[key] = str(e)
                continue
            out.children[key] = r.children
            out.models.setdefault(service.namespace, []).append(conn)
            if conn.initiator == "bi-directional":
                out.initiators.add(key)
            ns_conns[conn.id] = DesiredConn(
                name=r.name, service_id=service.id, source=service.source,
                fingerprint=self.record.fingerprint(r.conn, r.secret),
                conn_message=r.conn, secret_id=r.secret_id,
                secret_message=r.secret)
        return out

    def _scope(self, state: DesiredState, changed: set[str], full: bool) -> list[str]:
        namespaces = {s.namespace for s in state.services.values()}
        if full:
            namespaces |= {ns for ns, conns in self.record.namespaces.items() if conns}
            return sorted(namespaces)
        touched = {s.namespace for p, s in state.services.items() if p in changed}
        for ns, conns in self.record.namespaces.items():
            if any(a.source in changed for a in conns.values()):
                touched.add(ns)
        return sorted(touched)

    # --- a pass ------------------------------------------------------------

    def reconcile(self, full: bool = True, dry_run: bool = False,
                  namespaces: set[str] = frozenset()) -> PassResult:
        """Bring the namespaces in scope to the desired state (or, with
        dry_run, only say how); full=False limits it to changed files and
        the given namespaces."""
        # Every line logged during the pass carries its id, however deep.
        with structlog.contextvars.bound_contextvars(pass_id=next(_pass_ids)):
            return self._reconcile(full, dry_run, namespaces)

    def _reconcile(self, full: bool, dry_run: bool, namespaces) -> PassResult:
        state, changed = self.statedir.scan()
        self.desired_state = state
        desired = self._render(state)
        self._desired = desired
        log.redactor.update(desired.psks)
        self._report_file_errors(state)

        scope = sorted(set(self._scope(state, changed, full)) | set(namespaces))
        if not dry_run:
            self._start_charons(scope, desired)
        all_steps, failed = [], {}
        for ns in scope:
            # A pass for changed files plans only their connections; the
            # others of the namespace did not change and are not looked at.
            only = changed if not full and ns not in namespaces else None
            steps = self._reconcile_namespace(ns, desired, state, dry_run, failed, only)
            all_steps.extend(steps)
        if not dry_run:
            # A connection's apply error lasts until it applies, or goes away.
            for key in list(self.apply_errors):
                if key[0] in scope and key not in failed:
                    del self.apply_errors[key]
            self.apply_errors.update(failed)
            if full:  # a namespace no longer served has no charon to report
                for ns in self.charon_problems.keys() - set(scope):
                    del self.charon_problems[ns]
            if any(s.actions or s.record for s in all_steps):
                self.record.save()
            self.write_status()
        return PassResult(tuple(all_steps), failed, tuple(scope))

    def _start_charons(self, scope, desired: Desired) -> None:
        """Start, together, the charons of namespaces in scope that had
        none answering; each namespace's turn in the pass waits for its
        own. Settings are written first: a charon reads them at start."""
        if self.config.charon.mode == "external":
            return
        for ns in scope:
            view = self.views.get(ns)
            if (view is not None and view.live is not None) or not self.namespace_exists(ns):
                continue
            try:
                self._configure(ns, desired)
                self.driver.start(ns)
            except DriverUnavailable:
                pass  # the namespace's turn tries again, and reports it

    def _reconcile_namespace(self, ns, desired: Desired, state: DesiredState,
                             dry_run: bool, failed: dict, only: set[str] | None = None) -> list[Step]:
        if self.config.charon.mode != "external" and not self.namespace_exists(ns):
            self.views[ns] = NamespaceView(None, f"namespace {ns} does not exist")
            return []
        ns_desired = desired.conns.get(ns, {})
        applied = self.record.applied(ns)
        if only is not None:
            ns_desired = {k: v for k, v in ns_desired.items() if v.source in only}
            applied = {k: v for k, v in applied.items() if v.source in only or k in ns_desired}
        try:
            running = self.views.get(ns) is not None and self.views[ns].live is not None
            if not dry_run and (only is None or not running):
                # charon-wide settings (retransmission) follow all of a
                # namespace's connections: full passes keep them current.
                self._configure(ns, desired)
            if only is not None and not dry_run and running:
                live = self._live_of_changed(ns, ns_desired, applied)
            else:
                live = self.driver.live_state(ns, start=not dry_run)
        except DriverUnavailable as e:
            self.views[ns] = NamespaceView(None, f"charon not running: {e}")
            if not dry_run:
                self._note_charon(ns, f"charon not running: {e}", "charon unavailable")
                self._schedule_retry(ns)
                return []
            live = EMPTY  # a plan then says what would be loaded once it runs
        self._retry.pop(ns, None)
        if live is not EMPTY:
            self._check_charon(ns)
            ns_desired = self._drop_unsupported(ns, desired, ns_desired, only is None)
        steps = plan_namespace(ns, ns_desired, applied, live, state.held)
        if dry_run:
            self.views[ns] = NamespaceView(live)
            return list(steps)
        # Events (SA up/down, charon's log lines with failure reasons)
        # flow from before the loads, so that the first attempt's outcome
        # is seen; but charon logs every load too, and for many new
        # connections streaming those lines costs it (and vpnd) more than
        # the loads themselves: then the subscription waits until after
        # them, and its "subscribed" event brings a fresh read of what
        # happened in between.
        applying = [step for step in steps if step.actions]
        if len(applying) <= EVENTS_BEFORE_LOADS_MAX:
            # A bi-directional connection initiates as it loads, and its
            # first outcome comes within a few round trips: then the
            # subscription is waited for, or that outcome could be missed.
            initiates = any((ns, step.name) in self._desired.initiators for step in applying)
            self.driver.watch(ns, self.on_event, wait=SUBSCRIBE_WAIT if initiates else 0.0)
        self._apply_steps(ns, steps, failed)
        self.driver.watch(ns, self.on_event)  # nothing to do if it runs
        if applying:
            try:
                live = self.driver.live_state(ns, start=False)
            except DriverUnavailable as e:
                self.views[ns] = NamespaceView(None, f"charon not running: {e}")
                return list(steps)
        self.views[ns] = NamespaceView(live)
        return list(steps)

    def _live_of_changed(self, ns: str, wanted: dict, recorded: dict) -> LiveState:
        """What a pass for changed files needs to know of a charon that was
        answering (`wanted` and `recorded`: those files' connections, desired
        and on record): what is loaded, taken from the record, and the SAs
        of just the connections whose configuration moved (changed, new or
        gone), asked fresh. A charon that lost what vpnd loaded is found by
        the next poll or resync, which read everything; this keeps a change
        within a round trip or two."""
        moving = {n for n, d in wanted.items()
                  if n not in recorded or recorded[n].fingerprint != d.fingerprint}
        moving |= recorded.keys() - wanted.keys()
        return LiveState(conns=frozenset(recorded),
                         shared=frozenset(a.secret_id for a in recorded.values()),
                         sas=self.driver.sas_of(ns, sorted(moving)))

    def _check_charon(self, ns: str) -> None:
        """Whether the charon that answers is what vpnd asked for (its
        plugins); the driver asks once per VICI session."""
        try:
            problem = self.driver.charon_problem(ns)
        except DriverError as e:
            self.log.warning("cannot ask charon for its plugins", netns=ns, error=str(e))
            return
        self._note_charon(ns, problem, "charon incomplete")

    def _note_charon(self, ns: str, problem: str | None, event: str) -> None:
        """Record what is wrong with a namespace's charon as a whole, for
        status; logged once when it appears or changes, not every pass."""
        if problem == self.charon_problems.get(ns):
            return
        if problem:
            self.charon_problems[ns] = problem
            self.log.error(event, netns=ns, error=problem)
        else:
            del self.charon_problems[ns]
            self.log.info("charon problem cleared", netns=ns)

    def _drop_unsupported(self, ns: str, desired: Desired, ns_desired: dict,
                          whole_namespace: bool) -> dict:
        """Leave out connections that charon cannot negotiate (an ERROR with
        the reason) rather than load them to fail at every attempt."""
        for key in [k for k in self.capability_errors
                    if k[0] == ns and (whole_namespace or k[1] in ns_desired)]:
            del self.capability_errors[key]
        kept = dict(ns_desired)
        for conn in desired.models.get(ns, []):
            if conn.id not in ns_desired:
                continue
            try:
                reason = self.driver.unsupported(ns, conn)
            except DriverError as e:
                self.log.warning("cannot ask charon for its algorithms", netns=ns, error=str(e))
                return kept
            if reason:
                self.capability_errors[(ns, conn.id)] = reason
                kept.pop(conn.id, None)
        return kept

    def _configure(self, ns: str, desired: Desired) -> None:
        try:
            self.driver.configure(ns, desired.models.get(ns, []))
        except DriverUnavailable:
            raise
        except DriverError as e:
            # Old settings stay in force; connections can still be applied.
            self.log.warning("charon settings not applied", netns=ns, error=str(e))

    def _apply_steps(self, ns: str, steps, failed: dict) -> None:
        """New connections (only loads) go in one pipelined batch; the rest,
        which terminate and wait, one step after another."""
        loads = [s for s in steps if [type(a) for a in s.actions] == [LoadShared, LoadConn]]
        if len(loads) > 1:
            answered = 0
            try:
                # Each answer is recorded and logged as it arrives, while
                # charon works on the next ones.
                for step, error in zip(loads, self.driver.load_many(
                        ns, [(s.actions[0].message, s.actions[1].message) for s in loads])):
                    answered += 1
                    if error:
                        self._load_failed(step, error, failed)
                    else:
                        self._applied(step)
            except DriverUnavailable as e:
                for step in loads[answered:]:
                    self._load_failed(step, f"load failed: {e}", failed)
            batched = {id(s) for s in loads}
            steps = [s for s in steps if id(s) not in batched]
        for step in steps:
            self._apply_step(step, failed)

    def _load_failed(self, step: Step, error: str, failed: dict) -> None:
        failed[(step.namespace, step.name)] = error
        self.log.error("apply failed", netns=step.namespace, service=step.service_id,
                    connection=step.name, error=error)

    def _applied(self, step: Step) -> None:
        self.record.set(step.namespace, step.name, step.record)
        if step.actions:
            # Whatever failed before was about the old configuration.
            self.failures.pop((step.namespace, step.name), None)
            self.log.info("change applied", netns=step.namespace, service=step.service_id,
                       connection=step.name, reason=step.reason,
                       actions=[a.describe() for a in step.actions])

    def _apply_step(self, step: Step, failed: dict) -> None:
        for action in step.actions:
            try:
                self.driver.execute(step.namespace, action)
            except DriverError as e:
                failed[(step.namespace, step.name)] = f"{action.describe()} failed: {e}"
                self.log.error("apply failed", netns=step.namespace, service=step.service_id,
                            connection=step.name, action=action.describe(), error=str(e))
                return
        self._applied(step)

    # --- status --------------------------------------------------------------

    def refresh_live(self, only: set[str] | None = None) -> set[str]:
        """Re-read SAs of every namespace in use, end confirmed duplicate
        SAs, then report. Writes nothing else. Returns the namespaces that
        need a pass now: their charon stopped answering, or lost
        connections vpnd loaded (it restarted)."""
        namespaces = {s.namespace for s in self.desired_state.services.values()}
        if only is not None:
            namespaces &= only
        need_pass = set()
        for ns in sorted(namespaces):
            if self.config.charon.mode != "external" and not self.namespace_exists(ns):
                self.views[ns] = NamespaceView(None, f"namespace {ns} does not exist")
                continue
            before = self.views.get(ns)
            retry = self._retry.get(ns)
            if retry is not None:
                if time.monotonic() >= retry[0]:
                    need_pass.add(ns)
                continue
            try:
                live = self.driver.live_state(ns, start=False)
                if self.upkeep.tend(ns, live, self.record.applied(ns),
                                    self._desired.initiators, self._desired.children):
                    live = self.driver.live_state(ns, start=False)
                self.views[ns] = NamespaceView(live)
                self._check_charon(ns)
                self._apply_mtus(ns, live)
                self.driver.watch(ns, self.on_event)
                if self.record.applied(ns).keys() - live.conns:
                    need_pass.add(ns)
            except DriverUnavailable as e:
                self.views[ns] = NamespaceView(None, f"charon not running: {e}")
                if before is not None and before.live is not None:
                    self.log.warning("charon lost", netns=ns, error=str(e))
                    need_pass.add(ns)
        self.write_status()
        return need_pass

    def healthy(self) -> bool:
        """The event sessions of every reachable charon are alive."""
        reachable = [ns for ns, view in self.views.items() if view.live is not None]
        return self.driver.watching(reachable)

    def checks_due(self) -> dict[str, float]:
        """Namespaces to look at again, and when (monotonic): a charon to
        retry, a duplicate SA to confirm, a connection to initiate."""
        due = {ns: at for ns, (at, _) in self._retry.items()}
        for ns, at in self.upkeep.due().items():
            due[ns] = min(at, due.get(ns, at))
        return due

    def _schedule_retry(self, ns: str) -> None:
        """Back off from a charon that cannot be started or reached:
        1 s, 2 s, 4 s ... up to the resync interval."""
        _, delay = self._retry.get(ns, (0.0, 0.5))
        delay = min(delay * 2, self.config.resync_interval)
        self._retry[ns] = (time.monotonic() + delay, delay)

    def _apply_mtus(self, ns: str, live) -> None:
        """Put each connection's mtu on its routes into the tunnel."""
        conns = [c for c in self._desired.models.get(ns, []) if c.id in live.ike_sas]
        if not conns or not self.namespace_exists(ns):
            return
        try:
            outcomes = mtu.apply(ns, mtu.wanted(conns))
        except Exception as e:  # netlink errors come in several kinds
            self.log.warning("mtu not applied", netns=ns, error=str(e))
            outcomes = {cidr: f"not applied: {e}" for c in conns for cidr in c.peer_cidrs}
        for conn in conns:
            states = [outcomes.get(cidr, "no route yet") for cidr in conn.peer_cidrs]
            self.mtu_outcomes[(ns, conn.id)] = next(
                (s for s in states if s != "applied"), "applied")

    def status_report(self) -> list[dict]:
        errors = {**self._desired.errors, **self.capability_errors, **self.apply_errors}
        report = status_mod.build(self.desired_state, self.views,
                                  self._desired.children, errors, self.failures)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for service in report:
            ns = service.get("namespace")
            for cid, conn in service["ipsec_site_connections"].items():
                key = (ns, cid)
                if conn["status"] == status_mod.ACTIVE:
                    self.failures.pop(key, None)
                # "since": when this status (and reason) began.
                state = (conn["status"], conn.get("reason", ""))
                since_key = (service["id"], cid)
                if self._since.get(since_key, (None,))[0] != state:
                    self._since[since_key] = (state, now)
                conn["since"] = self._since[since_key][1]
                conn["rekeys"] = self.rekeys.get(key, 0)
                if conn["status"] == status_mod.ACTIVE and key in self.mtu_outcomes:
                    conn["mtu"] = self.mtu_outcomes[key]
        return report

    # --- events ---------------------------------------------------------

    def on_event(self, ns: str, label: str, event: dict) -> None:
        """Called on a watcher thread: queue the event and wake the loop."""
        self.events.put((ns, label, event))
        self.wake()

    def handle_events(self) -> set[str]:
        """Drain queued events; returns the namespaces whose SAs changed
        (or whose charon went away), for a refresh of their status."""
        touched = set()
        while True:
            try:
                ns, label, event = self.events.get_nowait()
            except queue.Empty:
                return touched
            names = [k for k in event if k != "up"]
            if label == "log":
                name, reason = event.get("ikesa-name"), reasons.classify(event.get("msg", ""))
                if name and reason and self.failures.get((ns, name)) != reason:
                    self.failures[(ns, name)] = reason
                    self.log.info("charon reports", netns=ns, connection=name, reason=reason,
                                  message=event.get("msg", ""))
                    touched.add(ns)
            elif label in ("ike-rekey", "child-rekey"):
                for name in names:
                    self.rekeys[(ns, name)] = self.rekeys.get((ns, name), 0) + 1
                touched.add(ns)
            else:  # ike-updown, child-updown, subscribed, disconnected
                touched.add(ns)

    def write_status(self) -> list[dict]:
        report = self.status_report()
        os.makedirs(self.config.run_dir, exist_ok=True)
        status_mod.write(self.config.status_file, report,
                         vici_writes=self.driver.writes(), pid=os.getpid(),
                         reloads=self.reloads,
                         charons={ns: {"status": status_mod.ERROR, "reason": problem}
                                  for ns, problem in sorted(self.charon_problems.items())})
        self._log_transitions(report)
        self.last_report = report
        return report

    def _log_transitions(self, report: list[dict]) -> None:
        current = {}
        for service in report:
            for cid, conn in service["ipsec_site_connections"].items():
                key = (service["id"], cid)
                current[key] = (conn["status"], conn.get("reason", ""))
                if self._last_status.get(key) != current[key]:
                    method = self.log.warning if conn["status"] == "ERROR" else self.log.info
                    method("connection status", service=service["id"], connection=cid,
                           netns=service.get("namespace"), status=conn["status"],
                           reason=conn.get("reason", ""))
        self._last_status = current

    def _report_file_errors(self, state: DesiredState) -> None:
        reported = {}
        for path, errors in state.errors.items():
            reported[path] = tuple(str(e) for e in errors)
            if self._reported_errors.get(path) != reported[path]:
                for e in errors:
                    self.log.error("invalid state file", file=e.file, path=e.path,
                                problem=e.message)
        self._reported_errors = reported
