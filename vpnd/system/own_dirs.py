"""vpnd's own directories, judged at start before anything is written in
them: run_dir, data_dir and the metrics textfile's (the judgement is
trust.own_dir_refusal). A local user who could write one of them could
redirect what vpnd writes there as root, or plant the pid files, sockets
and status it believes."""
from __future__ import annotations

import os

from vpnd.system import files, trust
from vpnd.base.config import Config


def refusal(config: Config) -> str | None:
    """Make run_dir and data_dir if missing, where nobody else could have
    made them first; the first of the three that vpnd may not use, with
    how to fix it, or None."""
    trusted = files.owners()
    made = (("run_dir", config.run_dir, 0o755), ("data_dir", config.data_dir, 0o700))
    dirs = [(f"{key} {path}", path) for key, path, _ in made]
    if config.metrics.textfile:
        textfile_dir = os.path.dirname(config.metrics.textfile)
        # Not made by vpnd: node_exporter's, perhaps installed later.
        dirs.append((f"metrics.textfile's directory {textfile_dir}", textfile_dir))
    # All judged before any is made, so that a refusal leaves no trace;
    # and again once made.
    problem = _first_refusal(dirs, trusted)
    if problem:
        return problem
    for key, path, mode in made:
        try:
            os.makedirs(path, mode, exist_ok=True)
        except OSError as e:
            return f"{key} {path}: cannot make it: {e.strerror or e}"
    return _first_refusal(dirs, trusted)


def _first_refusal(dirs, trusted: frozenset[int]) -> str | None:
    return next((p for what, path in dirs if (p := _judge(what, path, trusted))), None)


def _judge(what: str, path: str, trusted: frozenset[int]) -> str | None:
    try:
        chain, exists = files.dir_chain(path)
    except OSError as e:
        return f"{what}: cannot check who may write it: {e.strerror or e}"
    return trust.own_dir_refusal(chain, trusted, what, exists)
