"""The kernel's part of a tunnel, as vpnd asks for it (pure parts; the
real kernel is asked in tests/system/test_kernel_esp.py)."""
from __future__ import annotations

import subprocess

import pytest

from lab.factory import connection_doc, parsed, service_doc
from vpnd.drivers import kernel_esp
from vpnd.state import neutron


@pytest.mark.parametrize("encryption", neutron.ENCRYPTION_ALGORITHMS)
@pytest.mark.parametrize("auth", neutron.AUTH_ALGORITHMS)
def test_every_neutron_pair_has_its_kernel_names(encryption, auth):
    algs = kernel_esp.xfrm_algorithms(encryption, auth)
    if "-gcm-" in encryption or "-ccm-" in encryption:
        assert algs.args[0] == "aead" and len(algs.names) == 1
    else:
        assert algs.args[0] == "enc" and algs.args[3] == "auth-trunc"
        assert algs.names[1] == algs.args[4]


def test_an_aead_cipher_carries_its_icv_and_no_integrity():
    gcm = kernel_esp.xfrm_algorithms("aes-256-gcm-12", "sha512")
    assert gcm.args == ("aead", "rfc4106(gcm(aes))", "0x" + "01" * 36, "96")
    ccm = kernel_esp.xfrm_algorithms("aes-128-ccm-8", "sha1")
    assert ccm.args[1:] == ("rfc4309(ccm(aes))", "0x" + "01" * 19, "64")


def test_key_lengths_are_what_the_kernel_wants():
    def key_bytes(arg):
        return (len(arg) - 2) // 2
    assert key_bytes(kernel_esp.xfrm_algorithms("aes-256", "sha256").args[2]) == 32
    assert key_bytes(kernel_esp.xfrm_algorithms("3des", "sha1").args[2]) == 24
    # GCM's key carries a 4-byte salt, CCM's 3, CTR's a 4-byte nonce.
    assert key_bytes(kernel_esp.xfrm_algorithms("aes-128-gcm-16", "sha1").args[2]) == 20
    assert key_bytes(kernel_esp.xfrm_algorithms("aes-128-ccm-8", "sha1").args[2]) == 19
    assert key_bytes(kernel_esp.xfrm_algorithms("aes-192-ctr", "sha1").args[2]) == 28
    sha512 = kernel_esp.xfrm_algorithms("aes-128", "sha512")
    assert sha512.args[4:] == ("hmac(sha512)", "0x" + "01" * 64, "256")


def test_the_state_is_esp_in_tunnel_mode_with_udp_encapsulation_at_documentation_addresses():
    cmd = kernel_esp.state_add(kernel_esp.xfrm_algorithms("aes-128", "sha256"), 6, 0x101)
    text = " ".join(cmd)
    assert "proto esp" in text and "mode tunnel" in text and "encap espinudp 4500 4500" in text
    assert "src 2001:db8::1 dst 2001:db8::2" in text


class Kernel:
    """A stand-in for `unshare --net ip xfrm state add` that refuses as told."""

    def __init__(self, refuse):
        self.refuse, self.calls = refuse, []

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)
        err = self.refuse(" ".join(cmd))
        return subprocess.CompletedProcess(cmd, 2 if err else 0, "", err or "")


def test_no_esp_at_all_is_one_finding_a_family_naming_the_module_and_libipsec():
    # This machine's kernel: ESP itself missing, and AEAD states refused
    # as an unknown algorithm (which must not be blamed on the algorithm).
    kernel = Kernel(lambda c: "Error: Requested AEAD algorithm not found.\n" if "aead" in c
                    else "Error: Requested type not found.\n")
    problems = kernel_esp.probe([("aes-128-gcm-16", "sha1"), ("aes-256", "sha256")], [4, 6],
                                run=kernel)
    assert problems == [
        "kernel has no ESP over IPv4 (xfrm: cbc(aes), hmac(sha256): Requested type not "
        "found): load esp4, or set charon.libipsec: true",
        "kernel has no ESP over IPv6 (xfrm: cbc(aes), hmac(sha256): Requested type not "
        "found): load esp6, or set charon.libipsec: true"]
    assert len(kernel.calls) == 2 and all(c[:3] == [kernel_esp.UNSHARE, "--net", "--"]
                                          for c in kernel.calls)


def test_one_missing_algorithm_is_named_and_the_others_pass():
    kernel = Kernel(lambda c: "Error: Requested AEAD algorithm not found.\n"
                    if "rfc4309" in c else None)
    problems = kernel_esp.probe([("aes-128-ccm-16", "sha1"), ("aes-256", "sha512"),
                                 ("aes-128-gcm-16", "sha1")], [4], run=kernel)
    assert problems == ["kernel refuses ESP with rfc4309(ccm(aes)) over IPv4 (Requested AEAD "
                        "algorithm not found): load its crypto module, choose another "
                        "algorithm, or set charon.libipsec: true"]
    assert len(kernel.calls) == 4  # the baseline, then each pair once


def test_a_probe_that_cannot_run_says_so_once_a_family():
    def cannot(cmd, **kw):
        raise OSError(2, "No such file or directory")
    [problem] = kernel_esp.probe([("aes-256", "sha256"), ("aes-128-gcm-16", "sha1")], [4],
                                 run=cannot)
    assert problem.startswith("kernel ESP not checked:")


def test_unshare_refused_is_not_checked_not_a_kernel_without_esp():
    # `unshare --net` without CAP_SYS_ADMIN: the kernel was never asked.
    kernel = Kernel(lambda c: "unshare: unshare failed: Operation not permitted\n")
    [problem] = kernel_esp.probe([("aes-256", "sha256")], [4], run=kernel)
    assert problem == "kernel ESP not checked: unshare: unshare failed: Operation not permitted"


