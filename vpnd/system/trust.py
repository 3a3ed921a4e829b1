"""Who may declare a tunnel: the owner and mode of state files and of the
directories they sit in, checked like sshd's StrictModes.

A state file says where traffic goes and holds its PSK. Anyone who can
write it, or replace it, can inject or redirect tunnels; so such a file is
refused. A file others can read leaks its PSKs: a warning. A directory
that others can write is fine only with the sticky bit (/tmp, the mount
point of a Kubernetes volume): then nobody can replace a file they do not
own, and each file's own owner is checked.

Pure: it judges os.stat results.
"""
from __future__ import annotations

import stat

WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH
READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH


def trusted_owners(euid: int, state_owner: int | None) -> frozenset[int]:
    """root, the user vpnd runs as, and the configured state_owner."""
    return frozenset(u for u in (0, euid, state_owner) if u is not None)


def _others(mode: int) -> str:
    return " and ".join(who for who, bit in (("its group", stat.S_IWGRP),
                                              ("everyone", stat.S_IWOTH)) if mode & bit)


def refusal(st, trusted: frozenset[int], what: str) -> str | None:
    """Why a file or directory (`what` names it) may not declare tunnels,
    or None. `st`: its os.stat, links followed."""
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in trusted:
        return (f"{what} is owned by uid {st.st_uid}, which is neither root nor "
                f"state_owner: vpnd takes tunnels only from them")
    if stat.S_ISDIR(st.st_mode):
        if mode & WRITABLE_BY_OTHERS and not mode & stat.S_ISVTX:
            return (f"{what} is writable by {_others(mode)} (mode {mode:04o}), who could "
                    f"put or replace state files there: chmod go-w, or +t")
        return None
    if mode & WRITABLE_BY_OTHERS:
        return (f"{what} is writable by {_others(mode)} (mode {mode:04o}), who could "
                f"inject or redirect tunnels: chmod 0600")
    if not mode & stat.S_IRUSR:
        return (f"{what} is not readable by its owner (mode {mode:04o}): taken as "
                f"switched off; chmod 0600 to use it")
    return None


def warning(st) -> str | None:
    """What is unsafe but allowed about a state file, or None."""
    mode = stat.S_IMODE(st.st_mode)
    if mode & READABLE_BY_OTHERS:
        whom = " and ".join(w for w, bit in (("its group", stat.S_IRGRP),
                                             ("everyone", stat.S_IROTH)) if mode & bit)
        return f"readable by {whom} (mode {mode:04o}), and it holds PSKs: chmod 0600"
    return None


# --- vpnd's own directories and files ----------------------------------------
#
# run_dir, data_dir and the metrics textfile's directory hold what vpnd
# writes as root and later believes: status.json, charon.pid, the VICI
# socket it sends PSKs to, the record of what it applied. Whoever can
# write there can plant a link that vpnd then writes through, a pid file
# it then kills, or a socket it then talks to. Stricter than a state dir:
# the sticky bit does not help, because such a user could still create
# the names vpnd has not made yet.

def own_dir_refusal(chain, trusted: frozenset[int], what: str,
                    exists: bool = True) -> str | None:
    """Why vpnd may not keep its files in the directory `what` names, or
    None. `chain`: (path, os.lstat) of each directory from / down to it;
    a symlink on the way is followed by the chain of its target (see
    files.dir_chain), so the last entry is the directory itself. Parents
    are judged like a state dir's (sticky is enough: /tmp). Not `exists`
    (not made yet): the chain ends at its nearest ancestor, where nobody
    else may make it first."""
    *parents, (path, st) = chain
    for p, pst in parents:
        problem = _parent_refusal(p, pst, trusted, what)
        if problem:
            return problem
    if not exists:
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid not in trusted:
            whose = f"owned by uid {st.st_uid}"
        elif mode & WRITABLE_BY_OTHERS:
            whose = f"writable by {_others(mode)} (mode {mode:04o})"
        else:
            return None
        return (f"{what} does not exist, and {path}, where it would be made, is {whose}: "
                f"someone else could make it first: chmod go-w {path}, or make it yourself "
                f"as root")
    if not stat.S_ISDIR(st.st_mode):
        return f"{what} is {kind(st.st_mode)}, not a directory"
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in trusted:
        return (f"{what} is owned by uid {st.st_uid}, who could replace vpnd's files, "
                f"sockets and pid files in it: chown root {path}")
    if mode & WRITABLE_BY_OTHERS:
        return (f"{what} is writable by {_others(mode)} (mode {mode:04o}), who could plant "
                f"links, sockets or pid files that vpnd (root) would follow: chmod go-w {path}")
    return None


def _parent_refusal(path: str, st, trusted: frozenset[int], what: str) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        if st.st_uid not in trusted:
            return (f"{path}, on the way to {what}, is a symlink owned by uid {st.st_uid}: "
                    f"make it root's (chown -h root {path}) or use the real path")
        return None
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in trusted:
        return (f"directory {path}, above {what}, is owned by uid {st.st_uid}, who could "
                f"rename or replace what is in it: chown root {path}, or move {what} elsewhere")
    if mode & WRITABLE_BY_OTHERS and not mode & stat.S_ISVTX:
        return (f"directory {path}, above {what}, is writable by {_others(mode)} (mode "
                f"{mode:04o}), who could replace what is in it: chmod go-w {path}, or +t")
    return None


def own_file_refusal(st, trusted: frozenset[int], what: str) -> str | None:
    """Why a file vpnd reads back as its own (status.json, a pid file) is
    not to be believed, or None. `st`: its fstat (of an fd opened without
    following links)."""
    if not stat.S_ISREG(st.st_mode):
        return f"{what} is {kind(st.st_mode)}, not a regular file"
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in trusted:
        return f"{what} is owned by uid {st.st_uid}, not by root or vpnd's user"
    if mode & WRITABLE_BY_OTHERS:
        return f"{what} is writable by {_others(mode)} (mode {mode:04o})"
    return None


def kind(mode: int) -> str:
    """What a file is, said with its article (\"a FIFO\")."""
    for test, kind in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return kind
    return "of an unknown type"
