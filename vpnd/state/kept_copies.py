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
from collections.abc import Container
from concurrent.futures import ThreadPoolExecutor

from vpnd.base.model import Service
from vpnd.state.one_file import parse_bytes
from vpnd.system import log
from vpnd.system.files import own_dir, read_own, write_atomically


def kept_path(keep_dir: str, source: str) -> str:
    """Where the copy of state file `source` lives."""
    return os.path.join(keep_dir, hashlib.sha256(os.fsencode(source)).hexdigest()[:32] + ".json")


class KeptCopies:
    def __init__(self, keep_dir: str):
        self.keep_dir = keep_dir
        # One worker: what is asked is done in that order.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpnd-keep")

    def write(self, copies: list[tuple[str, bytes]]) -> None:
        """Queue these (source, content) copies; returns at once."""
        if copies:
            self._writer.submit(self._write, copies)

    def forget(self, source: str) -> None:
        """Queue the removal of a copy (after any write of it queued before)."""
        self._writer.submit(self._unlink, kept_path(self.keep_dir, source))

    def close(self) -> None:
        """Wait for what is queued: a vpnd that stops writes the copies it owes."""
        self._writer.shutdown(wait=True)

    def _write(self, copies: list[tuple[str, bytes]]) -> None:
        try:
            # Not a link to elsewhere, nor a directory others may write: the
            # copies hold PSKs, and are read back as state files.
            own_dir(self.keep_dir, 0o700)
        except OSError as e:
            log.get().error("last valid versions not kept", error=str(e))
            return
        while copies:
            # Taken off the list as written: a cold start's 10,000 copies
            # are not all held until the last is written.
            source, raw = copies.pop()
            kept = kept_path(self.keep_dir, source)
            try:
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
        self._noted: dict[str, bytes] = {}  # last valid versions not yet written

    def note(self, path: str, raw: bytes) -> None:
        """`raw` is the last valid version of `path`: written by flush(),
        once the change has been applied, not on the way of the change it records."""
        if self._writer is not None:
            self._noted[path] = raw

    def flush(self, present: Container[str]) -> None:
        """Queue the copies noted since the last flush (written in a thread),
        of the files still `present`."""
        noted, self._noted = self._noted, {}
        if self._writer is not None:
            self._writer.write([(path, raw) for path, raw in noted.items()
                                if path in present])  # not gone meanwhile

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
