"""The driver's state files: one a VPN service, in vpnd's state dir.

A file holds the agent's payload for the service as it came (vpnd reads
Neutron's payload as it is), plus the router's `namespace`: the payload
names none, and only the agent knows whether it is qrouter-, snat- (DVR)
or qvpn- (OVN). The driver's files are named `neutron-<service id>.json`;
it removes no other file, so an operator's own files in the same state
dir stay as they are.
"""
from __future__ import annotations

import json
import os
import re

from vpnd.system import files

PREFIX = "neutron-"
_OURS = re.compile(r"^neutron-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.json$")
MODE = 0o600  # PSKs: vpnd refuses a state file others may write, and nobody else reads it


def file_name(service_id: str) -> str | None:
    """The file of a service, or None for an id that is not a UUID (Neutron's
    ids are; anything else is not ours to name a file after)."""
    name = f"{PREFIX}{service_id}.json"
    return name if _OURS.match(name) else None


def service_of(name: str) -> str | None:
    """The service id a file name says is the driver's, else None."""
    m = _OURS.match(name)
    return m.group(1) if m else None


def render(payload: dict, namespace: str) -> bytes:
    """The file's bytes: stable for the same payload (keys sorted), so an
    agent's full sync finds them equal and writes nothing."""
    return (json.dumps({**payload, "namespace": namespace}, sort_keys=True, indent=1)
            + "\n").encode()


class StateFiles:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir

    def path(self, service_id: str) -> str | None:
        name = file_name(service_id)
        return None if name is None else os.path.join(self.state_dir, name)

    def write(self, payload: dict, namespace: str) -> bool:
        """Write a service's file unless it already holds these bytes;
        True if written. Atomic (vpnd never reads half of one) and 0600."""
        path = self.path(str(payload.get("id")))
        if path is None:
            raise ValueError(f"vpnservice id {payload.get('id')!r} is not a UUID")
        data = render(payload, namespace)
        try:
            if files.read_own(path) == data:
                return False
        except FileNotFoundError:
            pass
        except OSError:
            pass  # not ours or unreadable: replaced below (rename, not write-through)
        files.write_atomically(path, data, mode=MODE)
        return True

    def remove(self, service_id: str) -> bool:
        path = self.path(service_id)
        if path is None:
            return False
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False

    def present(self) -> set[str]:
        """The services whose files the driver wrote, now in the state dir."""
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return set()
        return {sid for n in names if (sid := service_of(n)) is not None}
