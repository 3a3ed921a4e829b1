"""Can this kernel carry ESP for the algorithms in use?

charon's kernel-netlink backend installs each CHILD_SA as XFRM states. On
a kernel without ESP (CONFIG_INET_ESP off, esp4/esp6 not loaded, common in
containers and minimal VMs) or without one algorithm's crypto module, the
IKE negotiation succeeds and only the install fails: the user is told
"no proposal chosen" by the peer, and compares algorithms for nothing. So
vpnd asks the kernel itself, as charon will: one XFRM state per algorithm
pair, ESP in tunnel mode with UDP encapsulation (which NAT-T and libipsec
use), added in a network namespace of its own (`unshare --net`, gone with
the process: nothing to clean up, nothing the node uses is touched).

With charon.libipsec ESP is charon's own (userspace, over a TUN device):
then the TUN device is what the kernel must give.

The mapping from Neutron's names to the kernel's is pure (xfrm_algorithms);
probe() runs `ip` and reads its errors.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
from dataclasses import dataclass
from typing import Callable, Iterable

from vpnd.drivers.strongswan_mapping import is_aead

TUN = "/dev/net/tun"
UNSHARE = "/usr/bin/unshare"  # util-linux: essential on Debian
IP = "/usr/sbin/ip"  # iproute2, which vpnd runs anyway

# Neutron's encryption_algorithm -> (kind, kernel name, key bytes). AEAD
# keys carry their salt (4 bytes for GCM, 3 for CCM), CTR its nonce.
_ENC = {"3des": ("cbc(des3_ede)", 24),
        **{f"aes-{k}": ("cbc(aes)", k // 8) for k in (128, 192, 256)},
        **{f"aes-{k}-ctr": ("rfc3686(ctr(aes))", k // 8 + 4) for k in (128, 192, 256)},
        **{f"aes-{k}-gcm-{icv}": ("rfc4106(gcm(aes))", k // 8 + 4)
           for k in (128, 192, 256) for icv in (8, 12, 16)},
        **{f"aes-{k}-ccm-{icv}": ("rfc4309(ccm(aes))", k // 8 + 3)
           for k in (128, 192, 256) for icv in (8, 12, 16)}}
# Neutron's auth_algorithm -> (kernel name, key bytes, truncated bits), as
# charon's kernel-netlink installs them (RFC 4868 truncation for SHA-2).
_AUTH = {"sha1": ("hmac(sha1)", 20, 96), "sha256": ("hmac(sha256)", 32, 128),
         "sha384": ("hmac(sha384)", 48, 192), "sha512": ("hmac(sha512)", 64, 256),
         "aes-xcbc": ("xcbc(aes)", 16, 96), "aes-cmac": ("cmac(aes)", 16, 96)}
# Two documentation addresses a family: the state is never used.
_ENDS = {4: ("192.0.2.1", "192.0.2.2"), 6: ("2001:db8::1", "2001:db8::2")}


@dataclass(frozen=True)
class XfrmAlgorithms:
    """The algorithm arguments of `ip xfrm state add`, and their names."""
    args: tuple[str, ...]
    names: tuple[str, ...]


def needs(services: Iterable) -> tuple[set[tuple[str, str]], set[int]]:
    """The ESP algorithm pairs (encryption, auth) and address families the
    admin-up connections of these services (vpnd.base.model.Service) ask
    the kernel for."""
    return conns_need(c for service in services if service.admin_state_up
                      for c in service.connections)


def conns_need(conns: Iterable) -> tuple[set[tuple[str, str]], set[int]]:
    """needs() of connections (vpnd.base.model.Connection). A peer given by
    name counts as IPv4 unless its local address says otherwise."""
    pairs, families, policies = set(), set(), set()
    for conn in conns:
        if not conn.admin_state_up:
            continue
        policy = conn.ipsecpolicy
        if id(policy) not in policies:  # shared objects, and few
            policies.add(id(policy))
            pairs.add((policy.encryption_algorithm, policy.auth_algorithm))
        if ":" in conn.peer_address or ":" in conn.external_ip:
            families.add(_family(conn.peer_address) or _family(conn.external_ip) or 4)
        else:
            # Only an IPv6 address has a colon: an IPv4 address, or a
            # name beside one (or beside another name), counts as IPv4.
            # Parsing 10,000 of them cost a full look 20 ms.
            families.add(4)
    return pairs, families


def _family(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def xfrm_algorithms(encryption: str, auth: str) -> XfrmAlgorithms:
    """What an ESP CHILD_SA of these (Neutron) algorithms asks the kernel
    for. An AEAD cipher carries its own integrity: `auth` is unused then."""
    name, key = _ENC[encryption]
    if is_aead(encryption):
        icv = int(encryption.rsplit("-", 1)[1]) * 8
        return XfrmAlgorithms(("aead", name, _key(key), str(icv)), (name,))
    integ, integ_key, bits = _AUTH[auth]
    return XfrmAlgorithms(("enc", name, _key(key), "auth-trunc", integ, _key(integ_key),
                           str(bits)), (name, integ))


def _key(n: int) -> str:
    return "0x" + "01" * n


def state_add(algorithms: XfrmAlgorithms, family: int, spi: int) -> list[str]:
    src, dst = _ENDS[family]
    return [IP, "xfrm", "state", "add", "src", src, "dst", dst, "proto", "esp",
            "spi", hex(spi), "reqid", "1", "mode", "tunnel",
            "encap", "espinudp", "4500", "4500", "0.0.0.0", *algorithms.args]


def explain(stderr: str, algorithms: XfrmAlgorithms, family: int) -> str:
    """The kernel's refusal, in words that name the cause and the fix."""
    why = stderr.strip().removeprefix("Error: ").rstrip(".") or "refused"
    names = ", ".join(algorithms.names)
    if "type not found" in why or "Protocol not supported" in why:
        return f"kernel has no ESP over IPv{family} (xfrm: {names}: {why}): load esp{family}, " \
               f"or set charon.libipsec: true"
    return f"kernel refuses ESP with {names} over IPv{family} ({why}): load its crypto " \
           f"module, choose another algorithm, or set charon.libipsec: true"


