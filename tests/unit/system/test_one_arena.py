"""vpnd's threads share one malloc arena (vpnd/loop/memory.py)."""
from __future__ import annotations

import subprocess
import sys


def test_one_arena_is_asked_of_glibc_and_threads_still_allocate():
    code = ("import threading\n"
            "from vpnd.loop import memory\n"
            "assert memory.one_arena()\n"
            "out = []\n"
            "def work():\n"
            "    out.append(len(bytearray(1 << 20)))\n"
            "threads = [threading.Thread(target=work) for _ in range(4)]\n"
            "[t.start() for t in threads]\n"
            "[t.join() for t in threads]\n"
            "print(sum(out))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == str(4 << 20)
