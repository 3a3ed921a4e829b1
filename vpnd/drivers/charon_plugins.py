"""Which charon plugins vpnd loads, why, and which Debian package ships each.

Pure. This table is the one place a plugin enters charon's `load =` list:
strongswan.conf is written from it, `scripts/install-packages` must name
every package in it (a unit test holds it to that), and a running charon's
VICI `stats` answer is compared with it (`missing`), so a plugin that is
asked for but absent is reported by name and package instead of surfacing
as a puzzling algorithm error on every connection.

A plugin is here only when something vpnd does needs it. One provider per
need: openssl covers AES, 3DES, SHA-1/2, HMAC, AES-GCM/CCM and every
Diffie-Hellman group Neutron names, so the builtin aes, sha1, sha2, hmac,
gcm and gmp plugins would only duplicate it. vpnd authenticates with PSKs
(no pem, pkcs1, x509, pubkey) and sets no updown script (no updown).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Where Debian's charon looks for plugins (compiled in; no setting moves it).
PLUGIN_DIR = "/usr/lib/ipsec/plugins"


@dataclass(frozen=True)
class Plugin:
    name: str
    package: str  # the Debian 12 package that ships libstrongswan-<name>.so
    why: str
    libipsec_only: bool = False


# Order matters to charon: kernel-libipsec must come before kernel-netlink.
PLUGINS: tuple[Plugin, ...] = (
    Plugin("random", "libstrongswan", "random numbers for keys and SPIs"),
    Plugin("nonce", "libstrongswan", "IKE nonces"),
    Plugin("openssl", "libstrongswan-standard-plugins",
           "AES (CBC, CTR, GCM, CCM), 3DES, SHA-1/2, HMAC and all DH groups group2-group31"),
    Plugin("kdf", "libstrongswan", "prf+ key derivation for the AES-XCBC and AES-CMAC PRFs"),
    Plugin("xcbc", "libstrongswan", "auth_algorithm aes-xcbc"),
    Plugin("cmac", "libstrongswan-extra-plugins", "auth_algorithm aes-cmac"),
    Plugin("kernel-libipsec", "libcharon-extra-plugins",
           "userspace ESP (charon.libipsec: true)", libipsec_only=True),
    Plugin("kernel-netlink", "libstrongswan", "addresses, routes and kernel IPsec"),
    Plugin("socket-default", "strongswan-libcharon", "the IKE sockets (UDP 500/4500)"),
    Plugin("vici", "strongswan-swanctl", "the VICI socket vpnd talks to"),
)

BY_NAME = {p.name: p for p in PLUGINS}

# The programs vpnd runs, and their packages.
BINARIES = {
    "/usr/sbin/charon-systemd": "charon-systemd",
    "/bin/ip": "iproute2",
}


def wanted(libipsec: bool) -> tuple[Plugin, ...]:
    """The plugins a charon for this configuration is asked to load."""
    return tuple(p for p in PLUGINS if libipsec or not p.libipsec_only)


def load_list(libipsec: bool) -> str:
    """strongswan.conf's `load =` value."""
    return " ".join(p.name for p in wanted(libipsec))


def packages() -> list[str]:
    """Every Debian package vpnd needs at run time, sorted."""
    return sorted({p.package for p in PLUGINS} | set(BINARIES.values()))


def missing(asked: str, loaded) -> tuple[Plugin, ...]:
    """The plugins of a `load =` list that charon did not load (`loaded`:
    the names in its VICI `stats` answer)."""
    loaded = set(loaded)
    return tuple(BY_NAME.get(name, Plugin(name, "unknown", ""))
                 for name in asked.split() if name not in loaded)


def describe(plugins, on_disk=frozenset()) -> str:
    """One line an operator can act on: what is missing, and what to
    install, or (for plugins `on_disk` now) that this charon predates them."""
    names = ", ".join(p.name for p in plugins)
    text = f"charon did not load plugin{'s' if len(plugins) > 1 else ''} {names}"
    install = sorted({p.package for p in plugins
                      if p.package != "unknown" and p.name not in on_disk})
    hints = []
    if install:
        hints.append(f"install the Debian package{'s' if len(install) > 1 else ''} "
                     f"{', '.join(install)}")
    if any(p.name in on_disk for p in plugins):
        hints.append("restart this charon: it started before the plugin was installed")
    return f"{text} ({'; '.join(hints)})" if hints else text


# charon logs, at start: plugin 'openssl': failed to load - ...
_FAILED = re.compile(r"plugin '([\w-]+)': failed to load")


def failed_in_log(text: str) -> tuple[Plugin, ...]:
    """The plugins charon's log says it failed to load, in order, once each.
    A charon that lacks one its core needs (a SHA-1 hasher, say) exits at
    start, so this is the only place the cause can be read then."""
    names = dict.fromkeys(_FAILED.findall(text))
    return tuple(BY_NAME.get(name, Plugin(name, "unknown", "")) for name in names)
