"""The vpnd command: run, check, doctor, plan, status, reload, stop-charons, health.

One module a subcommand (or a family of them), each imported only when
it runs; the parser (`entry`) is what `--help` prints and what vpnd(8)
is written from (`manual`).

May import: everything below it. Nothing imports it but __main__.
"""
from vpnd.cli import unused_libraries  # noqa: F401  (first: before what they hide is imported)
from vpnd.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
