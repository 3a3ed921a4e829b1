"""The fingerprint of what vpnd sends to charon: an HMAC under a key that
never leaves data_dir, so the record (which keeps one per connection to
tell what changed) holds nothing from which a PSK could be guessed
offline.

Apart from the record because rendering needs fingerprints before
anything is recorded, and a dry run needs them without writing a key.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading

from vpnd.system.files import read_own, write_atomically

KEY_FILE = "fingerprint.key"


class Fingerprinter:
    """`fingerprinter(*messages)` -> hex HMAC-SHA256 of their canonical JSON."""

    def __init__(self, data_dir: str, create_key: bool = True):
        """Reads the key now, if there is one (only if it is plainly vpnd's,
        files.read_own: else NotOurs). A missing key is made at the first
        fingerprint, not here: vpnd judges data_dir before it writes
        anything there. Without `create_key` (a dry run) it is not written:
        nothing was applied under one yet, so a key of this process's own
        fingerprints as well."""
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, KEY_FILE)
        self._create_key = create_key
        self._lock = threading.Lock()  # looks in parallel threads: one key
        self._keyed: hmac.HMAC | None = None  # the HMAC of the key, to copy
        try:
            self._key: bytes | None = read_own(self.path)
        except FileNotFoundError:
            self._key = None

    def __call__(self, *messages: dict) -> str:
        if self._keyed is None:
            # Keyed once: hashlib's own SHA-256 (vpnd loads no OpenSSL,
            # see vpnd/cli/unused_libraries.py) is as quick as OpenSSL's HMAC so.
            self._keyed = hmac.new(self._key or self._first_key(), digestmod=hashlib.sha256)
        payload = json.dumps(messages, sort_keys=True, separators=(",", ":"))
        h = self._keyed.copy()
        h.update(payload.encode())
        return h.hexdigest()

    def _first_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                if not self._create_key:
                    self._key = secrets.token_bytes(32)
                    return self._key
                os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
                write_atomically(self.path, secrets.token_bytes(32), 0o600)
                self._key = read_own(self.path)
        return self._key