@pytest.mark.parametrize("problems, code", [
    ([], 0),
    (["kernel has no ESP over IPv4 (xfrm: cbc(aes)): load esp4, or set charon.libipsec: true"], 1),
    (["kernel ESP not checked: unshare: unshare failed: Operation not permitted"], 2)])
def test_the_command_tells_no_esp_from_not_asked(monkeypatch, capsys, problems, code):
    # scripts/install turns charon.libipsec on for 1 only.
    monkeypatch.setattr(kernel_esp, "probe", lambda pairs, families: problems)
    assert kernel_esp.main() == code
    assert capsys.readouterr().out == "".join(f"{p}\n" for p in problems)


def test_the_baseline_pair_is_tried_once():
    kernel = Kernel(lambda c: None)
    kernel_esp.probe([kernel_esp.BASELINE, ("aes-256", "sha512")], [4], run=kernel)
    assert len(kernel.calls) == 2


def test_a_kernel_that_takes_them_all_has_no_problem():
    assert kernel_esp.probe([("aes-256", "sha256")], [4, 6], run=Kernel(lambda c: None)) == []


def test_what_the_state_files_need_is_read_from_admin_up_connections():
    v6 = service_doc("s6", external_ip="2001:db8::1", conns=[connection_doc(
        "c1", "psk-one-1", peer_address="2001:db8::9", peer_id="2001:db8::9",
        local_cidrs=["2001:db8:1::/64"], peer_cidrs=["2001:db8:2::/64"],
        ipsecpolicy={"encryption_algorithm": "aes-256", "auth_algorithm": "sha512"})])
    down = service_doc("s4", conns=[connection_doc(
        "c2", "psk-two-2", admin_state_up=False, ipsecpolicy={"encryption_algorithm": "3des"})])
    services = [parsed(d) for d in (v6, down)]
    assert kernel_esp.needs(services) == ({("aes-256", "sha512")}, {6})


class _Client:
    sessions = 1


class _Clients:
    def __init__(self):
        self.spawner, self.client = object(), _Client()

    def of(self, namespace):
        return self.client


def test_the_driver_asks_the_host_kernel_once_and_a_refusal_again_at_a_later_session(
        monkeypatch):
    from vpnd.drivers import strongswan_reader
    from vpnd.drivers.strongswan_reader import RECHECK_REFUSED, Reader
    asked, now = [], [1000.0]
    answer = ["kernel has no ESP over IPv4 (...)"]
    monkeypatch.setattr(kernel_esp, "probe", lambda pairs, families: asked.append(
        (set(pairs), set(families))) or list(answer))
    monkeypatch.setattr(strongswan_reader.time, "monotonic", lambda: now[0])
    monkeypatch.setattr("os.geteuid", lambda: 0)
    clients = _Clients()
    reader = Reader(clients, libipsec=False)
    conns = [parsed(service_doc()).connections[0]]
    assert reader.kernel_problem("ns1", conns) == answer[0]
    assert reader.kernel_problem("ns1", conns) == answer[0]
    assert reader.kernel_problem("ns2", conns) == answer[0]  # the same host kernel
    assert len(asked) == 1
    clients.client.sessions = 2  # charon restarted at once: not asked again yet
    reader.kernel_problem("ns1", conns)
    assert len(asked) == 1
    now[0] += RECHECK_REFUSED + 1
    clients.client.sessions = 3  # restarted later, perhaps after `modprobe esp4`
    answer.clear()
    assert reader.kernel_problem("ns1", conns) is None and len(asked) == 2
    now[0] += RECHECK_REFUSED + 1
    clients.client.sessions = 4  # a kernel that took them is not asked again
    reader.kernel_problem("ns1", conns)
    assert len(asked) == 2
    reader.kernel_problem("ns1", [])  # the algorithms in use changed
    assert len(asked) == 3 and asked[-1] == (set(), {4})


def test_with_libipsec_the_driver_asks_for_the_tun_device(monkeypatch):
    from vpnd.drivers.strongswan_reader import Reader
    monkeypatch.setattr(kernel_esp, "probe", lambda *a: pytest.fail("ESP probed with libipsec"))
    monkeypatch.setattr(kernel_esp, "tun_problem", lambda: "/dev/net/tun cannot be opened")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert Reader(_Clients(), libipsec=True).kernel_problem("ns1", []) == \
        "/dev/net/tun cannot be opened"


def test_an_external_charon_or_a_non_root_vpnd_is_not_probed(monkeypatch):
    from vpnd.drivers.strongswan_reader import Reader
    monkeypatch.setattr(kernel_esp, "probe", lambda *a: pytest.fail("probed"))
    clients = _Clients()
    clients.spawner = None
    assert Reader(clients, libipsec=False).kernel_problem("ns1", []) is None
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert Reader(_Clients(), libipsec=False).kernel_problem("ns1", []) is None


def test_a_scoped_look_gets_the_namespaces_last_answer_without_a_probe(monkeypatch):
    from vpnd.drivers.strongswan_reader import Reader
    asked = []
    monkeypatch.setattr(kernel_esp, "probe", lambda p, f: asked.append(1) or ["no ESP"])
    monkeypatch.setattr("os.geteuid", lambda: 0)
    clients = _Clients()
    reader = Reader(clients, libipsec=False)
    assert reader.kernel_problem("ns1") is None  # nothing asked yet this session
    reader.kernel_problem("ns1", [parsed(service_doc()).connections[0]])
    assert reader.kernel_problem("ns1") == "no ESP" and len(asked) == 1
    # A session made again (a timeout, a restarted charon): the host's
    # kernel is what it was, and a known problem is not cleared by it.
    clients.client.sessions = 2
    assert reader.kernel_problem("ns1") == "no ESP" and len(asked) == 1
