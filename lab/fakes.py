"""Stand-ins the unit tests share: a clock the test sets, and drivers
that do nothing (QuietDriver), hold what charon would (HoldingDriver) or
record the order of their calls (RecordingDriver) instead of talking to
charon; the real driver is tested against real charons in tests/system."""
from __future__ import annotations

from lab.factory import many_service, write_service
from vpnd.base.live import EMPTY, LiveState
from vpnd.drivers.base import Driver
from vpnd.drivers.strongswan_mapping import render
from vpnd.plan.actions import LoadConn, LoadShared, UnloadConn, UnloadShared


class Clock:
    """A clock for code that takes one: it says what the test sets."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class QuietDriver(Driver):
    """A driver that does nothing and has nothing: the base of the fakes,
    each of which overrides what its tests look at."""

    def render(self, conn):
        return render(conn, True)

    def unsupported(self, namespace, conn):
        return None

    def configure(self, namespace, conns):
        pass

    def ensure_running(self, namespace):
        pass

    def live_state(self, namespace, start=True):
        return EMPTY

    def sas_of(self, namespace, names):
        return ()

    def execute(self, namespace, action):
        pass

    def watch(self, namespace, callback, wait=0.0):
        pass

    def watching(self, namespaces):
        return True

    def writes(self):
        return 0

    def close(self):
        pass


class HoldingDriver(QuietDriver):
    """Holds what charon would: the connections and secrets the actions
    load and unload, read back as the live state (no SAs)."""

    def __init__(self):
        self.conns: set[str] = set()
        self.shared: set[str] = set()

    def live_state(self, namespace, start=True):
        return LiveState(frozenset(self.conns), frozenset(self.shared), ())

    def hold(self, action) -> None:
        match action:
            case LoadConn():
                self.conns.add(action.name)
            case LoadShared():
                self.shared.add(action.secret_id)
            case UnloadConn():
                self.conns.discard(action.name)
            case UnloadShared():
                self.shared.discard(action.secret_id)

    def execute(self, namespace, action):
        self.hold(action)


class RecordingDriver(QuietDriver):
    """Records the order of its calls (the loop's order tests)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.running: set[str] = set()

    def configure(self, namespace, conns):
        self.calls.append(("configure", namespace))

    def ensure_running(self, namespace):
        self.running.add(namespace)

    def start(self, namespace):
        self.calls.append(("start", namespace))

    def live_state(self, namespace, start=True):
        if start and namespace not in self.running:
            self.calls.append(("wait-started", namespace))
            self.running.add(namespace)
        return EMPTY

    def execute(self, namespace, action):
        self.calls.append(("execute", namespace, action.describe()))

    def apply_many(self, namespace, pairs):
        for _ in pairs:
            self.calls.append(("load", namespace))
            yield None

    def watch(self, namespace, callback, wait=0.0):
        self.calls.append(("watch", namespace, wait))


def service_file(directory, namespace: str, n: int, initiator="response-only") -> None:
    write_service(directory, f"{namespace}.json", many_service(namespace, n, initiator))
