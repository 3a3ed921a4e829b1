"""vpnd.yaml: defaults, and errors that name the key."""
from __future__ import annotations

import pytest

from vpnd.base.config import Config, load, parse
from vpnd.base.errors import ConfigError


def test_defaults():
    c = parse({})
    assert (c.state_dir, c.run_dir, c.data_dir, c.resync_interval) == \
        ("/etc/vpnd/state.d", "/run/vpnd", "/var/lib/vpnd", 30)
    assert (c.charon.mode, c.charon.libipsec, c.charon.sockets) == ("spawn", False, {})


def test_the_shipped_default_file_parses(tmp_path):
    import pathlib
    shipped = pathlib.Path(__file__).resolve().parents[3] / "conf" / "vpnd.yaml"
    assert load(str(shipped)) == Config()


@pytest.mark.parametrize("data, key", [
    ({"statedir": "/x"}, "statedir: unknown key"),
    ({"state_dir": "relative"}, "state_dir: must be an absolute path"),
    ({"resync_interval": 0}, "resync_interval: must be a positive number"),
    ({"resync_interval": "often"}, "resync_interval: must be a positive number"),
    ({"charon": {"mode": "fork"}}, "charon.mode: must be one of spawn, systemd, external"),
    ({"charon": {"libipsec": "yes"}}, "charon.libipsec: must be true or false"),
    ({"charon": {"socket": {}}}, "charon.socket: unknown key"),
    ({"charon": {"mode": "external"}}, "charon.sockets: external mode needs"),
    ({"charon": {"mode": "external", "sockets": {"ns": "rel"}}}, "charon.sockets: must map"),
    ([], "(top level): must be a mapping"),
    ({"state_owner": "no-such-user-x1"}, "state_owner: no such user 'no-such-user-x1'"),
    ({"state_owner": -1}, "state_owner: must be a user name or a uid"),
    ({"metrics": {"listen": "localhost:9576"}}, "metrics.listen: must be ADDRESS:PORT"),
    ({"metrics": {"listen": "127.0.0.1:99999"}}, "metrics.listen: must be ADDRESS:PORT"),
    ({"metrics": {"textfile": "vpnd.txt"}}, "metrics.textfile: must be an absolute path"),
    ({"metrics": {"port": 1}}, "metrics.port: unknown key"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=r"^f\.yaml: " + key.replace("(", r"\(").replace(")", r"\)")):
        parse(data, "f.yaml")


def test_metrics_are_off_unless_asked_for():
    assert parse({}).metrics.listen is None and parse({}).metrics.textfile is None
    on = parse({"metrics": {"listen": "[::1]:9576", "textfile": "/var/lib/node/vpnd.prom"}})
    assert (on.metrics.listen, on.metrics.textfile) == ("[::1]:9576", "/var/lib/node/vpnd.prom")


def test_state_owner_is_a_user_name_or_a_uid():
    assert parse({"state_owner": "nobody"}).state_owner == 65534
    assert parse({"state_owner": 1234}).state_owner == 1234
    assert parse({}).state_owner is None


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("a: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(str(tmp_path / "bad.yaml"))


def test_systemd_mode_needs_the_run_dir_its_unit_reads():
    with pytest.raises(ConfigError, match="run_dir: must be /run/vpnd with charon.mode systemd"):
        parse({"run_dir": "/run/other", "charon": {"mode": "systemd"}}, "f.yaml")
    assert parse({"charon": {"mode": "systemd"}}).charon.mode == "systemd"


def test_unit_names_are_escaped_as_systemd_escape_does():
    import shutil
    import subprocess
    from vpnd.drivers.charon_units import unit_name
    assert unit_name("qrouter-r1") == "vpnd-charon@qrouter\\x2dr1.service"
    if shutil.which("systemd-escape"):
        for ns in ("qrouter-8f3b", "ns_1.a", ".hidden"):
            escaped = subprocess.run(["systemd-escape", "--template=vpnd-charon@.service", ns],
                                     capture_output=True, text=True).stdout.strip()
            assert unit_name(ns) == escaped
