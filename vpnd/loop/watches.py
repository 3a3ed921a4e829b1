"""What the loop watches for changes: the state directory (and its parent,
so that a state dir removed and made again is watched again at once) and
/run/netns, through inotify and a reader thread that empties the kernel's
queue as events come. `classify` turns raw events into what to look at
again. Here so that the loop itself only asks "what changed?".
"""
from __future__ import annotations

import os

from vpnd.state.statefiles import is_state_file
from vpnd.system import netns
from vpnd.system.inotify import IN_Q_OVERFLOW, Inotify, Reader

# kubelet's atomic writer (ConfigMap, Secret volumes): each visible file is
# a link into `..data/`, itself a link to a timestamped directory; an update
# writes a new directory, points `..data_tmp` at it and renames that over
# `..data`. That rename (IN_MOVED_TO "..data") is the moment to read: the
# new directory is complete by then, so a half-written one is never read.
KUBERNETES_DATA = "..data"


class Watches:
    def __init__(self, state_dir: str, wake, log):
        self.state_dir = state_dir
        self.log = log
        self.inotify = Inotify()
        self.reader = Reader(self.inotify, wake)
        self.netns_watched = False

    @property
    def fd(self) -> int:
        return self.inotify.fd

    def start(self) -> None:
        """Watch, then start the reader: from then on, what is written
        during the first round (seconds at 10,000 files) is held for the
        loop, not lost in the kernel."""
        self.inotify.watch(self.state_dir)
        self.inotify.watch(os.path.dirname(self.state_dir) or "/")
        self.watch_netns()
        self.reader.start()

    def watch_netns(self) -> None:
        """Watch /run/netns, once it exists (it may come later)."""
        if not self.netns_watched and os.path.isdir(netns.NETNS_DIR):
            self.inotify.watch(netns.NETNS_DIR)
            self.netns_watched = True

    def take(self, readable) -> list[tuple[str, str, int]]:
        """What the reader holds (it wakes the loop), then what is pending
        now (`readable`: the fds select() found ready): a loop that was
        idle reads a change itself, with no hand-over between threads.
        The order between the two does not matter: an event only says
        "look at this file again"."""
        events = self.reader.take()
        if self.fd in readable:
            events += self.inotify.read()
        return events

    def classify(self, events) -> tuple[set[str] | None, set[str] | None]:
        return classify(events, self.state_dir, self.inotify, self.log)

    def close(self) -> None:
        self.reader.stop()
        self.inotify.close()


def classify(events, state_dir: str, inotify: Inotify,
             log) -> tuple[set[str] | None, set[str] | None]:
    """(the state files that changed, the namespaces that came or went:
    each a set, maybe empty, or None for "look at all"). A state dir that
    came back is watched again."""
    state: set[str] | None = set()
    netns_: set[str] | None = set()
    for directory, name, mask in events:
        if mask & IN_Q_OVERFLOW:
            # Events were dropped (by the kernel, or past what the
            # reader holds): any file, or namespace, may have changed.
            if state is not None or netns_ is not None:
                log.warning("inotify queue overflowed",
                            meaning="events were lost: every state file and "
                                    "namespace is looked at now",
                            limit="fs.inotify.max_queued_events")
            state, netns_ = None, None
            continue
        if directory == netns.NETNS_DIR:
            if not name:
                netns_ = None  # /run/netns itself moved: any namespace may have
            elif netns_ is not None:
                netns_.add(name)
        elif directory != state_dir:  # its parent
            if os.path.join(directory, name) == state_dir:
                state = None  # the state dir came or went
                if os.path.isdir(state_dir):
                    inotify.watch(state_dir)
        elif not name or name == KUBERNETES_DATA:
            # The directory itself, or a Kubernetes volume's atomic
            # swap: every file may have changed.
            state = None
        elif is_state_file(name) and state is not None:
            state.add(os.path.join(directory, name))
    return state, netns_
