"""A charon started the way an operator would, not by vpnd: its own
strongswan.conf and plugin list, optionally a swanctl.conf loaded with
swanctl (the peer vpnd never touches, in the independent-peer and HA
tests)."""
from __future__ import annotations

import os
import subprocess
import textwrap

from lab.testbed import wait_for
from vpnd.drivers.charon_process import CHARON
from vpnd.drivers.vici_client import ViciClient

HAND_PLUGINS = ("random nonce openssl pem pkcs1 x509 pubkey drbg kdf sha1 sha2 hmac aes gcm "
                "kernel-libipsec kernel-netlink socket-default vici")


def start_charon(ns: str, d, swanctl_conf: str | None = None, load: str = HAND_PLUGINS):
    """A charon started the way an operator would, not by vpnd: its own
    strongswan.conf and plugin list, optionally a swanctl.conf loaded with
    swanctl."""
    d.mkdir()
    sock = d / "charon.vici"
    (d / "strongswan.conf").write_text(textwrap.dedent(f"""\
        charon-systemd {{
            load = {load}
            plugins {{
                vici {{
                    socket = unix://{sock}
                }}
            }}
        }}
        """))
    env = {**os.environ, "STRONGSWAN_CONF": str(d / "strongswan.conf")}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen(["ip", "netns", "exec", ns, CHARON], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answers():
            try:
                ViciClient(str(sock), timeout=2).version()
                return True
            except Exception:
                return False
        wait_for(answers, 20, what=f"hand-started charon in {ns}")
        if swanctl_conf is not None:
            (d / "swanctl.conf").write_text(swanctl_conf)
            subprocess.run(["swanctl", "--load-all", "--file", str(d / "swanctl.conf"),
                            "--uri", f"unix://{sock}"], check=True, capture_output=True)
    except BaseException:
        proc.terminate()
        proc.wait(15)
        raise
    return proc, sock
