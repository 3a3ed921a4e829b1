"""Writing the last valid copy of each state file (data_dir/last-valid),
in a thread of its own.

At a cold start of 10,000 files the copies are 10,000 file creations
(about 2 s here): done in the loop's thread, they held up a change that
came meanwhile for as long. One writer thread does them, in the order
asked, so that a copy forgotten after it was queued is gone, not written
back. A copy lost to a crash only means that an invalid file is held as
it stands rather than served from its copy (they are not fsync()ed
either).
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

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
