"""Small file helpers shared by everything that writes vpnd's own files.

vpnd runs as root. Whatever sits at a name it writes, someone may have
put there: a link would make vpnd overwrite the link's target, a FIFO
would hang it, a hard link would make it append to another file. So
nothing found at a name is followed or reused: a new file is made under
a random name nobody could have guessed, exclusively and without
following links, then renamed over the old name (a rename replaces a
link, it never follows one); a file kept open for appends is checked
once it is open, and replaced if it is not plainly vpnd's own.
"""
from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable

from vpnd.system import trust

# A new file, never one that is there already, and never through a link.
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# NONBLOCK: a FIFO at the name must not hang vpnd on open; NOCTTY: a
# terminal must not become vpnd's.
_EXISTING = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class NotOurs(OSError):
    """A file or directory vpnd would use is not plainly its own; the
    message says what it is and how to fix it."""

    def __init__(self, message: str):
        super().__init__(1, message)  # EPERM: callers that catch OSError say why

    def __str__(self) -> str:
        return self.strerror


def owners() -> frozenset[int]:
    """Whose files vpnd takes as its own: root's and its user's."""
    return trust.trusted_owners(os.geteuid(), None)


def write_atomically(path: str, data: bytes | Iterable[bytes], mode: int = 0o644,
                     durable: bool = True) -> None:
    """Readers see the old file or the new one, never half of one.
    `data`: the bytes, or pieces of them (a large file need not be held
    whole as well). `durable`: on disk before it replaces the old one
    (fsync). Whatever was at `path` is replaced, not written through."""
    directory, name = os.path.split(path)
    # 64 random bits: a name planted in advance is not this one, and if it
    # were, O_EXCL fails rather than reusing it.
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, _NEW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                for piece in data:
                    f.write(piece)
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


def open_append(path: str, mode: int) -> int:
    """An fd to append to vpnd's own file `path` (a journal, a log), made
    if missing. What is there that vpnd did not make (a link, a FIFO, a
    file of someone else's, one others may write, or one with another
    name too) is removed and a new file made in its place."""
    try:
        fd = _open_own(path, os.O_WRONLY | os.O_APPEND, frozenset({os.geteuid()}))
    except FileNotFoundError:
        pass
    except NotOurs:
        # Not followed, not reused: out of the way (a directory stays, and
        # the exclusive create below then fails, refusing it).
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            pass
    else:
        return fd
    fd = os.open(path, _NEW | os.O_APPEND, mode)
    return fd


def read_own(path: str, trusted: frozenset[int] | None = None) -> bytes:
    """The bytes of vpnd's own file `path`, not read through a link, and
    refused (NotOurs) unless it is a regular file of `trusted` owners
    (root's and vpnd's by default) that nobody else may write."""
    fd = _open_own(path, os.O_RDONLY, trusted or owners())
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _open_own(path: str, flags: int, trusted: frozenset[int]) -> int:
    # lstat first: opening a device node can itself do something (a tape
    # rewinds); then fstat of what was opened, the same inode, to judge.
    before = os.lstat(path)
    problem = trust.own_file_refusal(before, trusted, path)
    if problem:
        raise NotOurs(problem)
    fd = os.open(path, flags | _EXISTING)
    try:
        st = os.fstat(fd)
        problem = trust.own_file_refusal(st, trusted, path)
        if not problem and (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            problem = f"{path} was replaced while being opened"
        if not problem and st.st_nlink != 1:
            problem = f"{path} has {st.st_nlink} names (hard links): one could be anywhere"
        if problem:
            raise NotOurs(problem)
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def own_dir(path: str, mode: int = 0o700) -> None:
    """Make `path`, a directory vpnd keeps inside one of its own, unless
    it is there; refuse (NotOurs) one that is a link, or someone else's,
    or that others may write: vpnd would write its files where it points,
    or beside what others put there."""
    os.makedirs(path, mode, exist_ok=True)
    problem = trust.own_dir_refusal([(path, os.lstat(path))], owners(), f"directory {path}")
    if problem:
        raise NotOurs(problem)


def dir_chain(path: str) -> tuple[list[tuple[str, os.stat_result]], bool]:
    """(path, lstat) of each directory from / down to `path`, for
    trust.own_dir_refusal: a symlink on the way comes with the chain of
    its target. And whether `path` exists; if not, the chain ends at its
    nearest ancestor."""
    chain = [("/", os.lstat("/"))]
    current = "/"  # always a real path: links resolved
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)  # of a real path: what the kernel does
            continue
        step = os.path.join(current, part)
        try:
            st = os.lstat(step)
        except FileNotFoundError:
            return chain, False
        chain.append((step, st))
        if stat.S_ISLNK(st.st_mode):
            try:
                current = os.path.realpath(step, strict=True)
            except FileNotFoundError:
                return chain, False
            target, exists = dir_chain(current)  # no links left in it
            chain.extend(target[1:])
            if not exists:
                return chain, False
        else:
            current = step
    return chain, True
