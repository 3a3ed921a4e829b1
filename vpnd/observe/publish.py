"""Publishing status: status.json, and the journal lines for each change
of a connection's status. Only what moved is rebuilt (status_book.py):
`moved` says which state files that is. A run_dir or data_dir that cannot
be written is said once in the log (and in status, once it can be
written) and tried again; it never stops vpnd (StatusFile).

Every function takes what it reads as arguments, so that the import
graph shows what status depends on: the desired state, observed state,
what was rendered, and the status book.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Callable

from vpnd.observe import status as status_mod
from vpnd.observe.observed import Observed
from vpnd.observe.status_book import Children
from vpnd.plan.render import Rendered
from vpnd.state.desired import DesiredState
from vpnd.state.statefiles import StateDir


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def report(desired: DesiredState, observed: Observed, rendered: Rendered) -> list[dict]:
    """The status now, all of it built afresh (changes nothing)."""
    return observed.report(desired, Children(rendered), rendered.errors, now())


def moved(observed: Observed, desired: DesiredState, files_read: set[str],
          source_of: Callable[[str, str], str | None]) -> set[str]:
    """The state files whose entries may have moved since the last write:
    the files read since, and the files of the connections (or
    namespaces) whose view or books moved (`source_of(ns, name)`: the
    state file a connection comes from). Takes what observed marked."""
    keys, namespaces = observed.dirty.take()
    paths = set(files_read)
    for ns in namespaces:
        paths |= desired.namespaces.get(ns, set())
    for ns, name in keys:
        path = source_of(ns, name)
        if path is not None:
            paths.add(path)
    return paths


def problems(extra: dict, record_problem: str | None, statedir: StateDir,
             state_dir: str) -> dict:
    """`extra` (status.json's fields besides the entries) with what is
    wrong with vpnd's own files: the record, too many state files, a
    state dir that is missing."""
    extra = dict(extra)
    if record_problem:
        extra["errors"] = [*extra.get("errors", ()), record_problem]
    if statedir.not_read:
        extra["errors"] = [*extra.get("errors", ()), statedir.too_many()]
    if statedir.missing:
        extra["warnings"] = [f"state dir {state_dir} is missing: what its "
                             "files said stands until it is back"]
    return extra


def log_transitions(transitions, log) -> None:
    """One journal line for each connection whose status changed."""
    for service, cid, ns, status, reason in transitions:
        method = log.warning if status == status_mod.ERROR else log.info
        method("connection status", service=service, connection=cid, netns=ns,
               status=status, reason=reason)


class StatusFile:
    """status.json, written from ready fragments; what vpnd cannot write
    (status, or the record) is logged once, not per try."""

    def __init__(self, path: str, run_dir: str, log):
        self.path = path
        self.run_dir = run_dir
        self.log = log
        self.problem: str | None = None  # what could not be written, last said

    def write(self, fragments: Iterable[bytes], fields: dict, record_problem: str | None) -> None:
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            status_mod.write_fragments(self.path, fragments, **fields)
            self._say(None, record_problem)
        except OSError as e:  # a full run_dir: say so, keep going, write again later
            self._say(f"cannot write {self.path}: {e.strerror or e}", record_problem)

    def _say(self, problem: str | None, record_problem: str | None) -> None:
        problem = problem or record_problem
        if problem != self.problem:
            if problem:
                self.log.error("cannot write", error=problem)
            else:
                self.log.info("writing again")
            self.problem = problem
