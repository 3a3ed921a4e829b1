"""The command line: its parser and the dispatch to a subcommand."""
from __future__ import annotations

import argparse
import sys

from vpnd.base import config as config_mod
from vpnd.base.errors import ConfigError
from vpnd.cli.exits import EXIT_ERROR

DESCRIPTION = "The vpnd command: run, check, doctor, plan, status, reload, stop-charons, health."


def build_parser() -> argparse.ArgumentParser:
    """The command line, which `--help` prints and vpnd(8) is written from."""
    parser = argparse.ArgumentParser(prog="vpnd", description=DESCRIPTION)
    parser.add_argument("--config", default=config_mod.DEFAULT_PATH, metavar="FILE",
                        help=f"daemon configuration (default {config_mod.DEFAULT_PATH})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon in the foreground")
    p = sub.add_parser("check", help="validate state files; exit 0 if all are valid")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="files to check (default: the state_dir)")
    sub.add_parser("doctor", help="is this node ready: programs, charon's plugins (a trial "
                                  "charon is started), running charons, state files; "
                                  "exit 0 if ready, 1 if not")
    p = sub.add_parser("plan", help="what the next reconcile would do; "
                                    "exit 0: nothing, 2: changes pending, 1: error")
    p.add_argument("--json", action="store_true",
                   help="the steps as JSON, in the shape conf/plan.schema.json documents")
    p = sub.add_parser("status", help="status of every service and connection")
    p.add_argument("--json", action="store_true",
                   help="the services as JSON, in the shape neutron-vpnaas agents report")
    p = sub.add_parser("reload", help="make the running daemon resync now; returns "
                                      "when that has been applied (for ExecReload=)")
    p.add_argument("--timeout", type=float, default=120, metavar="SECONDS",
                   help="seconds to wait for it to be applied (default 120)")
    sub.add_parser("stop-charons", help="stop the charons vpnd started (ends their tunnels)")
    p = sub.add_parser("health", help="for probes: exit 0 if the daemon's loop runs, no "
                                      "namespace is failing and metrics (when on) are "
                                      "served, 1 if not (with why)")
    p.add_argument("--alive", action="store_true", help="only that the loop runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.command == "check":
        from vpnd.cli.check import check
        return check(args)
    try:
        config = config_mod.load(args.config)
    except ConfigError as e:
        print(f"vpnd: {e}", file=sys.stderr)
        return EXIT_ERROR
    return _command(args.command)(config, args)


def _command(name: str):
    """The function for a subcommand, imported only when it runs: `vpnd
    status` and `health` (probes) need neither structlog nor the daemon,
    and start faster without."""
    if name == "run":
        from vpnd.cli.run import run
        return run
    if name == "plan":
        from vpnd.cli.plan import plan
        return plan
    if name == "doctor":
        from vpnd.cli.doctor import doctor
        return doctor
    if name == "status":
        from vpnd.cli.status import status
        return status
    from vpnd.cli import daemon_control
    return {"reload": daemon_control.reload, "health": daemon_control.health,
            "stop-charons": daemon_control.stop_charons}[name]
