"""inotify never loses an event without a word: the kernel's overflow is an
event of its own, the reader empties the queue while the loop is busy,
and the loop reads an overflow as "look at everything"."""
from __future__ import annotations

import json
import os
import threading
import time


from vpnd.system import log as vpnd_log, netns
from vpnd.loop.watches import classify
from vpnd.system.inotify import IN_Q_OVERFLOW, Inotify, Reader



def max_queued() -> int:
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        return int(f.read())


def touch_alternately(directory, times: int, pause_every: int = 0) -> None:
    """`times` events that the kernel cannot fold into one another (it
    folds an event into an identical one just before it); `pause_every`:
    let other threads run that often (as any writer's process does)."""
    names = [os.path.join(directory, n) for n in ("a.json", "b.json")]
    for name in names:
        open(name, "w").close()
    for i in range(times):
        os.utime(names[i % 2])
        if pause_every and i % pause_every == 0:
            time.sleep(0.001)


def test_an_overflowed_kernel_queue_is_read_as_an_overflow(tmp_path):
    watcher = Inotify()
    try:
        watcher.watch(str(tmp_path))
        touch_alternately(tmp_path, max_queued() + 100)
        events = watcher.read()  # everything pending, in reads of its own size
    finally:
        watcher.close()
    assert events[-1] == ("", "", IN_Q_OVERFLOW)
    assert len(events) == max_queued() + 1  # what the queue held, then the overflow


def test_the_reader_empties_the_queue_while_nobody_takes(tmp_path):
    """The loop may be busy for seconds (a cold start); the kernel's queue
    must not fill meanwhile."""
    watcher = Inotify()
    woken = threading.Event()
    reader = Reader(watcher, woken.set)
    try:
        watcher.watch(str(tmp_path))
        reader.start()
        touch_alternately(tmp_path, 3 * max_queued(), pause_every=1000)
        woken.wait(5)
        held = []
        while len(held) < 3 * max_queued() + 4 and woken.wait(5):
            woken.clear()
            held += reader.take()
    finally:
        reader.stop()
        watcher.close()
    assert ("", "", IN_Q_OVERFLOW) not in held
    assert len(held) >= 3 * max_queued()


def test_the_reader_holds_a_bounded_number_of_events_then_one_overflow(tmp_path):
    watcher = Inotify()
    woken = threading.Event()
    reader = Reader(watcher, woken.set, held_max=50)
    try:
        watcher.watch(str(tmp_path))
        reader.start()
        touch_alternately(tmp_path, 200)
        for _ in range(100):  # until the reader has seen all 202
            woken.wait(5)
            woken.clear()
            if reader._held and reader._held[0][2] == IN_Q_OVERFLOW:
                break
        held = reader.take()
    finally:
        reader.stop()
        watcher.close()
    assert held[0] == ("", "", IN_Q_OVERFLOW) and len(held) <= 50


def test_an_overflow_means_every_file_and_namespace_and_is_logged(tmp_path, logs):
    state = tmp_path / "state"
    state.mkdir()
    log = vpnd_log.get()
    watcher = Inotify()
    try:
        one = (str(state), "one.json", 0x80)
        router = (netns.NETNS_DIR, "qrouter-r9", 0x100)
        assert classify([one, router], str(state), watcher, log) == (
            {str(state / "one.json")}, {"qrouter-r9"})
        assert classify([one, ("", "", IN_Q_OVERFLOW), one], str(state), watcher, log) == \
            (None, None)
    finally:
        watcher.close()
    [line] = [json.loads(x) for x in logs.getvalue().splitlines() if "overflowed" in x]
    assert line["level"] == "warning" and "every state file" in line["meaning"]
