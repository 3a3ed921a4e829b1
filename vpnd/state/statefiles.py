"""The state directory: one JSON file per VPN service, kept up to date
file by file as DesiredState.

Files are re-read only when their stat moves (inode, size, mtime, owner,
mode), and re-parsed only when their bytes did too: an agent's full sync
rewrites every file with the same bytes, and that costs a stat and a read
each, nothing more. A file that becomes invalid keeps serving its last
valid version (file_state), so a typo never tears a tunnel down; its
errors are reported beside it.

StateDir is the directory and its bookkeeping: which files there are,
which changed, and whose standing moves with them. Reading one file is
safe_read's and one_file's, ids named twice id_claims', the copies kept
under data_dir kept_copies'.
"""
from __future__ import annotations

import dataclasses
import heapq
import os
import re

from vpnd.base.errors import InputError
from vpnd.state.desired import DesiredState
from vpnd.state.file_state import FileState, digest
from vpnd.state.id_claims import IdClaims
from vpnd.state.kept_copies import LastValidCopies
from vpnd.state.one_file import MAX_BYTES, parse_bytes
from vpnd.state.safe_read import Unreadable, read_trusted
from vpnd.state.validation import Parsed
from vpnd.system import log, trust


# *.json, but not what editors and atomic writers leave behind (.x.tmp,
# #x#, ~x; x~ does not end in .json).
_STATE_FILE = re.compile(r"(?![.#~]).*\.json\Z", re.S)


def is_state_file(name: str) -> bool:
    """*.json, but not what editors and atomic writers leave behind."""
    return _STATE_FILE.match(name) is not None


# Files one state dir may hold (config: state_files_max).
MAX_FILES = 20_000
# Under data_dir: the last valid version of each state file (they hold PSKs:
# mode 0600 in a 0700 directory).
LAST_VALID = "last-valid"


