"""At the start, one malloc arena; after the first round, memory given
back, and what lives on frozen.

The plan and the messages of every load are garbage once the first round
is over; glibc keeps freed heap for reuse unless asked to return it (at
10,000 connections, tens of MB a daemon would hold for nothing). Here
because the daemon does it once, and it is no part of the loop.
"""
from __future__ import annotations

import ctypes
import gc


# glibc's mallopt parameter: how many malloc arenas threads may use.
M_ARENA_MAX = -8


def one_arena() -> bool:
    """Every thread allocates from the main malloc arena (before threads
    start). glibc gives each thread that allocates while another does an
    arena of its own: the loop reading files and a worker reading charon
    then each keep heap the other could have reused (measured at 10,000
    connections, after a change and two resyncs: peak RSS 61.9 -> 60.2
    MB, three runs each). Python allocates under its one lock anyway, so
    the threads rarely contend for the arena. False if not glibc."""
    try:
        return ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1) == 1
    except (OSError, AttributeError):
        return False


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
