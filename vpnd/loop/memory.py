"""After the first round: memory given back, and what lives on frozen.

The plan and the messages of every load are garbage once the first round
is over; glibc keeps freed heap for reuse unless asked to return it (at
10,000 connections, tens of MB a daemon would hold for nothing). Here
because the daemon does it once, and it is no part of the loop.
"""
from __future__ import annotations

import ctypes
import gc


def after_first_round() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to ask
    # What the first round made lives as long as vpnd (models, records,
    # status): out of the collector's sight, so that a full collection
    # does not walk millions of objects at 10,000 connections (seen: a
    # change delayed by a second).
    gc.freeze()
