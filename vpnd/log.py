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
import re
import sys

import structlog

# What vpnd itself puts in these: event names, ids, namespaces, paths,
# counts. Never scrubbed.
STRUCTURAL = frozenset({
    "event", "level", "timestamp", "logger", "netns", "namespace", "service",
    "connection", "key", "keys", "file", "path", "state_dir", "trigger", "signal",
    "pid", "listen", "status", "charon_mode"})
# Whole values that are secrets, whatever they hold.
SECRET_FIELDS = frozenset({"psk", "secret", "password"})


class SecretRedactor:
    MASK = "<redacted>"

    def __init__(self):
        self._secrets: frozenset[str] = frozenset()  # in the big pattern
        self._recent: frozenset[str] = frozenset()  # added since, in a small one
        self._patterns: tuple[re.Pattern, ...] | None = ()

    def add(self, secrets) -> None:
        """Secrets just read (a changed file's): only those not masked
        yet are added, so a change costs its own PSKs, not everyone's."""
        added = frozenset(s for s in secrets if s and len(s) >= 4) - self._secrets - self._recent
        if not added:
            return
        if len(self._recent) + len(added) <= 64 and self._secrets:
            self._recent = self._recent | added
        else:
            self._secrets, self._recent = self._secrets | self._recent | added, frozenset()
        self._patterns = None

    def _compiled(self) -> tuple[re.Pattern, ...]:
        # One compiled alternation each, longest first: with a thousand PSKs
        # a loop of substring tests cost 0.2 ms per log line, this 1 us.
        # Compiling that one costs 12 ms: done when a line needs it, which
        # on a cold start is while charon is busy loading, not before.
        if self._patterns is None:
            self._patterns = tuple(
                re.compile("|".join(re.escape(x) for x in sorted(group, key=len, reverse=True)))
                for group in (self._secrets, self._recent) if group)
        return self._patterns

    def scrub(self, value):
        if isinstance(value, str):
            for pattern in self._compiled():
                value = pattern.sub(self.MASK, value)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value

    def __call__(self, logger, method_name, event_dict):
        for key in SECRET_FIELDS & event_dict.keys():
            event_dict[key] = self.MASK
        if not self._secrets and not self._recent:
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
    from . import journal
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
