"""Named network namespaces, as `ip netns` keeps them."""
from __future__ import annotations

import ctypes
import functools
import os
import socket

NETNS_DIR = "/run/netns"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


# sched.h: setns() of a network namespace.
CLONE_NEWNET = 0x40000000


def socket_in(name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside namespace `name`. A socket keeps the
    namespace it was made in, so this thread enters the namespace for just
    that moment (setns is per thread) and comes back: a few microseconds,
    where pyroute2's netns= forks a helper process (17 ms a call, 9 s for
    500 routers). Never creates the namespace: one that is gone is an
    OSError (ENOENT)."""
    libc = _libc()
    target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {name}: {os.strerror(err)}")
            try:
                return socket.socket(family, kind, proto)
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:
                    # This thread would go on in the wrong namespace, and an
                    # exception would end only this call: end vpnd (its
                    # supervisor starts it again), never act from there.
                    err = ctypes.get_errno()
                    os.write(2, f"vpnd: cannot return from namespace {name}: "
                                f"{os.strerror(err)}\n".encode())
                    os._exit(70)
        finally:
            os.close(own)
    finally:
        os.close(target)


@functools.cache
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def iproute(name: str):
    """pyroute2's IPRoute on a netlink socket made in namespace `name`
    (socket_in): never forks, never creates the namespace."""
    from pyroute2 import IPRoute
    from pyroute2.netlink import NETLINK_ROUTE
    return IPRoute(use_socket=socket_in(name, socket.AF_NETLINK, socket.SOCK_DGRAM,
                                        NETLINK_ROUTE))
