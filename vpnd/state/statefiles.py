"""Reading the state directory: one JSON file per VPN service.

Files are re-read only when their stat moves (inode, size, mtime, owner,
mode), and re-parsed only when their bytes did too: an agent's full sync
rewrites every file with the same bytes, and that costs a stat and a read
each, nothing more. A file that becomes invalid keeps serving its last
valid version, so a typo never tears a tunnel down; its errors are
reported beside it.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import heapq
import os
import stat
from dataclasses import dataclass

from vpnd.state import jsondoc
from vpnd.system import log, trust

from vpnd.state.desired import DesiredState
from vpnd.base.errors import InputError
from vpnd.system.files import read_own
from vpnd.state.kept_copies import KeptCopies, kept_path
from vpnd.base.model import Service
from vpnd.state.validation import Parsed, parse_confined


def is_state_file(name: str) -> bool:
    """*.json, but not what editors and atomic writers leave behind."""
    return (name.endswith(".json") and not name.startswith((".", "#", "~"))
            and not name.endswith("~"))


# A state file is a few kilobytes; an agent payload with many connections
# some hundreds. Anything larger is refused unread (config: state_file_max_bytes).
MAX_BYTES = 1 << 20
# Files one state dir may hold (config: state_files_max).
MAX_FILES = 20_000
# Under data_dir: the last valid version of each state file (they hold PSKs:
# mode 0600 in a 0700 directory).
LAST_VALID = "last-valid"
# At most this many problems of one file are reported (and logged); the
# rest are counted.
MAX_ERRORS = 20
# Symlinks are followed (Kubernetes volumes are made of them), but never
# into these.
_DEVICE_TREES = ("/dev/", "/proc/", "/sys/")


class Unreadable(Exception):
    """A state file that cannot be read as one; `problem` says why."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.problem = InputError(path, "$", message)


