"""Small file helpers shared by everything that writes vpnd's own files."""
from __future__ import annotations

import os


def write_atomically(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Readers see the old file or the new one, never half of one.
    `durable`: on disk before it replaces the old one (fsync)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
