"""Fault injection for the fault suite: crash at a named point.

A test that must show what a kill at one exact moment does (between a
change reaching charon and its record line, a window of microseconds)
cannot hit it with kill -9 from outside. It starts vpnd with
VPND_FAILPOINT=<point>:<connection>, and vpnd kills itself there, as
kill -9 would. Unset (always, outside tests), this costs one test of an empty string.
"""
from __future__ import annotations

import os
import signal

_SET = os.environ.get("VPND_FAILPOINT", "")


def reached(point: str, connection: str) -> None:
    if _SET and _SET == f"{point}:{connection}":
        os.kill(os.getpid(), signal.SIGKILL)
