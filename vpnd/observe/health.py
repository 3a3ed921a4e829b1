"""Is the daemon healthy, judged from the status file its loop writes
(pure): for a readiness or liveness probe (`vpnd health`)."""
from __future__ import annotations

import calendar
import time


def judge(doc: dict | None, now: float, status_interval: float,
          alive_only: bool = False) -> tuple[bool, str]:
    """(healthy, why). Alive: the loop rewrote status lately (it does after
    every round, and a round runs at least every status_interval). Ready:
    alive, no namespace failing, and the metrics asked for delivered (a
    port held by another process is not ready, but alive: the tunnels
    work, and a restart would not free the port)."""
    if doc is None:
        return False, "no status yet (vpnd starting, or not running)"
    try:
        updated = calendar.timegm(time.strptime(doc["updated"], "%Y-%m-%dT%H:%M:%SZ"))
    except (KeyError, TypeError, ValueError):
        return False, "status without a valid 'updated' time"
    stale = 3 * status_interval + 30
    if now - updated > stale:
        return False, f"status not rewritten for {now - updated:.0f}s (more than {stale:.0f}s)"
    if alive_only:
        return True, "alive"
    # Namespaces first: a failing one is worse than metrics not served.
    problems = sorted((doc.get("failing") or {}).items()) + \
        [("metrics", why) for why in (doc.get("metrics") or {}).get("errors", ())]
    if problems:
        key, why = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return False, f"{key}: {why}{more}"
    return True, "ready"
