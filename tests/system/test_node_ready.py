"""A node has what vpnd needs, and says so when it does not.

The packages the table names really ship the plugins and programs; a
charon started the way vpnd starts one loads every plugin it is asked for;
and a charon that cannot reach one plugin (its .so hidden by a bind mount
in a mount namespace of the test's own: nothing on the host changes) is
reported with the plugin's name and the package to install, in the log,
in status and by `vpnd doctor`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import connection, require_system, service
from vpnd.drivers import charon_plugins
from lab.testbed import wait_for

PSK = "node-ready-psk-8c1"


def owner(path: str) -> str:
    result = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    assert result.returncode == 0, f"no package ships {path}: {result.stderr}"
    return result.stdout.split(":")[0]


def test_each_plugin_and_program_comes_from_the_package_the_table_names():
    require_system()
    for plugin in charon_plugins.PLUGINS:
        path = f"{charon_plugins.PLUGIN_DIR}/libstrongswan-{plugin.name}.so"
        assert owner(path) == plugin.package, plugin.name
    for path, package in charon_plugins.BINARIES.items():
        assert owner(path) == package, path


def test_doctor_says_this_node_is_ready(vpnd_factory):
    require_system()
    v = vpnd_factory("doc")
    result = v.cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "a trial charon started and loaded every plugin it was asked for" in result.stdout
    assert not [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                            text=True).stdout.split() if "vpnd-doctor" in ns]


@pytest.fixture
def without_plugin(tmp_path):
    """A command prefix that runs a program in a mount namespace of its own
    where charon's plugin directory lacks one plugin."""
    def make(name: str) -> tuple[str, ...]:
        copy = tmp_path / f"plugins-without-{name}"
        shutil.copytree(charon_plugins.PLUGIN_DIR, copy, symlinks=True)
        (copy / f"libstrongswan-{name}.so").unlink()
        return ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" "$1" && shift && exec "$@"',
                str(copy), charon_plugins.PLUGIN_DIR)
    return make


def log_events(v, event: str) -> list[dict]:
    lines = [json.loads(line) for line in v.log_path.read_text().splitlines()
             if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def test_a_charon_without_one_plugin_names_it_and_its_package(lab, vpnd_factory,
                                                              without_plugin):
    wrap = without_plugin("cmac")
    a, b = vpnd_factory("a"), vpnd_factory("b")
    a.write("svc.json", service("svc-a", lab.a, [
        connection("c1", lab.a, lab.b, PSK),
        connection("cmac", lab.a, lab.b, PSK, local_cidrs=["192.0.2.64/26"],
                   ipsecpolicy={"auth_algorithm": "aes-cmac"})]))
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)]))
    a.start(wrap=wrap), b.start()
    want = ("charon did not load plugin cmac "
            "(install the Debian package libstrongswan-extra-plugins)")
    # The connection that needs it says why, naming the cause ...
    cmac = a.wait_conn("svc-a", "cmac", "ERROR", timeout=30)
    assert "aes-cmac (AES_CMAC_96)" in cmac["reason"] and want in cmac["reason"]
    # ... the rest of the service works ...
    a.wait_conn("svc-a", "c1", timeout=60)
    assert lab.ping(lab.a.host, lab.b.host4, count=2)
    # ... and the charon as a whole is reported, in status and in the log, once.
    assert a.status_document()["charons"] == {lab.a.gw: {"status": "ERROR", "reason": want}}
    table = a.cli("status").stdout
    assert f"(charon)  -           {lab.a.gw}" in table and want in table
    assert a.cli("reload").returncode == 0  # another full pass: nothing new to say
    [logged] = log_events(a, "charon incomplete")
    assert logged["netns"] == lab.a.gw and logged["error"] == want
    # The readiness check finds it too, and says the node is not ready.
    doctor = a.cli("doctor", wrap=wrap)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert ("plugin cmac (auth_algorithm aes-cmac) is not in /usr/lib/ipsec/plugins "
            "(install the Debian package libstrongswan-extra-plugins)") in doctor.stdout
    assert f"FAIL  charon in {lab.a.gw}: {want}" in doctor.stdout
    # Nothing of this reached the host's plugin directory.
    assert os.path.exists(f"{charon_plugins.PLUGIN_DIR}/libstrongswan-cmac.so")


def test_a_charon_that_cannot_start_without_a_plugin_says_which(lab, vpnd_factory,
                                                                 without_plugin):
    # Without openssl charon has no SHA-1 and refuses to start at all:
    # only its own log says why, and vpnd reads it from there.
    a = vpnd_factory("a")
    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)]))
    a.start(wrap=without_plugin("openssl"))
    want = ("charon did not load plugin openssl "
            "(install the Debian package libstrongswan-standard-plugins)")
    c1 = a.wait_conn("svc-a", "c1", "DOWN", reason=want, timeout=30)
    assert c1["reason"].startswith(f"charon not running: charon for namespace {lab.a.gw} "
                                   "exited at start")
    charon = wait_for(lambda: (a.status_document() or {}).get("charons", {}).get(lab.a.gw),
                      15, what="the charon's problem in status")
    assert charon["status"] == "ERROR" and want in charon["reason"]
    # vpnd tries again, backing off; it says so once, not at every try.
    wait_for(lambda: a.charon_log(lab.a.gw).count("plugin 'openssl': failed to load") >= 3,
             30, what="three tries to start charon")
    assert len(log_events(a, "charon unavailable")) == 1
