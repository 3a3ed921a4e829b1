"""Reading a file that anyone may have put in the state dir.

A state file is named by whoever can write the directory, so it may be a
FIFO (which would hang a plain open), a link into /dev or /proc, a file
that grows while it is read, or one that others may write. read_trusted
refuses each of these with a reason, and reads what it checked: the
file is opened first, then judged by fstat.
"""
from __future__ import annotations

import errno
import os
import stat

from vpnd.base.errors import InputError
from vpnd.system import trust

# Symlinks are followed (Kubernetes volumes are made of them), but never
# into these.
_DEVICE_TREES = ("/dev/", "/proc/", "/sys/")


class Unreadable(Exception):
    """A state file that cannot be read as one; `problem` says why."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.problem = InputError(path, "$", message)


def read_trusted(path: str, limit: int, trusted: frozenset[int] | None,
                 real_dir: str | None = None) -> tuple[bytes, str | None]:
    """(a regular file's bytes, a warning or None); raises Unreadable.
    Opened without blocking (a FIFO named *.json must not hang vpnd) and
    checked with fstat, so what is read is what was checked. With
    `trusted` (owner uids), the file and the directory it really sits in
    must be safe from others (trust.py). `real_dir`: the real path of the
    file's directory, when the caller knows it (a scan resolves it once:
    resolving each of 10,000 files' paths whole cost 0.1 ms a file)."""
    if real_dir is not None and not os.path.islink(path):
        real = os.path.join(real_dir, os.path.basename(path))
    else:
        real = os.path.realpath(path)
    if real.startswith(_DEVICE_TREES):
        raise Unreadable(path, f"a link to {real}: state files are regular files")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Unreadable(path, "a symlink loop") from None
        if e.errno == errno.ENOENT and os.path.islink(path):
            raise Unreadable(path, f"a symlink to {os.readlink(path)}, "
                                   "which does not exist") from None
        raise Unreadable(path, f"cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(path, f"not a regular file ({trust.kind(st.st_mode)})")
        warning = None
        if trusted is not None:
            _check_trust(path, real, st, trusted)
            warning = trust.warning(st)
        if st.st_size > limit:
            raise Unreadable(path, f"{st.st_size} bytes, larger than the "
                                        f"{limit} allowed (state_file_max_bytes)")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 16, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise Unreadable(path, f"larger than the {limit} bytes allowed "
                                            "(state_file_max_bytes)")
        return b"".join(chunks), warning
    except OSError as e:
        raise Unreadable(path, f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)


def _check_trust(path: str, real: str, st, trusted: frozenset[int]) -> None:
    linked = os.path.islink(path)
    problem = trust.refusal(st, trusted, f"its target {real}" if linked else "it")
    if problem is None and linked:
        # A link (a Kubernetes volume): the directory it leads into too.
        parent = os.path.dirname(real)
        try:
            problem = trust.refusal(os.stat(parent), trusted, f"directory {parent}")
        except OSError as e:
            problem = f"directory {parent}: {e.strerror}"
    if problem:
        raise Unreadable(path, f"refused: {problem}")
