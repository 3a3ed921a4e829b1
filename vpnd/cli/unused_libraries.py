"""Libraries vpnd's own process never loads, hidden before anything is
imported: imported first by the vpnd command (vpnd.cli), so only in its
process. A Neutron agent that loads vpnd.neutron_driver imports the
vpnd package, not this: its rich, OpenSSL and asyncio are its own.
"""
import sys

# structlog's console renderer imports `rich` for its tracebacks whenever
# it is installed (import-linter, a test tool, brings it): 15 MB of RSS and
# 0.1 s of start-up for a daemon that logs plain lines. None here makes
# `import rich` fail as if it were not installed.
sys.modules.setdefault("rich", None)

# OpenSSL's hashes (_hashlib) and asyncio (with ssl) are libraries vpnd
# never uses: hashlib's own SHA-256 and BLAKE2 serve every hash vpnd makes,
# and only structlog imports asyncio (for its async log methods) and
# pyroute2 (for a route MTU). Together 6 MB of a daemon's RSS: libcrypto
# and libssl, mapped and relocated, and asyncio's modules. _hashlib is
# hidden as rich is; asyncio is imported at its first use, not before.
sys.modules.setdefault("_hashlib", None)


class _OnFirstUse(type(sys)):
    """Stands in for a module until an attribute is asked of it: then the
    module is imported for real, and this one forwards to it."""

    def __getattr__(self, attr):
        if sys.modules.get(self.__name__) is self:
            sys.modules.pop(self.__name__, None)
        import importlib
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


if "asyncio" not in sys.modules:
    sys.modules["asyncio"] = _OnFirstUse("asyncio")
