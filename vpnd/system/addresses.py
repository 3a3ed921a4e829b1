"""The addresses in a network namespace, read with one netlink dump.

Written out (an RTM_GETADDR dump is 30 lines of struct) rather than with
pyroute2: its event loop cost 5 ms a read, and a node with 500 routers
reads every router's addresses at every full look."""
from __future__ import annotations

import ipaddress
import socket
import struct

from vpnd.system import netns

NETLINK_ROUTE = 0
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_ATTR = struct.Struct("=HH")  # rtattr: len, type


def read(namespace: str) -> frozenset[str]:
    """Every address on every link of the namespace (OSError if it is gone)."""
    with netns.socket_in(namespace, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.settimeout(5.0)
        sock.bind((0, 0))
        request = _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        sock.send(_HEADER.pack(_HEADER.size + len(request), RTM_GETADDR,
                               NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + request)
        found = set()
        while True:
            data = sock.recv(1 << 16)
            for kind, payload in _messages(data):
                if kind == NLMSG_DONE:
                    return frozenset(found)
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, f"netlink address dump in {namespace} failed")
                elif kind == RTM_NEWADDR:
                    found.update(_addresses(payload))


def _messages(data: bytes):
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, data[offset + _HEADER.size:offset + length]
        offset += (length + 3) & ~3


def _addresses(payload: bytes) -> set[str]:
    family = payload[0]
    size = 4 if family == socket.AF_INET else 16 if family == socket.AF_INET6 else 0
    attrs, offset = {}, _IFADDR.size
    while offset + _ATTR.size <= len(payload):
        length, kind = _ATTR.unpack_from(payload, offset)
        if length < _ATTR.size:
            break
        attrs[kind] = payload[offset + _ATTR.size:offset + length]
        offset += (length + 3) & ~3
    value = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if not size or value is None or len(value) != size:
        return set()
    return {str(ipaddress.ip_address(value))}
