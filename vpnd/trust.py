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
