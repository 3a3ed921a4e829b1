"""Publishing status: status.json, and the journal lines for each change
of a connection's status. Only what moved is rebuilt (status_book.py). A
run_dir or data_dir that cannot be written is said once in the log (and
in status, once it can be written) and tried again; it never stops vpnd."""
from __future__ import annotations

import os
import time

from vpnd.observe import status as status_mod
from vpnd.observe.status_book import Children


def report(rec) -> list[dict]:
    """The status now, all of it built afresh (changes nothing)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return rec.observed.report(rec.desired_state, Children(rec.rendered),
                               rec.rendered.errors, now)


def moved(rec) -> set[str]:
    """The state files whose entries may have moved since the last write:
    files read, and the files of the connections (or namespaces) whose
    view or books moved."""
    keys, namespaces = rec.observed.dirty.take()
    paths = rec.take_changed_files()
    desired = rec.desired_state
    for ns in namespaces:
        paths |= desired.namespaces.get(ns, set())
    for ns, name in keys:
        path = rec.source_of(ns, name)
        if path is not None:
            paths.add(path)
    return paths


def write(rec, extra: dict | None = None) -> None:
    """Bring status up to date and write status.json from reconciler
    `rec`; log status transitions."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    transitions = rec.status.refresh(rec, moved(rec), now)
    config = rec.config
    extra = dict(extra or {})
    if rec.record.problem:
        extra["errors"] = [*extra.get("errors", ()), rec.record.problem]
    if rec.statedir.not_read:
        extra["errors"] = [*extra.get("errors", ()), rec.statedir.too_many()]
    if rec.statedir.missing:
        extra["warnings"] = [f"state dir {config.state_dir} is missing: what its "
                             "files said stands until it is back"]
    try:
        os.makedirs(config.run_dir, exist_ok=True)
        status_mod.write_fragments(config.status_file, rec.status.fragments(),
                                   vici_writes=rec.driver.writes(), pid=os.getpid(),
                                   reloads=rec.reloads, charons=rec.observed.charons(), **extra)
        _problem(rec, None)
    except OSError as e:  # a full run_dir: say so, keep going, write again later
        _problem(rec, f"cannot write {config.status_file}: {e.strerror or e}")
    for service, cid, ns, status, reason in transitions:
        method = rec.log.warning if status == status_mod.ERROR else rec.log.info
        method("connection status", service=service, connection=cid, netns=ns,
               status=status, reason=reason)


def _problem(rec, problem: str | None) -> None:
    """Log what vpnd cannot write (status, record) once, not per try."""
    problem = problem or rec.record.problem
    if problem != rec.write_problem:
        if problem:
            rec.log.error("cannot write", error=problem)
        else:
            rec.log.info("writing again")
        rec.write_problem = problem
