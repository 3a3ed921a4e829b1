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

from vpnd.base.errors import ConfigError

DEFAULT_PATH = "/etc/vpnd/vpnd.yaml"



@dataclass(frozen=True)
class Key:
    """One key vpnd.yaml accepts. The parser takes the keys it knows, their
    defaults and their choices from KEYS, and vpnd.yaml(5) and
    docs/configuration.md are written from it: a key cannot be accepted
    without being documented."""
    name: str  # below a section, dotted: "charon.mode"
    type: str  # what a value must be, as a reader is told
    default: object  # None: unset
    meaning: str  # one line; `code` in backquotes
    choices: tuple[str, ...] = ()


KEYS = (
    Key("state_dir", "absolute path", "/etc/vpnd/state.d",
        "`*.json` desired-state files, one VPN service each"),
    Key("run_dir", "absolute path", "/run/vpnd",
        "per-namespace charon config, sockets, logs; `status.json`"),
    Key("data_dir", "absolute path", "/var/lib/vpnd",
        "what vpnd applied (`applied.json`, and `applied.journal`: each change as it "
        "lands, folded into applied.json once it has grown larger than it), fingerprint key"),
    Key("resync_interval", "seconds, above 0", 30, "seconds between full resyncs"),
    Key("status_interval", "seconds, above 0", 10,
        "seconds between looks at every namespace; charon's events drive status in between"),
    Key("state_file_max_bytes", "bytes, 1024 to 1 GiB", 1 << 20,
        "a larger state file is refused unread (an error naming it)"),
    # Twice the node the manifests are sized for (deploy/sizing.json).
    Key("state_files_max", "files, 1 to 10,000,000", 20_000,
        "state files read at most; more are not read (an error in the log and status "
        "says how many); the files read before keep their place"),
    Key("state_owner", "user name or uid", None,
        "a user, besides root and vpnd's own user, who may own state files and the state dir"),
    Key("log_format", "word", "auto",
        "`auto`: the journal under journald, console on a terminal, else JSON",
        ("auto", "console", "json", "journal")),
    Key("log_level", "word", "info", "the least severe log lines written",
        ("debug", "info", "warning", "error")),
    Key("charon.mode", "word", "spawn",
        "`spawn`: vpnd runs a charon per namespace; `systemd`: as "
        "`vpnd-charon@<ns>.service` units (needs `run_dir: /run/vpnd`); "
        "`external`: someone else does", ("spawn", "systemd", "external")),
    Key("charon.libipsec", "true or false", False,
        "load kernel-libipsec (userspace ESP) for kernels without ESP"),
    Key("charon.sockets", "mapping of namespace to absolute path", {},
        "external mode: namespace name -> VICI socket path"),
    Key("charon.restart_unanswering_after", "seconds, 1 to 3600", 30.0,
        "seconds a charon vpnd runs may miss every call's deadline (10 s each) before "
        "vpnd kills it and starts a fresh one"),
    # Loopback is what it is meant for: a scraper on the node, or a pod's sidecar.
    Key("metrics.listen", "ADDRESS:PORT", None,
        "serve Prometheus metrics there (`127.0.0.1:9576`, `[::1]:9576`); meant for "
        "loopback: vpnd warns when it is not; unset: off"),
    Key("metrics.textfile", "absolute path ending in .prom", None,
        "a path for node_exporter's textfile collector, rewritten atomically with each "
        "status; unset: off"),
)
KEY = {k.name: k for k in KEYS}
CHARON_MODES = KEY["charon.mode"].choices


def section_keys(section: str = "") -> list[str]:
    """The keys KEYS gives a section ("" for the top level: sections
    included), read at each call so that the table alone decides."""
    if not section:
        return sorted({k.name.split(".")[0] for k in KEYS})
    prefix = section + "."
    return sorted(k.name[len(prefix):] for k in KEYS if k.name.startswith(prefix))


@dataclass(frozen=True)
class CharonConfig:
    mode: str = KEY["charon.mode"].default
    libipsec: bool = KEY["charon.libipsec"].default
    sockets: dict = field(default_factory=dict)
    # A charon vpnd runs that has not answered for this long is restarted.
    restart_unanswering_after: float = KEY["charon.restart_unanswering_after"].default


@dataclass(frozen=True)
class MetricsConfig:
    listen: str | None = KEY["metrics.listen"].default
    textfile: str | None = KEY["metrics.textfile"].default


@dataclass(frozen=True)
class Config:
    # Each default, and what the key means, is in KEYS above.
    state_dir: str = KEY["state_dir"].default
    run_dir: str = KEY["run_dir"].default
    data_dir: str = KEY["data_dir"].default
    resync_interval: float = KEY["resync_interval"].default
    status_interval: float = KEY["status_interval"].default
    log_format: str = KEY["log_format"].default
    log_level: str = KEY["log_level"].default
    state_file_max_bytes: int = KEY["state_file_max_bytes"].default
    state_files_max: int = KEY["state_files_max"].default
    # In the config a user name or a number; here the uid.
    state_owner: int | None = KEY["state_owner"].default
    charon: CharonConfig = field(default_factory=CharonConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def status_file(self) -> str:
        return f"{self.run_dir}/status.json"


_LOG_FORMATS = KEY["log_format"].choices
_LOG_LEVELS = KEY["log_level"].choices


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


def _section(name: str, value, fail) -> None:
    """A nested section (metrics:, charon:) is a mapping of known keys."""
    if not isinstance(value, dict):
        fail(name, "must be a mapping")
    known = section_keys(name)
    for key in value:
        if key not in known:
            fail(f"{name}.{key}", f"unknown key (known: {', '.join(known)})")


def _metrics(metrics, fail) -> MetricsConfig:
    _section("metrics", metrics, fail)
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
    known = section_keys()
    for key in data:
        if key not in known:
            fail(key, f"unknown key (known: {', '.join(known)})")

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

    values["charon"] = _charon(data.get("charon", {}) or {}, values["run_dir"], fail)
    return Config(**values)


def _charon(charon, run_dir: str, fail) -> CharonConfig:
    """The `charon:` section."""
    _section("charon", charon, fail)
    restart_after = charon.get("restart_unanswering_after",
                               KEY["charon.restart_unanswering_after"].default)
    if isinstance(restart_after, bool) or not isinstance(restart_after, (int, float)) \
            or not 1 <= restart_after <= 3600:
        fail("charon.restart_unanswering_after",
             f"must be a number of seconds from 1 to 3600, not {restart_after!r}")
    mode = charon.get("mode", KEY["charon.mode"].default)
    if mode not in CHARON_MODES:
        fail("charon.mode", f"must be one of {', '.join(CHARON_MODES)}, not {mode!r}")
    libipsec = charon.get("libipsec", KEY["charon.libipsec"].default)
    if not isinstance(libipsec, bool):
        fail("charon.libipsec", f"must be true or false, not {libipsec!r}")
    sockets = charon.get("sockets", {}) or {}
    if not isinstance(sockets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.startswith("/")
            for k, v in sockets.items()):
        fail("charon.sockets", "must map namespace names to absolute socket paths")
    if mode == "external" and not sockets:
        fail("charon.sockets", "external mode needs at least one namespace socket")
    if mode == "systemd" and run_dir != "/run/vpnd":
        fail("run_dir", "must be /run/vpnd with charon.mode systemd "
                        "(vpnd-charon@.service reads its strongswan.conf there)")
    return CharonConfig(mode=mode, libipsec=libipsec, sockets=dict(sockets),
                        restart_unanswering_after=restart_after)
