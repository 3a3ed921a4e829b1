"""The plugin table: what charon is asked to load, and what a user must
install for it. The install script is held to the table here, so a plugin
added without its package fails this test, not a new user's demo."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from vpnd.drivers import charon_plugins
from vpnd.drivers.charon_plugins import BY_NAME, describe, failed_in_log, load_list, missing
from vpnd.drivers.charon_conf import strongswan_conf

ROOT = Path(__file__).resolve().parents[3]


def installed_by_script() -> set[str]:
    text = (ROOT / "scripts" / "install-packages").read_text()
    lists = re.findall(r'^(?:PACKAGES|TEST_PACKAGES)="([^"]*)"', text, re.M)
    assert lists, "scripts/install-packages has no PACKAGES= line"
    return {p for line in lists for p in line.split()}


def test_install_script_installs_every_package_the_table_names():
    assert set(charon_plugins.packages()) <= installed_by_script()


def test_strongswan_conf_loads_exactly_the_table():
    conf = strongswan_conf(Path("/x/charon.vici"), Path("/x/charon.log"), libipsec=True)
    [load] = re.findall(r"^\s*load = (.*)$", conf, re.M)
    assert load == load_list(True)
    assert load.split() == [p.name for p in charon_plugins.PLUGINS]


@pytest.mark.parametrize("libipsec", [True, False])
def test_kernel_libipsec_only_when_asked_and_before_kernel_netlink(libipsec):
    names = load_list(libipsec).split()
    assert ("kernel-libipsec" in names) is libipsec
    if libipsec:
        assert names.index("kernel-libipsec") < names.index("kernel-netlink")


def test_missing_names_each_plugin_not_loaded_in_the_order_asked():
    gone = missing("random nonce openssl xcbc vici", ["charon-systemd", "random", "nonce", "vici"])
    assert [p.name for p in gone] == ["openssl", "xcbc"]
    assert missing("random vici", ["random", "vici", "extra"]) == ()


@pytest.mark.parametrize("plugins, on_disk, text", [
    (["openssl"], set(),
     "charon did not load plugin openssl "
     "(install the Debian package libstrongswan-standard-plugins)"),
    (["openssl", "cmac", "kdf"], set(),
     "charon did not load plugins openssl, cmac, kdf (install the Debian packages "
     "libstrongswan, libstrongswan-extra-plugins, libstrongswan-standard-plugins)"),
    (["cmac"], {"cmac"},
     "charon did not load plugin cmac "
     "(restart this charon: it started before the plugin was installed)"),
])
def test_describe_names_plugin_and_package(plugins, on_disk, text):
    assert describe([BY_NAME[p] for p in plugins], on_disk) == text


def test_a_plugin_vpnd_does_not_know_is_named_without_a_package():
    [gone] = missing("no-such-plugin", [])
    assert describe([gone]) == "charon did not load plugin no-such-plugin"


def test_failed_plugins_are_read_from_charons_start_up_log():
    log = """\
2026-11-26T06:57:53 00[LIB] plugin 'openssl': failed to load - openssl_plugin_create not found and no plugin file available
2026-11-26T06:57:53 00[LIB] created TUN device: ipsec0
2026-11-26T06:57:53 00[LIB] feature CUSTOM:libcharon-sa-managers in critical plugin 'charon-systemd' has unmet dependency: HASHER:HASH_SHA1
2026-11-26T06:57:53 00[LIB] plugin 'cmac': failed to load - cmac_plugin_create not found and no plugin file available
2026-11-26T06:57:53 00[LIB] plugin 'openssl': failed to load - again
"""
    assert [p.name for p in failed_in_log(log)] == ["openssl", "cmac"]
    assert failed_in_log("00[LIB] loaded plugins: charon-systemd random nonce") == ()
