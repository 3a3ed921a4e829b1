"""`vpnd plan`: what the next reconcile would do, written nowhere."""
from __future__ import annotations

import json
import os
import sys

from vpnd.base.printable import printable
from vpnd.cli.exits import EXIT_ERROR, EXIT_OK, EXIT_PENDING

def plan(config, args) -> int:
    from vpnd.system import log
    from vpnd.drivers import compose
    from vpnd.loop.reconciler import Reconciler
    from vpnd.apply.record import Record
    from vpnd.state.statefiles import LAST_VALID, StateDir
    log.setup(config.log_format, "error")
    driver = compose.driver(config, timeout=5.0)
    try:
        # A dry run writes nothing, not even a first fingerprint key.
        record = Record(config.data_dir).load(create_key=False)
        statedir = StateDir(config.state_dir, config.state_file_max_bytes,
                            keep_dir=os.path.join(config.data_dir, LAST_VALID),
                            state_owner=config.state_owner,
                            max_files=config.state_files_max)
        result = Reconciler(config, driver, statedir=statedir,
                            record=record).reconcile(dry_run=True)
    except Exception as e:  # plan must say why it could not plan, then exit 1
        print(f"vpnd: plan failed: {e}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        driver.close()
    steps = [s for s in result.steps if s.actions]
    if args.json:
        print(json.dumps([s.to_dict() for s in steps], indent=1))
    elif not steps:
        print("No changes: every namespace matches the state files.")
    else:
        for s in steps:
            print(printable(f"{s.namespace}: {s.reason} {s.name} (service {s.service_id})"))
            for a in s.actions:
                print(printable(f"    {a.describe()}"))
            d = s.disrupts
            if d.ike_sas or d.child_sas:
                ends = ", ".join([*(f"IKE_SA #{i}" for i in d.ike_sas),
                                  *(f"CHILD_SA #{i}" for i in d.child_sas)])
                cost = "interrupts its traffic" if d.interrupts_traffic else \
                    "no traffic interrupted"
                print(printable(f"    => ends {ends}; {cost}: {d.why}"))
            elif d.why:
                print(printable(f"    => ends nothing: {d.why}"))
    return EXIT_PENDING if steps else EXIT_OK
