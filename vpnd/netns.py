"""Named network namespaces, as `ip netns` keeps them."""
from __future__ import annotations

import os

NETNS_DIR = "/run/netns"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))
