import sys

__version__ = "0.1.0"  # setup.py reads it from here

# structlog's console renderer imports `rich` for its tracebacks whenever
# it is installed (import-linter, a test tool, brings it): 15 MB of RSS and
# 0.1 s of start-up for a daemon that logs plain lines. None here makes
# `import rich` fail as if it were not installed, in vpnd's process only.
sys.modules.setdefault("rich", None)