def probe(pairs: Iterable[tuple[str, str]], families: Iterable[int],
          run: Callable = subprocess.run) -> list[str]:
    """Each algorithm pair and address family the kernel refuses, said as
    explain() says it; [] if it takes them all. ESP itself is tried first
    with a pair every ESP kernel has: without ESP, the kernel names the
    missing algorithm of an AEAD state ("Requested AEAD algorithm not
    found") rather than the missing protocol, and one refusal of ESP
    stands for every pair."""
    problems = []
    for family in sorted(set(families)):
        baseline = _refusal(BASELINE, family, 0x100, run)
        if baseline and not baseline.startswith("kernel refuses ESP with"):
            # No ESP at all, or the probe could not run: one line says it.
            problems.append(baseline)
            continue
        others = sorted(set(pairs) - ({BASELINE} if baseline is None else set()))
        for spi, pair in enumerate(others, start=0x101):
            problem = _refusal(pair, family, spi, run)
            if problem:
                problems.append(problem)
    return problems


def problems(libipsec: bool, pairs, families) -> list[str]:
    """What the kernel lacks for charon's data plane: the TUN device with
    libipsec, else ESP for these pairs and families (IPv4 when none is in
    use yet: a node about to get its files)."""
    if libipsec:
        return [p for p in (tun_problem(),) if p]
    return probe(pairs, families or {4})


BASELINE = ("aes-128", "sha256")
NOT_CHECKED = "kernel ESP not checked"


def _refusal(pair: tuple[str, str], family: int, spi: int, run: Callable) -> str | None:
    algorithms = xfrm_algorithms(*pair)
    try:
        done = run([UNSHARE, "--net", "--", *state_add(algorithms, family, spi)],
                   capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{NOT_CHECKED}: {UNSHARE} --net {IP} xfrm failed to run ({e})"
    if done.returncode != 0 and done.stderr.startswith("unshare:"):
        # unshare itself failed (no CAP_SYS_ADMIN, no `ip` to run): the
        # kernel was never asked, so this says nothing about its ESP.
        return f"{NOT_CHECKED}: {done.stderr.strip()}"
    return None if done.returncode == 0 else explain(done.stderr, algorithms, family)


def tun_problem() -> str | None:
    """What keeps libipsec from its TUN device, or None."""
    try:
        fd = os.open(TUN, os.O_RDWR)
    except OSError as e:
        return f"{TUN} cannot be opened ({e.strerror}): charon.libipsec needs the tun " \
               f"module (modprobe tun) and the device node"
    os.close(fd)
    return None


def main() -> int:
    """`python -m vpnd.drivers.kernel_esp`: exit 0 if this kernel carries
    ESP over IPv4 (scripts/install chooses charon.libipsec by it), 1 if
    it does not, 2 if it could not be asked (no unshare, no right to
    make a namespace): an unknown is not a "no". Each says why."""
    problems = probe([BASELINE], [4])
    for problem in problems:
        print(problem)
    if any(p.startswith(NOT_CHECKED) for p in problems):
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
