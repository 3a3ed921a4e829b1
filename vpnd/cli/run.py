"""`vpnd run`: the daemon in the foreground."""
from __future__ import annotations

import os
import sys

def run(config, args) -> int:
    # Imported here, not at the top: `vpnd status` and `health` (probes)
    # need neither structlog nor the daemon, and start faster without.
    from vpnd.system import log
    from vpnd.loop.daemon import Daemon
    log.setup(config.log_format, config.log_level)
    code = Daemon(config).run()
    # At once, as promised on SIGTERM: a look still waiting on a charon's
    # deadline in a worker thread must neither delay the exit (the
    # interpreter would join it) nor act after it (start a charon, say).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
