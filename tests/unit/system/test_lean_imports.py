"""What vpnd's process does not load: libraries it never uses, that cost
a daemon's RSS (vpnd/cli/unused_libraries.py)."""
from __future__ import annotations

import json
import subprocess
import sys

DAEMON = ("import json, sys\n"
          "import vpnd.cli, vpnd.cli.run, vpnd.loop.daemon, vpnd.drivers.compose\n"
          "import vpnd.observe.metrics  # metrics on\n"
          "from vpnd.apply.fingerprint import Fingerprinter\n"
          "import hashlib, hmac, secrets\n"
          "f = Fingerprinter(sys.argv[1])\n"
          "fp = f({'a': 1})\n"
          "maps = open('/proc/self/maps').read()\n"
          "loaded = type(sys.modules['asyncio']).__name__ == 'module'\n"
          "import asyncio\n"
          "async def answer():\n"
          "    return 42\n"
          "print(json.dumps({'asyncio': loaded, 'ssl': 'ssl' in sys.modules,\n"
          "                  'prometheus_client': 'prometheus_client' in sys.modules,\n"
          "                  'libcrypto': 'libcrypto' in maps, 'libssl': 'libssl' in maps,\n"
          "                  'fp': fp, 'key': open(f.path, 'rb').read().hex(),\n"
          "                  'asyncio works': asyncio.run(answer())}))\n")


def test_the_daemon_loads_no_openssl_nor_asyncio_until_asked(tmp_path):
    done = subprocess.run([sys.executable, "-c", DAEMON, str(tmp_path)],
                          capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert not (seen["asyncio"] or seen["ssl"] or seen["libcrypto"] or seen["libssl"]
                or seen["prometheus_client"]), seen
    # asyncio, asked for, is there; the fingerprint is HMAC-SHA256 as before.
    assert seen["asyncio works"] == 42
    import hashlib
    import hmac
    assert seen["fp"] == hmac.new(bytes.fromhex(seen["key"]), b'[{"a":1}]',
                                  hashlib.sha256).hexdigest()


def test_a_process_that_imports_vpnd_but_not_its_command_keeps_its_libraries():
    """A Neutron agent loads vpnd.neutron_driver, and with it the vpnd
    package: its OpenSSL, asyncio and rich stay its own."""
    code = ("import sys, json\n"
            "import vpnd, vpnd.state.validation, vpnd.observe.status\n"
            "import hashlib, asyncio\n"
            "print(json.dumps({'_hashlib': sys.modules.get('_hashlib') is not None,\n"
            "                  'asyncio': type(asyncio).__name__,\n"
            "                  'pbkdf2': len(hashlib.pbkdf2_hmac('sha256', b'p', b's', 1)),\n"
            "                  'rich': 'rich' in sys.modules and sys.modules['rich'] is None}))\n")
    seen = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True).stdout)
    assert seen == {"_hashlib": True, "asyncio": "module", "pbkdf2": 32, "rich": False}