class StateDir:
    def __init__(self, path: str, max_bytes: int = MAX_BYTES, keep_dir: str | None = None,
                 keep: bool = False, state_owner: int | None = None,
                 max_files: int = MAX_FILES):
        """`keep_dir`: where the last valid version of each file is kept
        (data_dir/last-valid), so that a restarted vpnd still knows it;
        `keep`: write it there (the daemon; a dry run only reads);
        `state_owner`: a uid trusted besides root and vpnd's own."""
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.not_read = 0  # state files beyond max_files, at the last listing
        self.trusted = trust.trusted_owners(os.geteuid(), state_owner)
        self.keep = keep and keep_dir is not None
        self.missing = False  # the directory itself is gone
        self.state = DesiredState({}, {})  # kept up to date by scan()
        self._copies = LastValidCopies(keep_dir, self.keep, max_bytes)
        self._files: dict[str, FileState] = {}
        self._claims = IdClaims()
        self._dir_refusal: str | None = None
        self._real_dir: str | None = None  # the state dir's real path, at this scan

    def scan(self, only: set[str] | None = None) -> tuple[DesiredState, set[str]]:
        """Re-read what changed; returns the state and the files that changed
        (or whose standing did: one that gave up a clashing id lets the
        next file that names it in). `only`: just these paths (inotify said
        so), looked at fresh; the others are not even stat()ed, so a change
        costs the same however many files there are. A state dir that is
        gone is not an empty one: what it said stands."""
        try:
            dir_refusal = trust.refusal(os.stat(self.path), self.trusted,
                                        f"state dir {self.path}")
            if only is None or dir_refusal != self._dir_refusal:
                # The directory's own standing is in every file's stamp.
                # In the order listed: which file is looked at first
                # changes nothing (10,000 names sorted cost 2 ms).
                names = self._within_max(list(filter(_STATE_FILE.match,
                                                     os.listdir(self.path))))
                only = None
            self.missing = False
        except FileNotFoundError:
            self.missing = True
            return self.state, set()
        self._dir_refusal = dir_refusal
        self._real_dir = os.path.realpath(self.path)
        if only is None:
            prefix = os.path.join(self.path, "")  # joined once: 10,000 joins cost 20 ms
            paths = [prefix + n for n in names]
        else:
            paths = sorted(p for p in only if os.path.dirname(p) == self.path
                           and is_state_file(os.path.basename(p)))
            new = sum(p not in self._files for p in paths)
            if new and len(self._files) + new > self.max_files:
                return self.scan()  # which ones may come in needs the whole listing
            names = [os.path.basename(p) for p in paths]
        had = len(self._files)
        changed, known = self._look_all(names, paths, dir_refusal)
        if only is None and known < had:  # some file known before is not listed now
            gone = self._files.keys() - set(paths)
            for path in gone:
                self._gone(path)
            changed |= gone
        return self.state, self._restate(changed)

    def _look_all(self, names: list[str], paths: list[str], dir_refusal: str | None
                  ) -> tuple[set[str], int]:
        """Stat each file and re-read those whose stamp moved: (the files
        that changed, how many of `paths` were known before). A file whose
        stamp stands costs its stat and little more: a full sync or a
        resync of 10,000 files is mostly such files. Many are stat()ed by
        name in the directory opened once: the kernel walks one name, not
        the whole path (15% of 10,000 stats)."""
        files, changed, known = self._files, set(), 0
        fd = _open_dir(self.path) if len(paths) > 64 else None
        try:
            for name, path in zip(paths if fd is None else names, paths):
                before = files.get(path)
                known += before is not None
                try:
                    st = os.stat(name, dir_fd=fd)
                    stamped = (st, _stamp_of(st, dir_refusal))
                except OSError:
                    stamped = _stamp(path, dir_refusal)  # gone, or unreadable
                if before is not None and stamped is not None and before.stamp == stamped[1]:
                    continue  # an unreadable file too: its error is known
                if self._look(path, dir_refusal, stamped, before):
                    changed.add(path)
        finally:
            if fd is not None:
                os.close(fd)
        return changed, known

    def listing(self) -> list[str]:
        """The state files' paths, unread (a start reads them in passes)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []  # the scan that follows says why
        return [os.path.join(self.path, n) for n in names if _STATE_FILE.match(n)]

    def too_many(self) -> str:
        return (f"{self.not_read} state files not read: the state dir holds more than "
                f"state_files_max ({self.max_files}); the files read before keep "
                "their place")

    def flush_kept(self) -> None:
        """Queue the copies noted since the last flush (written in a thread)."""
        self._copies.flush(self._files)

    def close(self) -> None:
        """Write the copies still owed (a stop)."""
        self._copies.close(self._files)

    def _within_max(self, names: list[str]) -> list[str]:
        """At most max_files of `names`: the files already read first (a
        file that sorts early must not push a working tunnel out), then
        new ones by name. The rest are counted in not_read."""
        self.not_read = max(0, len(names) - self.max_files)
        if not self.not_read:
            return names
        names = sorted(names)
        prefix = os.path.join(self.path, "")
        known = [n for n in names if prefix + n in self._files][:self.max_files]
        room = self.max_files - len(known)
        new = [n for n in names if prefix + n not in self._files][:room]
        return sorted(known + new)

    # --- one file -------------------------------------------------------------

    def _look(self, path: str, dir_refusal: str | None, stamped, before: FileState | None
              ) -> bool:
        """One file whose stamp (`stamped`: _stamp's) moved from `before`:
        re-read it; True if it changed (or went)."""
        if stamped is None:
            return self._gone(path)
        st, stamp = stamped
        raw, warning, read_digest = None, None, b""
        if dir_refusal:
            parsed = Parsed(None, [InputError(path, "$", f"refused: {dir_refusal}")])
        else:
            try:
                raw, warning = read_trusted(path, self.max_bytes, self.trusted,
                                            self._real_dir)
            except Unreadable as e:
                parsed = Parsed(None, [e.problem])
            else:
                read_digest = digest(raw, st)
                if before is not None and before.digest == read_digest:
                    # Rewritten with the same bytes (a full sync): only
                    # the stamp moves, nothing is parsed or touched.
                    self._files[path] = dataclasses.replace(before, stamp=stamp)
                    return False
                parsed = parse_bytes(path, raw)
        if parsed.whole is not None:
            self._copies.note(path, raw)
        if self.keep:
            _log_news(path, parsed, warning, before)
        last_valid = (parsed.whole or (before.last_valid if before else None)
                      or self._copies.read(path))
        self._files[path] = FileState.judged(stamp, read_digest, parsed, warning, last_valid)
        return True

    def _gone(self, path: str) -> bool:
        """`path` is no more; True if it was known."""
        if self._files.pop(path, None) is None:
            return False
        self._copies.forget(path)
        return True

    # --- the state, kept up to date file by file -----------------------------

    def _restate(self, changed: set[str]) -> set[str]:
        """Bring `self.state` up to date for the files in `changed`; returns
        them and every file whose standing moved with them (ids: the earlier
        file by name keeps an id, a later one that names it too is invalid,
        and it may be let in once the earlier one lets the id go)."""
        state, todo, done = self.state, list(changed), set()
        for path in changed:
            todo.extend(self._claims.sharing(path))  # those its old ids blocked
        heapq.heapify(todo)
        while todo:
            path = heapq.heappop(todo)
            if path in done:
                continue
            done.add(path)
            was = path in state.services
            self._restate_one(path)
            if was != (path in state.services) or path in changed:
                # Its ids were let go or taken: the later files that name
                # them stand otherwise now.
                for other in self._claims.sharing(path):
                    if other > path and other not in done:
                        heapq.heappush(todo, other)
        return done

    def _restate_one(self, path: str) -> None:
        """One file's place in the state, from what it says and the ids
        that earlier files (by name) keep."""
        self._claims.release(path)
        self.state.forget(path)
        file = self._files.get(path)
        if file is None:
            return
        service = file.serves
        clashes = [] if service is None else \
            self._claims.clashes(path, service, self.state.services)
        if service is not None:
            self._claims.claim(path, service)
        self.state.record(path, file, clashes)


def _stamp(path: str, dir_refusal: str | None) -> tuple[os.stat_result, object] | None:
    """(its stat, its stamp), or None if nothing is at `path`."""
    try:
        st = os.stat(path)
        return st, _stamp_of(st, dir_refusal)
    except OSError as e:
        # A dangling link or a loop is a file that cannot be read,
        # not a file that is gone: its error is shown.
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        return st, ("unreadable", e.errno, st.st_ino, st.st_mtime_ns)


def _open_dir(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # gone since it was listed: each file is stat()ed by its path


def _stamp_of(st: os.stat_result, dir_refusal: str | None) -> int:
    # Owner and mode too: a chmod changes who may declare tunnels. Hashed:
    # one int a file, not a tuple of eight (a collision would need two
    # stats alike in 64 bits).
    return hash((dir_refusal, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid))


def _log_news(path: str, parsed: Parsed, warning: str | None,
              before: FileState | None) -> None:
    """What is worth an operator's attention and is new since the last read."""
    if warning and (before is None or before.warning != warning):
        log.get().warning("state file readable by others", file=path, problem=warning)
    if parsed.warnings and parsed.warnings != (before.parsed.warnings if before else []):
        # One line a file, however many connections say it: status lists them.
        first = parsed.warnings[0]
        log.get().warning("deprecated values", file=path, path=first.path,
                          problem=first.message, count=len(parsed.warnings))