def read_bytes(path: str, limit: int = MAX_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` of them; raises Unreadable."""
    return read_trusted(path, limit, None)[0]


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
            raise Unreadable(path, f"not a regular file (a {_kind(st.st_mode)})")
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


def _digest(raw: bytes, st) -> bytes:
    """What a file says and who may change it: the same bytes under
    another owner or mode are not the same file (trust.py decides on both)."""
    return hashlib.blake2b(raw + b"\0%d:%d" % (st.st_uid, st.st_mode),
                           digest_size=16).digest()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def read_file(path: str, limit: int = MAX_BYTES,
              trusted: frozenset[int] | None = None) -> tuple[Service | None, list[InputError]]:
    """Read, decode and validate one file, all or nothing. Whatever it
    holds, the answer is a service or errors naming the file: never an
    exception, never a hang."""
    parsed, _, _ = _read(path, limit, trusted)
    errors = parsed.all_errors
    return (None, errors) if errors else (parsed.service, [])


def check_file(path: str, limit: int = MAX_BYTES) -> tuple[list[InputError], list[InputError]]:
    """`vpnd check` of one named file: its errors, and its warnings (values
    accepted but deprecated), which read_file has no place for."""
    parsed, _, _ = _read(path, limit, None)
    return parsed.all_errors, list(parsed.warnings)


def _read(path: str, limit: int, trusted: frozenset[int] | None,
          raw: bytes | None = None) -> tuple[Parsed, bytes | None, str | None]:
    """(what the file says, the bytes read, a warning); `raw`: bytes
    already read (a kept copy), validated as if `path` held them."""
    warning = None
    try:
        if raw is None:
            raw, warning = read_trusted(path, limit, trusted)
        data, errors = jsondoc.decode(raw, path)
        if errors:
            return Parsed(None, errors), raw, warning
        parsed = parse_confined(data, path)
    except Unreadable as e:
        return Parsed(None, [e.problem]), None, None
    except Exception as e:  # noqa: BLE001 - a bug must not stop the others
        log.get().exception("validation failed", file=path)
        return Parsed(None, [InputError(path, "$", f"vpnd could not validate this file "
                                                   f"({type(e).__name__}); see its log")]), \
            raw, warning
    return _bounded(path, parsed), raw, warning


def _bounded(path: str, parsed: Parsed) -> Parsed:
    """At most MAX_ERRORS problems (and broken connections, and warnings)
    reported; the rest are counted."""
    def cut(errors):
        if len(errors) <= MAX_ERRORS:
            return errors
        more = len(errors) - MAX_ERRORS
        return [*errors[:MAX_ERRORS],
                InputError(path, "$", f"and {more} more problem{'s' * (more > 1)}")]
    broken = {key: cut(errs) for key, errs in list(parsed.broken.items())[:MAX_ERRORS]}
    if len(parsed.broken) > MAX_ERRORS:
        more = len(parsed.broken) - MAX_ERRORS
        broken["$.ipsec_site_connections"] = [InputError(
            path, "$.ipsec_site_connections", f"and {more} more invalid connections")]
    return Parsed(parsed.service, cut(parsed.errors), broken, parsed.ids,
                  cut(parsed.warnings))


def _merged(service: Service, broken, last_valid: Service | None) -> Service:
    """A service with invalid connections: its valid ones, and the last
    valid version of each invalid one that had one (a typo in one
    connection tears no tunnel down)."""
    if last_valid is None or not broken:
        return service
    kept = tuple(c for c in last_valid.connections if c.id in broken)
    return dataclasses.replace(service, connections=(*service.connections, *kept))


@dataclass(slots=True)
class _Entry:
    stamp: tuple
    service: Service | None  # valid now (with its invalid connections' last valid versions)
    errors: list[InputError]  # of the file or the service: it is invalid
    last_valid: Service | None  # what this file last said validly, all of it
    warning: str | None = None  # unsafe but allowed (readable by others)
    broken: dict = dataclasses.field(default_factory=dict)  # connection -> errors
    ids: tuple = (None, ())  # (service id, connection ids) as far as readable
    digest: bytes = b""  # of the bytes read, with who may write them (see _digest)
    deprecations: list = dataclasses.field(default_factory=list)  # validation's warnings


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
        self.keep_dir = keep_dir
        self.keep = keep and keep_dir is not None
        self._copies = KeptCopies(keep_dir) if self.keep else None
        self.missing = False  # the directory itself is gone
        self._entries: dict[str, _Entry] = {}
        self._dir_refusal: str | None = None
        self._real_dir: str | None = None  # the state dir's real path, at this scan
        self._to_keep: dict[str, bytes] = {}  # last valid versions not yet written
        self.state = DesiredState({}, {})  # kept up to date by scan()
        # Who names which id: ("service", id) or ("connection", namespace,
        # id) -> files (a tuple: almost always one); and the service each
        # file's claims come from.
        self._claims: dict[tuple, tuple[str, ...]] = {}
        self._claimed: dict[str, Service] = {}

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
                names = self._within_max(
                    sorted(n for n in os.listdir(self.path) if is_state_file(n)))
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
            changed = self._entries.keys() - set(paths)
            for gone in changed:
                del self._entries[gone]
                self._forget_kept(gone)
        else:
            changed = set()
            paths = sorted(p for p in only if os.path.dirname(p) == self.path
                           and is_state_file(os.path.basename(p)))
            new = sum(p not in self._entries for p in paths)
            if new and len(self._entries) + new > self.max_files:
                return self.scan()  # which ones may come in needs the whole listing
        for path in paths:
            if self._look(path, dir_refusal):
                changed.add(path)
        return self.state, self._restate(changed)

    def too_many(self) -> str:
        return (f"{self.not_read} state files not read: the state dir holds more than "
                f"state_files_max ({self.max_files}); the files read before keep "
                "their place")

    def _within_max(self, names: list[str]) -> list[str]:
        """At most max_files of `names`: the files already read first (a
        file that sorts early must not push a working tunnel out), then
        new ones by name. The rest are counted in not_read."""
        self.not_read = max(0, len(names) - self.max_files)
        if not self.not_read:
            return names
        prefix = os.path.join(self.path, "")
        known = [n for n in names if prefix + n in self._entries][:self.max_files]
        room = self.max_files - len(known)
        new = [n for n in names if prefix + n not in self._entries][:room]
        return sorted(known + new)

    def _look(self, path: str, dir_refusal: str | None) -> bool:
        """Stat one file, re-read it if its stamp moved; True if it changed
        (or went)."""
        try:
            st = os.stat(path)
            # Owner and mode too: a chmod changes who may declare tunnels.
            # Hashed: one int a file, not a tuple of eight (a collision
            # would need two stats alike in 64 bits).
            stamp = hash((dir_refusal, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode,
                          st.st_uid))
        except OSError as e:
            # A dangling link or a loop is a file that cannot be read,
            # not a file that is gone: its error is shown.
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if self._entries.pop(path, None) is not None:
                    self._forget_kept(path)
                    return True
                return False
            stamp = ("unreadable", e.errno, st.st_ino, st.st_mtime_ns)
        entry = self._entries.get(path)
        if entry is not None and entry.stamp == stamp:
            return False
        if dir_refusal:
            parsed, raw, warning = \
                Parsed(None, [InputError(path, "$", f"refused: {dir_refusal}")]), None, None
        else:
            try:
                raw, warning = read_trusted(path, self.max_bytes, self.trusted,
                                            self._real_dir)
            except Unreadable as e:
                raw, warning = None, None
                parsed = Parsed(None, [e.problem])
            else:
                digest = _digest(raw, st)
                if entry is not None and entry.digest == digest:
                    # Rewritten with the same bytes (a full sync): only
                    # the stamp moves, nothing is parsed or touched.
                    entry.stamp = stamp
                    return False
                parsed, _, _ = _read(path, self.max_bytes, self.trusted, raw)
        whole = parsed.service if parsed.service is not None and not parsed.broken else None
        if whole is not None:
            self._keep(path, raw)
        if self.keep and warning and (entry is None or entry.warning != warning):
            log.get().warning("state file readable by others", file=path, problem=warning)
        if self.keep and parsed.warnings and parsed.warnings != (entry.deprecations
                                                                 if entry else []):
            # One line a file, however many connections say it: status lists them.
            first = parsed.warnings[0]
            log.get().warning("deprecated values", file=path, path=first.path,
                              problem=first.message, count=len(parsed.warnings))
        last_valid = whole or (entry.last_valid if entry else None) or self._kept(path)
        service = None if parsed.service is None else \
            _merged(parsed.service, parsed.broken, last_valid)
        self._entries[path] = _Entry(stamp, service, parsed.errors, last_valid, warning,
                                     parsed.broken, parsed.ids,
                                     b"" if raw is None else _digest(raw, st),
                                     parsed.warnings)
        return True

    # --- the last valid version of each file, kept under data_dir ------------

    def _keep(self, path: str, raw: bytes) -> None:
        """Noted now, handed to the copies' writer by flush_kept() once the
        change has been applied: not on the way of the change it records."""
        if self.keep:
            self._to_keep[path] = raw

    def flush_kept(self) -> None:
        """Queue the copies noted since the last flush (written in a thread)."""
        to_keep, self._to_keep = self._to_keep, {}
        if self._copies is not None:
            self._copies.write([(path, raw) for path, raw in to_keep.items()
                                if path in self._entries])  # not gone meanwhile

    def close(self) -> None:
        """Write the copies still owed (a stop)."""
        if self._copies is not None:
            self.flush_kept()
            self._copies.close()

    def _kept(self, path: str) -> Service | None:
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
        parsed, _, _ = _read(path, self.max_bytes, None, raw)
        return None if parsed.broken else parsed.service

    def _forget_kept(self, path: str) -> None:
        self._to_keep.pop(path, None)
        if self._copies is not None:
            self._copies.forget(path)

    # --- the state, kept up to date file by file -----------------------------

    def _restate(self, changed: set[str]) -> set[str]:
        """Bring `self.state` up to date for the files in `changed`; returns
        them and every file whose standing moved with them (ids: the earlier
        file by name keeps an id, a later one that names it too is invalid,
        and it may be let in once the earlier one lets the id go)."""
        state, todo, done = self.state, list(changed), set()
        for path in changed:
            todo.extend(self._sharing(path))  # those its old ids blocked
        heapq.heapify(todo)
        while todo:
            path = heapq.heappop(todo)
            if path in done:
                continue
            done.add(path)
            was = path in state.services
            self._unclaim(path)
            entry = self._entries.get(path)
            for book in (state.errors, state.warnings, state.deprecations, state.broken,
                         state.ids):
                book.pop(path, None)
            state.drop(path)
            if entry is None:
                continue
            if entry.errors:
                state.errors[path] = list(entry.errors)
            if entry.warning:
                state.warnings[path] = entry.warning
            if entry.deprecations:
                state.deprecations[path] = list(entry.deprecations)
            if entry.broken:
                state.broken[path] = dict(entry.broken)
            if entry.service is None:
                state.ids[path] = entry.ids
            service = entry.service or entry.last_valid
            clash = [] if service is None else self._clashes(path, service)
            if service is not None:
                self._claim(path, service)
            if service is None or clash:
                # The earlier file (by name) keeps the id; this one is invalid.
                if clash:
                    state.errors.setdefault(path, []).extend(clash)
                state.held.add(path)
            else:
                state.add(path, service)
            if was != (path in state.services) or path in changed:
                # Its ids were let go or taken: the later files that name
                # them stand otherwise now.
                for other in self._sharing(path):
                    if other > path and other not in done:
                        heapq.heappush(todo, other)
        return done

    def _keys(self, service: Service) -> list[tuple]:
        return [("service", service.id),
                *(("connection", service.namespace, c.id) for c in service.connections)]

    def _claim(self, path: str, service: Service) -> None:
        self._claimed[path] = service
        for key in self._keys(service):
            self._claims[key] = (*self._claims.get(key, ()), path)

    def _unclaim(self, path: str) -> None:
        service = self._claimed.pop(path, None)
        for key in self._keys(service) if service is not None else ():
            claimants = tuple(p for p in self._claims.get(key, ()) if p != path)
            if claimants:
                self._claims[key] = claimants
            else:
                self._claims.pop(key, None)

    def _sharing(self, path: str) -> set[str]:
        """The other files that name an id this one names."""
        service = self._claimed.get(path)
        return set() if service is None else \
            {p for key in self._keys(service) for p in self._claims.get(key, ()) if p != path}

    def _clashes(self, path: str, service: Service) -> list[InputError]:
        """What an earlier file (by name) that stands already uses."""
        def first(key):
            earlier = [p for p in self._claims.get(key, ())
                       if p < path and p in self.state.services]
            return min(earlier) if earlier else None
        problems = []
        if (other := first(("service", service.id))) is not None:
            problems.append(InputError(path, "$.id", f"service id {service.id!r} is "
                                                     f"already used by {other}"))
        for i, conn in enumerate(service.connections):
            if (other := first(("connection", service.namespace, conn.id))) is not None:
                problems.append(InputError(
                    path, f"$.ipsec_site_connections[{i}].id",
                    f"connection id {conn.id!r} is already used in namespace "
                    f"{service.namespace} by {other}"))
        return problems
