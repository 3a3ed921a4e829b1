"""Writing the last valid copy of each state file (data_dir/last-valid),
in a thread of its own.

At a cold start of 10,000 files the copies are 10,000 file creations
(about 2 s here): done in the loop's thread, they held up a change that
came meanwhile for as long. One writer thread does them, in the order
asked, so that a copy forgotten after it was queued is gone, not written
back. A copy lost to a crash only means that an invalid file is held as
it stands rather than served from its copy (they are not fsync()ed
either).

LastValidCopies is the state dir's side of it: the copies noted as files
become valid, handed to the writer once the change they record is
applied, and read back at a start.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Container
from concurrent.futures import ThreadPoolExecutor

from vpnd.base.model import Service
from vpnd.state.one_file import parse_bytes
from vpnd.system import log
from vpnd.system.files import own_dir, read_own, write_atomically


def kept_path(keep_dir: str, source: str) -> str:
    """Where the copy of state file `source` lives."""
    return os.path.join(keep_dir, hashlib.sha256(os.fsencode(source)).hexdigest()[:32] + ".json")


# Copies noted before a spool is opened: a change, or a few files, are
# held in memory as they always were (and make no keep_dir before their
# flush); a burst goes to the spool.
SPOOL_FROM = 100


class Spool:
    """The bytes of copies noted and not yet written, in a file of no name
    in keep_dir rather than in memory: at a cold start of 10,000 files
    they were 5 MB of vpnd's peak RSS (and, freed among the objects read
    with them, of its RSS after). Appended a block at a time; read back
    by the writer, which closes it."""

    SPILL = 256 * 1024  # bytes held before they are appended

    def __init__(self, fd: int):
        self.fd = fd
        self.size = 0  # appended, and held
        self._held: list[bytes] = []
        self._held_size = 0
        # Why an append failed (a full disk): the copies are then not
        # kept, as they could not be written beside it either; reading
        # the files goes on regardless.
        self.error: str | None = None

    @classmethod
    def open(cls, keep_dir: str) -> "Spool | None":
        """In keep_dir, vpnd's own (files.own_dir: it holds PSKs); None
        if it cannot be (the copies are then held in memory)."""
        try:
            own_dir(keep_dir, 0o700)
            try:
                fd = os.open(keep_dir, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
            except OSError:  # no O_TMPFILE here: a random name, gone at once
                fd, name = tempfile.mkstemp(dir=keep_dir, prefix=".spool.")
                os.unlink(name)
        except OSError:
            return None
        return cls(fd)

    def add(self, raw: bytes) -> int:
        """Where `raw` is in the spool: its offset and length in one int
        (one object a copy, not a tuple of two)."""
        at = self.size << 32 | len(raw)
        self._held.append(raw)
        self._held_size += len(raw)
        self.size += len(raw)
        if self._held_size >= self.SPILL:
            self.spill()
        return at

    def spill(self) -> None:
        """Append what is held; never raises (see `error`)."""
        if self._held:
            data, self._held, self._held_size = b"".join(self._held), [], 0
            if self.error is not None:
                return
            written = 0
            try:
                while written < len(data):  # pwrite: at its offset, whatever was read
                    written += os.pwrite(self.fd, data[written:],
                                         self.size - len(data) + written)
            except OSError as e:
                self.error = f"the spool of copies could not be written: {e.strerror or e}"

    def read(self, at: int) -> bytes:
        if self.error is not None:
            raise OSError(5, self.error)
        offset, length = at >> 32, at & 0xFFFFFFFF
        raw = os.pread(self.fd, length, offset)
        if len(raw) != length:
            raise OSError(5, "the spool of kept copies is short")
        return raw

    def close(self) -> None:
        os.close(self.fd)


class KeptCopies:
    def __init__(self, keep_dir: str):
        self.keep_dir = keep_dir
        # One worker: what is asked is done in that order.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpnd-keep")

    def write(self, copies: list[tuple[str, bytes | int]],
              spool: Spool | None = None) -> None:
        """Queue these (source, content) copies, content as bytes or as
        where it is in `spool` (which is then the writer's to close);
        returns at once."""
        if spool is not None:
            spool.spill()
        if copies:
            self._writer.submit(self._write, copies, spool)
        elif spool is not None:
            spool.close()

    def forget(self, source: str) -> None:
        """Queue the removal of a copy (after any write of it queued before)."""
        self._writer.submit(self._unlink, kept_path(self.keep_dir, source))

    def close(self) -> None:
        """Wait for what is queued: a vpnd that stops writes the copies it owes."""
        self._writer.shutdown(wait=True)

    def _write(self, copies: list, spool: Spool | None) -> None:
        try:
            self._write_all(copies, spool)
        finally:
            if spool is not None:
                spool.close()

    def _write_all(self, copies: list, spool: Spool | None) -> None:
        try:
            # Not a link to elsewhere, nor a directory others may write: the
            # copies hold PSKs, and are read back as state files.
            own_dir(self.keep_dir, 0o700)
        except OSError as e:
            log.get().error("last valid versions not kept", error=str(e))
            return
        if spool is not None and spool.error is not None:
            # Said once, not once a copy; the copies held in memory still go.
            log.get().error("last valid versions not kept", error=spool.error)
            copies = [c for c in copies if isinstance(c[1], bytes)]
        while copies:
            # Taken off the list as written: a cold start's 10,000 copies
            # are not all held until the last is written.
            source, raw = copies.pop()
            kept = kept_path(self.keep_dir, source)
            try:
                if not isinstance(raw, bytes):
                    raw = spool.read(raw)
                try:
                    if read_own(kept) == raw:
                        continue  # a restart: most copies are there already
                except OSError:  # missing, or not plainly vpnd's: replaced
                    pass
                write_atomically(kept, raw, 0o600, durable=False)  # it holds PSKs
            except OSError as e:
                log.get().error("last valid version not kept", file=source, error=str(e))

    @staticmethod
    def _unlink(kept: str) -> None:
        try:
            os.unlink(kept)
        except OSError:
            pass


class LastValidCopies:
    def __init__(self, keep_dir: str | None, keep: bool, max_bytes: int):
        """`keep_dir`: where the copies are (None: nowhere); `keep`: write
        them (the daemon; a dry run only reads)."""
        self.keep_dir = keep_dir
        self.max_bytes = max_bytes
        self._writer = KeptCopies(keep_dir) if keep and keep_dir is not None else None
        # Last valid versions not yet written: where they are in the spool
        # (or the bytes, if no spool could be had).
        self._noted: dict[str, bytes | int] = {}
        self._spool: Spool | None = None
        self._spooling = True  # False: no spool could be had since the last flush

    def note(self, path: str, raw: bytes) -> None:
        """`raw` is the last valid version of `path`: written by flush(),
        once the change has been applied, not on the way of the change it records."""
        if self._writer is None:
            return
        if self._spool is None and self._spooling and len(self._noted) >= SPOOL_FROM:
            self._spool = Spool.open(self.keep_dir)
            self._spooling = self._spool is not None
            if self._spool is not None:  # what is held so far goes there too
                for held, copy in self._noted.items():
                    if isinstance(copy, bytes):
                        self._noted[held] = self._spool.add(copy)
        self._noted[path] = raw if self._spool is None else self._spool.add(raw)

    def flush(self, present: Container[str]) -> None:
        """Queue the copies noted since the last flush (written in a thread),
        of the files still `present`."""
        noted, self._noted = self._noted, {}
        spool, self._spool, self._spooling = self._spool, None, True
        if self._writer is not None:
            self._writer.write([(path, raw) for path, raw in noted.items()
                                if path in present], spool)  # not gone meanwhile

    def forget(self, path: str) -> None:
        """`path` is gone: so is its copy."""
        self._noted.pop(path, None)
        if self._writer is not None:
            self._writer.forget(path)

    def close(self, present: Container[str]) -> None:
        """Write the copies still owed (a stop)."""
        if self._writer is not None:
            self.flush(present)
            self._writer.close()

    def read(self, path: str) -> Service | None:
        """The version a vpnd before this one last saw valid, if any."""
        if self.keep_dir is None:
            return None
        try:
            # vpnd's own file: never read through a link someone planted,
            # nor one others could write (files.read_own).
            raw = read_own(kept_path(self.keep_dir, path))
        except OSError:  # missing, or not plainly vpnd's (NotOurs)
            return None
        if len(raw) > self.max_bytes:
            return None
        return parse_bytes(path, raw).whole
