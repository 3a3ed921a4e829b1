"""Is a process the one vpnd takes it for (pure): judged from what /proc
says of it, which processes.py reads.

A pid is only a number. The process that had it may have ended and
another taken it, and a pid file or status.json may name any process at
all. So before vpnd signals a pid, or trusts that a vpnd daemon runs
there, what the process runs must say so: a charon is its program and
its start time (which a later process with the same pid cannot have),
a vpnd daemon is its command line and its user.
"""
from __future__ import annotations

import re

# python, python3, python3.11: what runs the vpnd entry point's script.
_PYTHON = re.compile(r"python[0-9.]*")
# `python -m vpnd`, and the modules that run vpnd.cli.main as it does.
_MODULES = ("vpnd", "vpnd.__main__", "vpnd.cli")
# Interpreter options followed by a value of their own.
_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


def _name(path: str) -> str:
    return path.rpartition("/")[2]


def vpnd_arguments(argv: list[str]) -> list[str] | None:
    """What vpnd's own parser gets if `argv` runs vpnd (its script, python
    running that script, or `python -m vpnd`); None if it runs anything
    else (`python -c ...` with "vpnd" in it included)."""
    if not argv:
        return None
    if _name(argv[0]) == "vpnd":
        return argv[1:]
    if not _PYTHON.fullmatch(_name(argv[0])):
        return None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            return argv[i + 2:] if argv[i + 1:i + 2] and argv[i + 1] in _MODULES else None
        if arg.startswith("-m"):
            return argv[i + 1:] if arg[2:] in _MODULES else None
        if arg in _WITH_VALUE:
            i += 2
            continue
        if arg in ("-", "--") or (arg[:1] == "-" and arg[1:2] not in "XW-"
                                  and "c" in arg[1:]):
            return None  # code from stdin or from -c: not vpnd's
        if arg.startswith("-"):
            i += 1
            continue
        return argv[i + 1:] if _name(arg) == "vpnd" else None
    return None


def subcommand(arguments: list[str]) -> str | None:
    """The vpnd command these arguments run ("run", "status", ...)."""
    i = 0
    while i < len(arguments):
        arg = arguments[i]
        # argparse takes any unambiguous prefix of --config.
        if len(arg) >= 3 and "--config".startswith(arg):
            i += 2
            continue
        if arg.startswith("--config="):
            i += 1
            continue
        return None if arg.startswith("-") else arg
    return None


def is_vpnd_daemon(argv: list[str]) -> bool:
    """`argv` (/proc/<pid>/cmdline) runs `vpnd run`."""
    arguments = vpnd_arguments(argv)
    return arguments is not None and subcommand(arguments) == "run"


def vpnd_refusal(pid: int, argv: list[str], uids: tuple[int, ...],
                 trusted: frozenset[int]) -> str | None:
    """Why pid is not a vpnd daemon whose status file may be believed and
    that may be signalled, or None. `uids`: its real and effective uid."""
    if not is_vpnd_daemon(argv):
        # Its program's name only: the rest of another's command line is theirs.
        what = f"runs {_name(argv[0])!r}" if argv else "is gone, or runs no program"
        return f"pid {pid} is not a vpnd daemon: it {what}"
    strangers = sorted(set(uids) - trusted)
    if strangers or not uids:
        return (f"pid {pid} runs vpnd as uid {strangers[0] if strangers else '?'}, "
                f"neither root nor you")
    return None


def parse_cmdline(raw: bytes) -> list[str]:
    """/proc/<pid>/cmdline: arguments each ended by a NUL."""
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


def parse_uids(status_text: str) -> tuple[int, ...]:
    """(real, effective) uid from /proc/<pid>/status."""
    for line in status_text.splitlines():
        if line.startswith("Uid:"):
            return tuple(int(u) for u in line.split()[1:3])
    return ()


def parse_start_time(stat_text: str) -> int | None:
    """Field 22 of /proc/<pid>/stat, when the process started (clock ticks
    since boot). The name in parentheses before it may hold anything,
    spaces and ')' included: the fields are counted after its last ')'."""
    fields = stat_text.rpartition(")")[2].split()
    try:
        return int(fields[19])  # fields[0] is field 3
    except (IndexError, ValueError):
        return None


def runs(exe_link: str | None, program: str) -> bool:
    """/proc/<pid>/exe (`exe_link`) is `program` (a real path), also once
    that file has been replaced by an upgrade."""
    if exe_link is None:
        return False
    return exe_link.removesuffix(" (deleted)") == program


def pid_file_text(pid: int, start: int | None) -> str:
    """A pid file as vpnd writes it: the pid, and its start time."""
    return f"{pid} {start}\n" if start is not None else f"{pid}\n"


def parse_pid_file(text: str) -> tuple[int, int | None] | None:
    """(pid, start time) from a pid file; the start time is None in one
    written by a vpnd before it recorded one."""
    parts = text.split()
    try:
        pid = int(parts[0])
        start = int(parts[1]) if len(parts) > 1 else None
    except (IndexError, ValueError):
        return None
    if pid <= 1 or len(parts) > 2:
        return None
    return pid, start
