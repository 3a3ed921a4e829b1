"""The vpnd command: run, check, doctor, plan, status, reload, stop-charons, health.

One module a subcommand (or a family of them), each imported only when
it runs; the parser (`entry`) is what `--help` prints and what vpnd(8)
is written from (`manual`).

May import: everything below it. Nothing imports it but __main__.
"""
import importlib

# First, before what it hides is imported by anything else.
importlib.import_module("vpnd.cli.unused_libraries")

from vpnd.cli.entry import build_parser, main  # noqa: E402

__all__ = ["build_parser", "main"]
