"""The daemon configuration (vpnd.yaml): load, default and validate.

The key names are a public contract. Unknown keys and bad values are errors
at start, each naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import ipaddress
import os
import pwd

import yaml

from .errors import ConfigError

DEFAULT_PATH = "/etc/vpnd/vpnd.yaml"

CHARON_MODES = ("spawn", "systemd", "external")


@dataclass(frozen=True)
class CharonConfig:
    mode: str = "spawn"
    libipsec: bool = False
    sockets: dict = field(default_factory=dict)
    # A charon vpnd runs that has not answered for this long is restarted.
    restart_unanswering_after: float = 30.0


@dataclass(frozen=True)
class MetricsConfig:
    # "ADDRESS:PORT" to serve Prometheus metrics on (off: None); loopback
    # is what it is meant for: a scraper on the node, or a pod's sidecar.
    listen: str | None = None
    # A node_exporter textfile collector path (*.prom), written atomically.
    textfile: str | None = None


@dataclass(frozen=True)
class Config:
    state_dir: str = "/etc/vpnd/state.d"
    run_dir: str = "/run/vpnd"
    data_dir: str = "/var/lib/vpnd"
    resync_interval: float = 30
    # charon's events drive status; this poll (read-only) corrects anything missed.
    status_interval: float = 10
    log_format: str = "auto"  # auto | console | json | journal
    log_level: str = "info"
    # A state file larger than this is refused unread.
    state_file_max_bytes: int = 1 << 20
    # Files the state dir may hold; more are not read (an error says so).
    # Twice the node the manifests are sized for (deploy/sizing.json).
    state_files_max: int = 20_000
    # A uid that may own state files and the state dir besides root (and
    # the user vpnd runs as): in the config a user name or a number.
    state_owner: int | None = None
    charon: CharonConfig = field(default_factory=CharonConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def status_file(self) -> str:
        return f"{self.run_dir}/status.json"


_LOG_FORMATS = ("auto", "console", "json", "journal")
_LOG_LEVELS = ("debug", "info", "warning", "error")


def load(path: str) -> Config:
    """Read a config file; a missing default file means all defaults."""
    if path == DEFAULT_PATH and not os.path.exists(path):
        return Config()
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return parse(data if data is not None else {}, path)


def _metrics(metrics, fail) -> MetricsConfig:
    if not isinstance(metrics, dict):
        fail("metrics", "must be a mapping")
    for key in metrics:
        if key not in ("listen", "textfile"):
            fail(f"metrics.{key}", "unknown key (known: listen, textfile)")
    listen = metrics.get("listen")
    if listen is not None:
        host, _, port = str(listen).rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            ok = isinstance(listen, str) and 1 <= int(port) <= 65535
        except ValueError:
            ok = False
        if not ok:
            fail("metrics.listen", f"must be ADDRESS:PORT (127.0.0.1:9576, [::1]:9576), "
                                   f"not {listen!r}")
    textfile = metrics.get("textfile")
    if textfile is not None and not (isinstance(textfile, str) and textfile.startswith("/")
                                     and textfile.endswith(".prom")):
        fail("metrics.textfile", f"must be an absolute path ending in .prom, not {textfile!r}")
    return MetricsConfig(listen=listen, textfile=textfile)


def _uid(owner, fail) -> int:
    if isinstance(owner, int) and not isinstance(owner, bool) and 0 <= owner < 2**32 - 1:
        return owner
    if isinstance(owner, str) and owner:
        try:
            return pwd.getpwnam(owner).pw_uid
        except KeyError:
            fail(f"no such user {owner!r}")
    fail(f"must be a user name or a uid, not {owner!r}")


def parse(data, path: str = "<config>") -> Config:
    def fail(key, message):
        raise ConfigError(f"{path}: {key}: {message}")

    if not isinstance(data, dict):
        fail("(top level)", "must be a mapping of keys to values")
    defaults = Config()
    known = {"state_dir", "run_dir", "data_dir", "resync_interval", "status_interval",
             "log_format", "log_level", "state_file_max_bytes", "state_files_max",
             "state_owner", "charon",
             "metrics"}
    for key in data:
        if key not in known:
            fail(key, f"unknown key (known: {', '.join(sorted(known))})")

    values = {}
    for key in ("state_dir", "run_dir", "data_dir"):
        value = data.get(key, getattr(defaults, key))
        if not isinstance(value, str) or not value.startswith("/"):
            fail(key, f"must be an absolute path, not {value!r}")
        values[key] = value.rstrip("/") or "/"
    for key in ("resync_interval", "status_interval"):
        value = data.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            fail(key, f"must be a positive number of seconds, not {value!r}")
        values[key] = value
    limit = data.get("state_file_max_bytes", defaults.state_file_max_bytes)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1024 <= limit <= 1 << 30:
        fail("state_file_max_bytes", f"must be a number of bytes from 1024 to 1 GiB, "
                                     f"not {limit!r}")
    values["state_file_max_bytes"] = limit
    count = data.get("state_files_max", defaults.state_files_max)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000_000:
        fail("state_files_max", f"must be a number of files from 1 to 10,000,000, "
                                f"not {count!r}")
    values["state_files_max"] = count
    owner = data.get("state_owner")
    if owner is not None:
        values["state_owner"] = _uid(owner, lambda m: fail("state_owner", m))
    for key, allowed in (("log_format", _LOG_FORMATS), ("log_level", _LOG_LEVELS)):
        value = data.get(key, getattr(defaults, key))
        if value not in allowed:
            fail(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        values[key] = value

    values["metrics"] = _metrics(data.get("metrics") or {}, fail)

    charon = data.get("charon", {}) or {}
    if not isinstance(charon, dict):
        fail("charon", "must be a mapping")
    charon_keys = ("libipsec", "mode", "restart_unanswering_after", "sockets")
    for key in charon:
        if key not in charon_keys:
            fail(f"charon.{key}", f"unknown key (known: {', '.join(charon_keys)})")
    restart_after = charon.get("restart_unanswering_after", 30.0)
    if isinstance(restart_after, bool) or not isinstance(restart_after, (int, float)) \
            or not 1 <= restart_after <= 3600:
        fail("charon.restart_unanswering_after",
             f"must be a number of seconds from 1 to 3600, not {restart_after!r}")
    mode = charon.get("mode", "spawn")
    if mode not in CHARON_MODES:
        fail("charon.mode", f"must be one of {', '.join(CHARON_MODES)}, not {mode!r}")
    libipsec = charon.get("libipsec", False)
    if not isinstance(libipsec, bool):
        fail("charon.libipsec", f"must be true or false, not {libipsec!r}")
    sockets = charon.get("sockets", {}) or {}
    if not isinstance(sockets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.startswith("/")
            for k, v in sockets.items()):
        fail("charon.sockets", "must map namespace names to absolute socket paths")
    if mode == "external" and not sockets:
        fail("charon.sockets", "external mode needs at least one namespace socket")
    if mode == "systemd" and values["run_dir"] != "/run/vpnd":
        fail("run_dir", "must be /run/vpnd with charon.mode systemd "
                        "(vpnd-charon@.service reads its strongswan.conf there)")
    values["charon"] = CharonConfig(mode=mode, libipsec=libipsec, sockets=dict(sockets),
                                    restart_unanswering_after=restart_after)
    return Config(**values)
