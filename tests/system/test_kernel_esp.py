"""The kernel's part, asked of the real kernel: a node that cannot carry
ESP says so, by name, with the fix.

Each test first asks the kernel itself (an XFRM state in a namespace of
the test's own) whether it has ESP, and expects vpnd to say the same: on
this project's machines it has not (CONFIG_INET_ESP off), on others the
same tests check that a kernel with ESP is not blamed.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import connection, require_system, service
from lab.factory import write_service
from lab.kernel import kernel_has_esp
from lab.testbed import wait_for
from vpnd.observe.reasons import KERNEL_REFUSED, NO_PROPOSAL

PSK = "kernel-esp-psk-5d2"


@pytest.fixture
def state_with_one_connection(vpnd_factory):
    def make(name, **config):
        v = vpnd_factory(name, **config)
        a = SimpleNamespace(gw="vk-gw-a", wan4="203.0.113.1", lan4="192.0.2.0/24")
        b = SimpleNamespace(gw="vk-gw-b", wan4="203.0.113.2", lan4="198.51.100.0/24")
        svc = service("svc-k", a, [connection("c1", a, b, PSK)])
        write_service(v.state_dir, "svc-k.json", svc)
        return v
    return make


def test_doctor_names_a_kernel_without_esp_and_the_fix(state_with_one_connection):
    require_system()
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing")
    v = state_with_one_connection("kx", charon={"libipsec": False})
    result = v.cli("doctor")
    if kernel_has_esp():
        assert "kernel carries ESP" in result.stdout, result.stdout
        return
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  kernel has no ESP over IPv4 (xfrm: cbc(aes), hmac(sha256): Requested " \
           "type not found): load esp4, or set charon.libipsec: true" in result.stdout
    assert "NOT READY" in result.stderr
    assert PSK not in result.stdout + result.stderr


def test_with_libipsec_doctor_checks_the_tun_device_not_the_kernels_esp(
        state_with_one_connection):
    require_system()
    v = state_with_one_connection("kl")
    result = v.cli("doctor")
    assert "ok    charon.libipsec: ESP in charon, over /dev/net/tun" in result.stdout
    assert "kernel has no ESP" not in result.stdout
    # The router namespace is not there: said, not failed.
    assert "warn  namespace vk-gw-a does not exist (yet)" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def two_sites(lab, vpnd_factory, libipsec: bool):
    ends = []
    for side, me, peer in (("a", lab.a, lab.b), ("b", lab.b, lab.a)):
        v = vpnd_factory(side, charon={"libipsec": libipsec})
        v.write("svc.json", service(f"svc-{side}", me, [connection("c1", me, peer, PSK)]))
        v.start()
        ends.append(v)
    return ends


def test_without_libipsec_on_a_kernel_without_esp_the_reason_names_the_kernel(
        lab, vpnd_factory):
    if kernel_has_esp():
        pytest.skip("this kernel carries ESP: the failure cannot be brought about here")
    a, b = two_sites(lab, vpnd_factory, libipsec=False)
    # Both kernels refuse (one machine). The side that tried to install the
    # CHILD_SA names its kernel, and what its peer answers after (a DELETE,
    # NO_PROPOSAL_CHOSEN) does not hide that; a side that only initiated
    # hears NO_PROPOSAL_CHOSEN from the refusing peer and says what it can
    # honestly say: no proposal chosen, or the peer's kernel.
    def settled():
        got = [(v.conn_status(sid, "c1") or {}).get("reason", "")
               for v, sid in ((a, "svc-a"), (b, "svc-b"))]
        if all(r in (KERNEL_REFUSED, NO_PROPOSAL) for r in got) and KERNEL_REFUSED in got:
            return got
        return None
    reasons_seen = wait_for(settled, 60, what="the kernel named as the cause")
    assert all("kernel" in r for r in reasons_seen)
    # vpnd asked the kernel itself when the charon's session began: the
    # charon as a whole is wrong, in status.json and first in `vpnd status`.
    for v, gw in ((a, lab.a.gw), (b, lab.b.gw)):
        charon = wait_for(lambda: (v.status_document() or {}).get("charons", {}).get(gw), 30,
                          what=f"{gw}'s charon in status.json")
        assert charon == {"status": "ERROR", "reason": "kernel has no ESP over IPv4 (xfrm: "
                          "cbc(aes), hmac(sha256): Requested type not found): load esp4, "
                          "or set charon.libipsec: true"}
        table = v.cli("status").stdout.splitlines()
        assert table[1].split()[:3] == ["(charon)", "-", gw], table
        assert "kernel has no ESP over IPv4" in table[1]
    # And doctor, on the same node and files, names it and says NOT READY.
    doctor = a.cli("doctor")
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "FAIL  kernel has no ESP over IPv4" in doctor.stdout
    # The IKE_SA is up: it is the CHILD_SA the kernel refused.
    assert a.conn_status("svc-a", "c1")["ike_sa"]["state"] == "ESTABLISHED"
    assert not lab.ping(lab.a.host, lab.b.host4, count=1, timeout=1)
    assert PSK not in a.log_path.read_text() + b.log_path.read_text()


def test_the_same_two_sites_with_libipsec_pass_traffic(lab, vpnd_factory):
    a, b = two_sites(lab, vpnd_factory, libipsec=True)
    a.wait_conn("svc-a", "c1", "ACTIVE", timeout=60)
    wait_for(lambda: lab.ping(lab.a.host, lab.b.host4), 30, what="ping A to B through ESP")
    # The TUN device was there: nothing wrong with either charon.
    assert a.status_document()["charons"] == {} and b.status_document()["charons"] == {}


def test_a_probe_that_may_not_make_a_namespace_is_not_checked_not_no_esp():
    # The install's question (scripts/install), asked without the right to
    # `unshare --net` (nobody): the kernel was never asked, and exit 2,
    # not 1, keeps charon.libipsec off on a kernel that may well carry ESP.
    require_system()
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "vpnd.drivers.kernel_esp"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("kernel ESP not checked: unshare:"), done.stdout
    # As root the kernel is asked, and answers for itself.
    asked = subprocess.run([sys.executable, "-m", "vpnd.drivers.kernel_esp"],
                           cwd=Path(__file__).resolve().parents[2], capture_output=True,
                           text=True, timeout=60)
    assert asked.returncode == (0 if kernel_has_esp() else 1), asked.stdout + asked.stderr
