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
from types import SimpleNamespace

import pytest

from conftest import connection, require_system, service
from lab.factory import write_service

PSK = "kernel-esp-psk-5d2"


def kernel_has_esp() -> bool:
    done = subprocess.run(
        ["unshare", "--net", "--", "ip", "xfrm", "state", "add", "src", "192.0.2.1",
         "dst", "192.0.2.2", "proto", "esp", "spi", "0x200", "mode", "tunnel",
         "enc", "cbc(aes)", "0x" + "02" * 16, "auth-trunc", "hmac(sha256)",
         "0x" + "02" * 32, "128"], capture_output=True, text=True, timeout=10)
    return done.returncode == 0


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
