"""`vpnd check`: validate state files, as root or not, with no daemon."""
from __future__ import annotations

import sys

from vpnd.base import config as config_mod
from vpnd.base.errors import ConfigError
from vpnd.base.printable import printable
from vpnd.cli.exits import EXIT_ERROR, EXIT_OK

def check(args) -> int:
    from vpnd.state.one_file import check_file
    from vpnd.state.statefiles import StateDir
    files = args.files
    deprecated = []
    if not files:
        try:
            config = config_mod.load(args.config)
        except ConfigError as e:
            print(f"vpnd: {e}", file=sys.stderr)
            return EXIT_ERROR
        state, _ = StateDir(config.state_dir, config.state_file_max_bytes,
                            state_owner=config.state_owner,
                            max_files=config.state_files_max).scan()
        problems = [e for errs in state.problems().values() for e in errs]
        for path, warning in sorted(state.warnings.items()):
            print(printable(f"{path}: warning: {warning}"), file=sys.stderr)
        deprecated = [w for _, ws in sorted(state.deprecations.items()) for w in ws]
        checked = len(set(state.services) | set(state.errors))
    else:
        problems = []
        for path in files:
            errors, warnings = check_file(path)
            problems.extend(errors)
            deprecated.extend(warnings)
        checked = len(files)
    # Accepted, so not a failure: but a value Neutron 29 rewrites is worth
    # seeing before it goes live.
    for w in deprecated:
        print(printable(f"{w.file}: {w.path}: warning: {w.message}"), file=sys.stderr)
    for problem in problems:
        print(printable(problem))
    bad = len({p.file for p in problems})
    print(f"{checked} file(s) checked, {bad} invalid", file=sys.stderr)
    return EXIT_ERROR if problems else EXIT_OK
