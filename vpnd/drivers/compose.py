"""The one place where `charon.mode` becomes an implementation."""
from __future__ import annotations

from vpnd.base.config import Config
from vpnd.drivers.charon_instances import CharonInstances
from vpnd.drivers.charon_process import CharonSpawner
from vpnd.drivers.charon_units import CharonUnits
from vpnd.drivers.strongswan import StrongswanDriver


def charon_instances(config: Config) -> CharonInstances | None:
    """What runs the charons: vpnd itself (spawn), systemd units, or
    nobody vpnd knows (external: None)."""
    kind = {"spawn": CharonSpawner, "systemd": CharonUnits}.get(config.charon.mode)
    return kind(config.run_dir, config.charon.libipsec) if kind else None


def driver(config: Config, timeout: float = 10.0) -> StrongswanDriver:
    return StrongswanDriver(charon_instances(config), config.charon.libipsec,
                            config.charon.sockets, timeout)
