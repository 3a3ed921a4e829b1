"""vpnd's threads share one malloc arena (vpnd/loop/memory.py): glibc's
own count of its arenas says so, in a process of the test's own."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import ctypes, sys, threading
from vpnd.loop import memory
if sys.argv[1] == "one":
    assert memory.one_arena()
def work():
    keep = [bytes(200) + bytes([i % 256]) for i in range(20000)]  # small blocks: an arena's
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block each, on stderr
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True,
                          text=True, check=True)
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_that_allocate_together_share_the_one_arena_asked_for():
    assert arenas("many") > 1  # what glibc does unasked: the test can tell
    assert arenas("one") == 1
