"""Shared test helpers: a vpnd process per gateway, state-file builders."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess

import pytest

from vpnd.drivers.charon_process import CHARON
from lab.factory import site_connection as connection  # noqa: F401 - for the tests
from lab.factory import site_service as service  # noqa: F401
from lab.testbed import TwoSites, VpndProcess, wait_steady

# tests/neutron needs neutron-vpnaas, which only .venv-neutron has
# (scripts/setup-neutron; scripts/test runs it there). Looked up, not
# imported: neutron must be imported first of all (`-p neutron`), before
# oslo.service picks its backend.
collect_ignore = [] if importlib.util.find_spec("neutron_vpnaas") else ["neutron"]


# scripts/faults sets this: where each fault case's figures and outcome go.
FIGURES = os.environ.get("VPND_FAULT_FIGURES")


def _record(entry: dict) -> None:
    if FIGURES:
        with open(FIGURES, "a") as f:
            f.write(json.dumps(entry) + "\n")


@pytest.fixture
def figure(request):
    """figure(what, value): a measured figure of a fault case, printed (see
    it with -s) and, under scripts/faults, reported."""
    def record(what: str, value) -> None:
        print(f"\n{what}: {value}")
        _record({"test": request.node.nodeid, "what": what, "value": value})
    return record


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome == "failed":
        _record({"test": report.nodeid, "outcome": report.outcome,
                 "seconds": round(report.duration, 1)})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/system/" in str(item.fspath):
            item.add_marker(pytest.mark.system)


def require_system():
    """System tests need root and charon; say so instead of skipping quietly."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    if not os.access(CHARON, os.X_OK):
        missing.append(f"{CHARON} (apt: charon-systemd)")
    if not shutil.which("ip"):
        missing.append("ip (apt: iproute2)")
    if missing:
        pytest.fail("system test needs: " + ", ".join(missing) + "; run `make test`")


def sa_shape(v: VpndProcess, ns: str) -> dict[str, tuple[int, int]]:
    """connection -> (IKE_SAs, installed CHILD_SAs) in one charon."""
    return _shape(v.vici(ns).live_state().sas)


def _shape(sas) -> dict[str, tuple[int, int]]:
    shape: dict[str, tuple[int, int]] = {}
    for sa in sas:
        ikes, children = shape.get(sa.name, (0, 0))
        shape[sa.name] = (ikes + 1, children + sum(c.state == "INSTALLED" for c in sa.children))
    return shape


def wait_converged(ends: list[tuple[VpndProcess, str]], names, timeout: float = 60,
                   stable: float = 1.0) -> None:
    """Until, at every end (vpnd, namespace) at once, each connection has
    exactly one IKE_SA, ESTABLISHED, and one installed CHILD_SA, for
    `stable` seconds.

    An end that initiated before its peer listened keeps a CONNECTING
    IKE_SA and retransmits (seconds apart, for up to the DPD budget);
    when it lands it makes a duplicate that vpnd then ends, replacing the
    SA a test may hold. Only with no initiation pending at either end is
    the tunnel settled."""
    want = {name: (1, 1) for name in names}

    def settled():
        for v, ns in ends:
            sas = v.vici(ns).live_state().sas
            if _shape(sas) != want or any(sa.state != "ESTABLISHED" for sa in sas):
                return False
        return True
    wait_steady(settled, stable, timeout,
                what=f"one ESTABLISHED IKE_SA and one CHILD_SA each for {sorted(want)} at "
                     f"{[ns for _, ns in ends]}")


@pytest.fixture
def lab():
    require_system()
    with TwoSites() as sites:
        yield sites


@pytest.fixture
def vpnd_factory(tmp_path):
    made: list[VpndProcess] = []

    def make(name: str, **config) -> VpndProcess:
        v = VpndProcess(tmp_path / name, **config)
        made.append(v)
        return v

    yield make
    for v in made:
        v.cleanup()


def one_tunnel(lab, vpnd_factory, psk: str, **a_config) -> tuple[VpndProcess, VpndProcess]:
    """A vpnd at each gateway with connection c1 between them, up and
    settled; `a_config`: settings of gw-a's vpnd."""
    a, b = vpnd_factory("a", **a_config), vpnd_factory("b")
    for v, me, peer, side in ((a, lab.a, lab.b, "a"), (b, lab.b, lab.a, "b")):
        v.write("svc.json", service(f"svc-{side}", me, [connection("c1", me, peer, psk)]))
        v.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])
    return a, b


# --- a local attacker's targets (issue 20) -----------------------------------

VICTIM = b"root's precious file: must stay as it is\n"


@pytest.fixture
def victim(tmp_path):
    """A file outside vpnd's dirs that planted links point at."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "victim"
    path.write_bytes(VICTIM)
    return path


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


@pytest.fixture
def logs():
    """vpnd's log as JSON lines into a buffer the test reads."""
    import io

    import structlog

    from vpnd.system import log
    stream = io.StringIO()
    log.setup("json", "info", stream=stream)
    yield stream
    structlog.reset_defaults()


@pytest.fixture
def sleeper():
    """`sleep 1000` processes of the test's own (they die of any signal
    they are sent), killed at the end."""
    from lab.testbed import wait_for
    from vpnd.system import processes
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        p = subprocess.Popen(["sleep", "1000"])
        procs.append(p)
        # Popen may return before the child has exec()ed sleep, and exec
        # points /proc/<pid>/exe at sleep before it sets the arguments that
        # /proc/<pid>/cmdline reads: wait for both.
        wait_for(lambda: processes.runs(p.pid, "/usr/bin/sleep") and _cmdline(p.pid)
                 .startswith(b"sleep\0"), 10, 0.01, what="sleep")
        return p
    yield start
    for p in procs:
        p.kill()
        p.wait()
