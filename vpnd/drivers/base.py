"""The driver interface: what the reconciler needs from an IKE daemon."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from vpnd.base.live import LiveState
from vpnd.base.model import Connection
from vpnd.plan.actions import Action


class Driver(ABC):
    """One IKE daemon per network namespace, reached by namespace name."""

    @abstractmethod
    def render(self, conn: Connection):
        """The daemon's configuration for a connection (pure); raises
        an Unsupported error with a reason when it cannot be done."""

    @abstractmethod
    def unsupported(self, namespace: str, conn: Connection) -> str | None:
        """Why this namespace's running daemon cannot carry the connection
        (an algorithm no plugin provides), or None."""

    def charon_problem(self, namespace: str) -> str | None:
        """What is wrong with the namespace's running daemon as a whole
        (strongSwan: plugins it was asked for and did not load), or None."""
        return None

    def kernel_problem(self, namespace: str, conns=None) -> str | None:
        """What the kernel lacks for the namespace's daemon to install the
        CHILD_SAs of `conns` (no ESP for their algorithms), or None;
        without `conns`, the last answer for the running daemon."""
        return None

    def restart(self, namespace: str) -> bool:
        """Restart the namespace's daemon if vpnd runs it (it stopped
        answering); False when vpnd does not run it."""
        return False

    @abstractmethod
    def configure(self, namespace: str, conns) -> None:
        """Daemon-wide settings that follow from a namespace's connections
        (strongSwan: retransmission, which bounds DPD). Writes only on change."""

    @abstractmethod
    def ensure_running(self, namespace: str) -> None:
        """Make sure the namespace's daemon answers (start it if vpnd runs
        daemons); raises DriverUnavailable otherwise."""

    @abstractmethod
    def live_state(self, namespace: str, start: bool = True) -> LiveState:
        """What the daemon has loaded and established (read-only)."""

    def start(self, namespace: str) -> None:
        """Start the daemon for `namespace` if it runs nowhere, without
        waiting for it: a pass that needs several starts them together
        (live_state(start=True) then waits). Optional."""

    @abstractmethod
    def sas_of(self, namespace: str, names) -> tuple:
        """The SAs of these connections only (cheaper than live_state)."""

    @abstractmethod
    def execute(self, namespace: str, action: Action) -> None:
        """Perform one planned action; raises DriverError."""

    @abstractmethod
    def watch(self, namespace: str, callback, wait: float = 0.0) -> None:
        """Deliver the daemon's events (SA up/down, rekeys, log lines) to
        callback(namespace, label, event), from another thread; with
        `wait`, return once events flow (or that many seconds passed)."""

    def apply_many(self, namespace: str, steps) -> Iterator[str | None]:
        """Apply many steps' actions, in order; one error (or None) per
        step, as each is done. Drivers that can pipeline do better than
        this (and then a step's later actions are sent even when an
        earlier one failed: the step is not recorded, and the next look
        plans it again)."""
        for step in steps:
            try:
                for action in step.actions:
                    self.execute(namespace, action)
                yield None
            except Exception as e:  # noqa: BLE001 - reported per connection
                yield str(e)

    def mute_log(self, namespace: str, muted: bool) -> None:
        """Stop (or restart) the daemon's log events to vpnd while a large
        batch is applied, if they cost the daemon; optional."""

    @abstractmethod
    def watching(self, namespaces) -> bool:
        """Whether the event sessions of these namespaces are alive."""

    @abstractmethod
    def writes(self) -> int:
        """How many state-changing commands have been sent, in total."""

    @abstractmethod
    def close(self) -> None:
        """Drop connections; leaves daemons and tunnels running."""
