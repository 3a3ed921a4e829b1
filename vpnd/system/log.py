"""Logging with structlog: readable on a terminal, JSON when asked.

PSKs are kept out of log lines by construction (they travel in fields with
repr=False and are never formatted into messages); the redactor below is
the second line of defence, masking any current PSK that reaches a line
anyway in a field that may carry text from elsewhere (an error, a reason).
The fields that say what happened, where and when are never masked: a
tenant's PSK may be any word, and "connection" must stay in every line,
and not tell its tenant by its absence that it is somebody's PSK.

A log call never raises: a line that cannot be rendered (a file name
that is not UTF-8, say) is written with its bytes escaped, or, failing
that, replaced by a line that says one was lost.
"""
from __future__ import annotations

import logging
import os
import sys

import structlog

# What vpnd itself puts in these: event names, ids, namespaces, paths,
# counts, its own actions (made of connection names). Never scrubbed.
STRUCTURAL = frozenset({
    "event", "level", "timestamp", "logger", "netns", "namespace", "service",
    "connection", "key", "keys", "file", "path", "state_dir", "trigger", "signal",
    "pid", "listen", "status", "charon_mode", "actions"})
# Whole values that are secrets, whatever they hold.
SECRET_FIELDS = frozenset({"psk", "secret", "password"})


class SecretRedactor:
    MASK = "<redacted>"
    KEY = 4  # the shortest secret masked; secrets are indexed by their first KEY characters

    def __init__(self):
        self._known: set[str] = set()
        # First KEY characters -> the lengths of the secrets that begin so,
        # longest first. A line is tested one position at a time (a dict
        # lookup, then a set lookup a length): nothing to compile, so a
        # pass of 250 new files costs its own 250 PSKs. One compiled
        # alternation of every PSK, recompiled at each pass, cost a
        # 10,000-file cold start 0.3-0.8 s. Tenants choose PSKs: however
        # alike, a position costs at most one lookup a PSK length
        # (neutron.MAX_PSK_LENGTH).
        self._lengths: dict[str, tuple[int, ...]] = {}

    def add(self, secrets) -> None:
        """Secrets just read (a changed file's): only those not masked
        yet are added, so a change costs its own PSKs, not everyone's."""
        added = {s for s in secrets if s and len(s) >= self.KEY} - self._known
        self._known |= added
        for secret in added:
            head = secret[:self.KEY]
            lengths = self._lengths.get(head, ())
            if len(secret) not in lengths:
                self._lengths[head] = tuple(sorted((*lengths, len(secret)), reverse=True))

    def scrub(self, value):
        if isinstance(value, str):
            return self._scrub_text(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value

    def _scrub_text(self, value: str) -> str:
        lengths_of, known, key = self._lengths, self._known, self.KEY
        out, at = [], 0  # at: where the text not yet copied begins
        for i in range(len(value) - key + 1):
            for length in lengths_of.get(value[i:i + key], ()):
                if value[i:i + length] in known:
                    # Overlapping secrets are masked as one: nothing of
                    # the longer one shows beside the shorter.
                    if i >= at:
                        out += (value[at:i], self.MASK)
                    at = max(at, i + length)
                    break
        if not out:
            return value
        out.append(value[at:])
        return "".join(out)

    def __call__(self, logger, method_name, event_dict):
        for key in SECRET_FIELDS & event_dict.keys():
            event_dict[key] = self.MASK
        if not self._known:
            return event_dict
        plain = (str, dict, list, tuple, int, float, bool, type(None))
        # Anything else (an exception, say) is rendered to text first, so
        # that whatever its str() carries is scrubbed too.
        return {k: v if k in STRUCTURAL else self.scrub(v if isinstance(v, plain) else str(v))
                for k, v in event_dict.items()}


redactor = SecretRedactor()


def _escaped(value) -> str:
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _never_raises(base):
    """`base` (a structlog bound logger class) whose calls cannot raise."""
    class NeverRaises(base):
        def _proxy_to_logger(self, method_name, event=None, **event_kw):
            try:
                return super()._proxy_to_logger(method_name, event, **event_kw)
            except Exception as e:  # noqa: BLE001 - a log line must not stop vpnd
                try:
                    safe = {k: _escaped(v) for k, v in event_kw.items()
                            if k in STRUCTURAL and k != "event"}
                    return super()._proxy_to_logger(
                        method_name, _escaped(event), unrenderable=type(e).__name__, **safe)
                except Exception:  # noqa: BLE001
                    try:
                        os.write(2, f"vpnd: a log line was lost ({type(e).__name__})\n"
                                 .encode())
                    except OSError:
                        pass
    return NeverRaises


def setup(fmt: str = "auto", level: str = "info", stream=None) -> None:
    """auto: the journal under journald, a console on a terminal, else JSON."""
    from vpnd.system import journal
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = ("journal" if journal.under_journald()
               else "console" if stream.isatty() else "json")
    if fmt == "journal":
        renderer = journal.renderer
        factory = lambda *args: journal.JournalLogger()  # noqa: E731
    else:
        renderer = (structlog.processors.JSONRenderer(sort_keys=True) if fmt == "json"
                    else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
        # One write per line (message and newline together): a vpnd killed
        # mid-line leaves no line run into the next one.
        factory = structlog.WriteLoggerFactory(file=stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks as text, in every format (the journal and JSON
            # otherwise keep only exc_info=true), and scrubbed like the rest.
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=_never_raises(structlog.make_filtering_bound_logger(
            getattr(logging, level.upper()))),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get(name: str = "vpnd"):
    return structlog.get_logger(name)
