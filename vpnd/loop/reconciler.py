"""The Reconciler: what a look needs, wired together; the state files;
and everything at once (`vpnd plan`, tests).

Level-triggered: whatever asked for a look, a look at a namespace
(looks.py) reads its live state fresh, plans and applies through the one
apply path, and says how it went as an outcome for the work queue. Here:
re-reading the state files that changed (and which namespaces that
touches), starting charons together, and publishing status.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from vpnd.apply.applier import Applier
from vpnd.apply.record import Record
from vpnd.base.errors import DriverUnavailable
from vpnd.drivers.base import Driver
from vpnd.loop.charon_checks import CharonChecks
from vpnd.loop.charon_restarts import UnansweringCharons
from vpnd.loop.live_reads import LiveReader
from vpnd.loop.look_memo import LookMemo
from vpnd.loop.looks import NamespaceLooks
from vpnd.observe import publish
from vpnd.observe.observed import Observed
from vpnd.observe.status_book import StatusBook
from vpnd.plan.steps import Step
from vpnd.plan.render import Renderer, Rendered
from vpnd.plan.upkeep import Upkeep
from vpnd.state.desired import DesiredState
from vpnd.state.statefiles import LAST_VALID, StateDir
from vpnd.system import log, netns


@dataclass(frozen=True)
class PassResult:
    steps: tuple[Step, ...]
    failed: dict[tuple[str, str], str]
    namespaces: tuple[str, ...]


class Reconciler(NamespaceLooks):
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
        self.memo = LookMemo()  # what full looks keep while their inputs stand
        self.applier = Applier(driver, self.record, self.observed, self.log, clock)
        self.checks = CharonChecks(driver, self.observed, self.log)
        self.restarts = UnansweringCharons(driver, self.observed, self.log, clock,
                                           config.charon.restart_unanswering_after)
        self.reads = LiveReader(driver, self.observed, self.log,
                                runs_charons=config.charon.mode != "external")
        self._render = Renderer(driver.render, self.record.fingerprint)
        self.desired_state: DesiredState = self.statedir.state
        self.rendered: Rendered = self._render.rendered
        self._reported_errors: dict[str, tuple[str, ...]] = {}
        self.reloads = 0  # SIGHUPs handled; `vpnd reload` waits for it to move
        self.status = StatusBook()
        self._changed_files: set[str] = set()  # read since status was last built
        self.status_file = publish.StatusFile(config.status_file, config.run_dir, self.log)
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
            if (view is not None and view.answering) or not self.namespace_exists(ns):
                continue
            try:
                self.checks.configure(ns, self._models(ns))
                self.driver.start(ns)
            except DriverUnavailable:
                pass  # the namespace's look tries again, and reports it

    # --- status ------------------------------------------------------------

    @property
    def last_report(self) -> list[dict]:
        """The status last published."""
        return self.status.report()

    def write_status(self, extra: dict | None = None) -> None:
        """Bring status up to date (the entries of what moved) and write
        status.json, with `extra` fields; log the status transitions."""
        paths = publish.moved(self.observed, self.desired_state, self.take_changed_files(),
                              self.source_of)
        transitions = self.status.refresh(paths, publish.now(), self.desired_state,
                                          self.observed, self.rendered)
        fields = publish.problems(extra or {}, self.record.problem, self.statedir,
                                  self.config.state_dir)
        self.status_file.write(self.status.fragments(), {
            "vici_writes": self.driver.writes(), "pid": os.getpid(), "reloads": self.reloads,
            "charons": self.observed.charons(), **fields}, self.record.problem)
        publish.log_transitions(transitions, self.log)

    # --- everything at once (vpnd plan, tests) -----------------------------------

    def reconcile(self, dry_run: bool = False) -> PassResult:
        """Read the files and look at every namespace once, in order; a
        dry run (`vpnd plan`) plans them and writes nothing."""
        self.read_files()
        namespaces = sorted(self.namespaces())
        if dry_run:
            steps = [s for ns in namespaces for s in self.dry_run_namespace(ns)]
            return PassResult(tuple(steps), {}, tuple(namespaces))
        self.prestart(namespaces)
        steps, failed = [], {}
        for ns in namespaces:
            done, _ = self.reconcile_namespace(ns)
            steps.extend(done)
            failed.update({k: v for k, v in self.observed.apply_errors.items() if k[0] == ns})
        self.write_status()
        self.statedir.flush_kept()
        return PassResult(tuple(steps), failed, tuple(namespaces))
