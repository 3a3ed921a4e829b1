"""vpnd's own netlink address dump, and sockets made in a namespace: they
say what `ip` says, never create a namespace, and leave the calling thread
where it was."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess

from conftest import require_system
from vpnd.system import addresses, netns


def ip_addresses(ns: str) -> frozenset[str]:
    out = subprocess.run(["ip", "-n", ns, "-j", "addr", "show"], capture_output=True,
                         text=True, check=True).stdout
    return frozenset(a["local"] for link in json.loads(out) for a in link.get("addr_info", []))


def test_the_address_dump_says_what_ip_says_and_never_makes_a_namespace():
    require_system()
    ns = f"vtaddr{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        batch = ["link set lo up", "addr add 192.0.2.9/32 dev lo",
                 "addr add 2001:db8::9/128 dev lo",
                 *(f"addr add 198.18.{i // 250}.{i % 250 + 1}/32 dev lo" for i in range(600))]
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(batch) + "\n",
                       text=True, check=True)
        own = os.readlink("/proc/thread-self/ns/net")
        found = addresses.read(ns)
        assert found == ip_addresses(ns) and len(found) == 604  # several dump messages
        assert os.readlink("/proc/thread-self/ns/net") == own  # back where it was
        gone = f"vtgone{secrets.token_hex(3)}"
        try:
            addresses.read(gone)
            raise AssertionError("read a namespace that does not exist")
        except FileNotFoundError:
            pass
        assert not os.path.exists(os.path.join(netns.NETNS_DIR, gone))
        with netns.socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("192.0.2.9", 0))  # an address only that namespace has
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
