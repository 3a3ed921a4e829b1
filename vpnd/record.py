"""The record of what vpnd applied, kept in data_dir across restarts.

It is how vpnd knows what it owns and what changed: charon does not list
proposals, lifetimes or secrets back, so each applied connection is stored
with a fingerprint of exactly what was sent. The fingerprint is an HMAC
under a key that never leaves data_dir, so the record holds nothing from
which a PSK could be guessed offline.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from types import MappingProxyType
from typing import Mapping

from .plan import AppliedConn

RECORD_FILE = "applied.json"
KEY_FILE = "fingerprint.key"


def write_atomically(path: str, data: bytes, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Record:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, RECORD_FILE)
        self._key: bytes | None = None
        # namespace -> connection name -> AppliedConn
        self.namespaces: dict[str, dict[str, AppliedConn]] = {}

    def load(self) -> "Record":
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            data = {}
        self.namespaces = {
            ns: {name: AppliedConn(name=name, **fields) for name, fields in conns.items()}
            for ns, conns in data.get("namespaces", {}).items()}
        return self

    def save(self) -> None:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        data = {"version": 1, "namespaces": {
            ns: {name: {"service_id": a.service_id, "source": a.source,
                        "fingerprint": a.fingerprint, "secret_id": a.secret_id}
                 for name, a in sorted(conns.items())}
            for ns, conns in sorted(self.namespaces.items()) if conns}}
        write_atomically(self.path, json.dumps(data, separators=(",", ":")).encode(), 0o600)

    def applied(self, namespace: str) -> Mapping[str, AppliedConn]:
        """A read-only view: callers that keep it past a change copy it."""
        return MappingProxyType(self.namespaces.get(namespace, {}))

    def set(self, namespace: str, name: str, applied: AppliedConn | None) -> None:
        conns = self.namespaces.setdefault(namespace, {})
        if applied is None:
            conns.pop(name, None)
        else:
            conns[name] = applied

    def fingerprint(self, *messages: dict) -> str:
        payload = json.dumps(messages, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._fingerprint_key(), payload.encode(),
                        hashlib.sha256).hexdigest()

    def _fingerprint_key(self) -> bytes:
        if self._key is None:
            path = os.path.join(self.data_dir, KEY_FILE)
            try:
                with open(path, "rb") as f:
                    self._key = f.read()
            except FileNotFoundError:
                os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
                write_atomically(path, secrets.token_bytes(32), 0o600)
                with open(path, "rb") as f:
                    self._key = f.read()
        return self._key
