"""The vpnd command: run, check, doctor, plan, status, reload, stop-charons, health."""
from __future__ import annotations

import argparse
import json
import os
import sys

from vpnd.base import config as config_mod
from vpnd.base.errors import ConfigError
from vpnd.base.printable import printable

EXIT_OK, EXIT_ERROR, EXIT_PENDING = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The command line, which `--help` prints and vpnd(8) is written from."""
    parser = argparse.ArgumentParser(prog="vpnd", description=__doc__)
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
        return _check(args)
    try:
        config = config_mod.load(args.config)
    except ConfigError as e:
        print(f"vpnd: {e}", file=sys.stderr)
        return EXIT_ERROR
    return {"run": _run, "doctor": _doctor, "plan": _plan, "status": _status, "reload": _reload,
            "health": _health,
            "stop-charons": _stop_charons}[args.command](config, args)


def _check(args) -> int:
    from vpnd.state.statefiles import StateDir, check_file
    files = args.files
    deprecated = []
    if not files:
        try:
            config = config_mod.load(args.config)
        except ConfigError as e:
            print(f"vpnd: {e}", file=sys.stderr)
            return EXIT_ERROR
        state, _ = StateDir(config.state_dir, config.state_file_max_bytes,
                            state_owner=config.state_owner,
                            max_files=config.state_files_max).scan()
        problems = [e for errs in state.problems().values() for e in errs]
        for path, warning in sorted(state.warnings.items()):
            print(printable(f"{path}: warning: {warning}"), file=sys.stderr)
        deprecated = [w for _, ws in sorted(state.deprecations.items()) for w in ws]
        checked = len(set(state.services) | set(state.errors))
    else:
        problems = []
        for path in files:
            errors, warnings = check_file(path)
            problems.extend(errors)
            deprecated.extend(warnings)
        checked = len(files)
    # Accepted, so not a failure: but a value Neutron 29 rewrites is worth
    # seeing before it goes live.
    for w in deprecated:
        print(printable(f"{w.file}: {w.path}: warning: {w.message}"), file=sys.stderr)
    for problem in problems:
        print(printable(problem))
    bad = len({p.file for p in problems})
    print(f"{checked} file(s) checked, {bad} invalid", file=sys.stderr)
    return EXIT_ERROR if problems else EXIT_OK


def _doctor(config, args) -> int:
    from vpnd import doctor
    from vpnd.system import log
    log.setup(config.log_format, "error")
    findings = doctor.examine(config)
    for finding in findings:
        print(finding)
    if doctor.ready(findings):
        print("ready", file=sys.stderr)
        return EXIT_OK
    print("NOT READY", file=sys.stderr)
    return EXIT_ERROR


def _run(config, args) -> int:
    # Imported here, not at the top: `vpnd status` and `health` (probes)
    # need neither structlog nor the daemon, and start faster without.
    from vpnd.system import log
    from vpnd.loop.daemon import Daemon
    log.setup(config.log_format, config.log_level)
    code = Daemon(config).run()
    # At once, as promised on SIGTERM: a look still waiting on a charon's
    # deadline in a worker thread must neither delay the exit (the
    # interpreter would join it) nor act after it (start a charon, say).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _plan(config, args) -> int:
    from vpnd.system import log
    from vpnd.drivers import compose
    from vpnd.loop.reconciler import Reconciler
    from vpnd.apply.record import Record
    from vpnd.state.statefiles import LAST_VALID, StateDir
    log.setup(config.log_format, "error")
    driver = compose.driver(config, timeout=5.0)
    try:
        # A dry run writes nothing, not even a first fingerprint key.
        record = Record(config.data_dir).load(create_key=False)
        statedir = StateDir(config.state_dir, config.state_file_max_bytes,
                            keep_dir=os.path.join(config.data_dir, LAST_VALID),
                            state_owner=config.state_owner,
                            max_files=config.state_files_max)
        result = Reconciler(config, driver, statedir=statedir,
                            record=record).reconcile(dry_run=True)
    except Exception as e:  # plan must say why it could not plan, then exit 1
        print(f"vpnd: plan failed: {e}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        driver.close()
    steps = [s for s in result.steps if s.actions]
    if args.json:
        print(json.dumps([s.to_dict() for s in steps], indent=1))
    elif not steps:
        print("No changes: every namespace matches the state files.")
    else:
        for s in steps:
            print(printable(f"{s.namespace}: {s.reason} {s.name} (service {s.service_id})"))
            for a in s.actions:
                print(printable(f"    {a.describe()}"))
            d = s.disrupts
            if d.ike_sas or d.child_sas:
                ends = ", ".join([*(f"IKE_SA #{i}" for i in d.ike_sas),
                                  *(f"CHILD_SA #{i}" for i in d.child_sas)])
                cost = "interrupts its traffic" if d.interrupts_traffic else \
                    "no traffic interrupted"
                print(printable(f"    => ends {ends}; {cost}: {d.why}"))
            elif d.why:
                print(printable(f"    => ends nothing: {d.why}"))
    return EXIT_PENDING if steps else EXIT_OK


def _status(config, args) -> int:
    from vpnd.observe import status
    try:
        document = status.read(config.status_file)
    except FileNotFoundError:
        print(f"vpnd: no status yet ({config.status_file}); is vpnd running?",
              file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError) as e:
        print(printable(f"vpnd: cannot read {config.status_file}: {e}"), file=sys.stderr)
        return EXIT_ERROR
    services = document.get("services", [])
    if args.json:
        print(json.dumps(services, indent=1))
        return EXIT_OK
    print(_status_table(services, document.get("updated", "?"), document.get("charons", {})))
    return EXIT_OK


def _status_table(services: list[dict], updated: str, charons: dict | None = None) -> str:
    """One line per service and per connection, reasons in the last
    column; ACTIVE connections show algorithms and traffic instead. A
    charon that is wrong as a whole comes first: it explains the rest."""
    rows = [("SERVICE", "CONNECTION", "NAMESPACE", "STATUS", "SINCE", "REASON / DETAIL")]
    for ns, charon in sorted((charons or {}).items()):
        rows.append(("(charon)", "-", ns, charon["status"], "", charon.get("reason", "")))
    for s in services:
        rows.append((s.get("id") or os.path.basename(s["file"]), "-",
                     s.get("namespace", "-"), s["status"], "", s.get("reason", "")))
        for cid, c in sorted(s.get("ipsec_site_connections", {}).items()):
            rows.append(("", cid, "", c["status"], c.get("since", ""), _detail(c)))
        for error in s.get("errors", []):
            rows.append(("", "", "", "", "", error))
        for warning in s.get("warnings", []):
            rows.append(("", "", "", "", "", f"warning: {warning}"))
    # Names and reasons come from files and charon: shown, never obeyed.
    rows = [tuple(printable(col) for col in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(r[:5], widths)) + "  " + r[5]
             for r in rows]
    return "\n".join([*(line.rstrip() for line in lines), f"(as of {updated})"])


def _detail(conn: dict) -> str:
    if conn["status"] != "ACTIVE":
        return conn.get("reason", "")
    children = conn.get("child_sas", {}).values()
    bytes_in = sum(c.get("bytes_in", 0) for c in children)
    bytes_out = sum(c.get("bytes_out", 0) for c in children)
    algorithms = next(iter(children), {}).get("algorithms", "")
    return f"{algorithms}  in {bytes_in} B, out {bytes_out} B, rekeys {conn.get('rekeys', 0)}"


def _daemon_status(config) -> tuple[dict, int]:
    """status.json and the pid of the vpnd that wrote it, both believed
    only if plainly so: the file is root's (or yours) and nobody else may
    write it, and that pid runs `vpnd run` as root (or you). Else OSError
    or ValueError, saying why: a status file, or a pid reused since,
    could name any process, and `reload` signals it."""
    from vpnd.system import files, processes, trust
    run_dir = os.path.dirname(config.status_file)
    chain, exists = files.dir_chain(run_dir)
    problem = trust.own_dir_refusal(chain, files.owners(), f"run_dir {run_dir}", exists)
    if problem:
        raise files.NotOurs(problem)
    doc = json.loads(files.read_own(config.status_file))
    pid = doc["pid"]
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise ValueError(f"its 'pid' is not a process id: {pid!r}")
    problem = processes.vpnd_refusal(pid, files.owners())
    if problem:
        raise ValueError(problem)
    return doc, pid


def _health(config, args) -> int:
    import time
    from vpnd.observe import health
    try:
        doc, _ = _daemon_status(config)
    except FileNotFoundError:
        doc = None
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"vpnd: no running daemon found through {config.status_file}: {e}",
              file=sys.stderr)
        return EXIT_ERROR
    ok, why = health.judge(doc, time.time(), config.status_interval, args.alive)
    print(f"vpnd: {why}", file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def _reload(config, args) -> int:
    """SIGHUP, then wait until the daemon reports that reload as applied:
    systemd 252 has no Type=notify-reload, and kill -HUP returns at once."""
    import signal
    import time
    from vpnd.system import files, processes
    from vpnd.observe import status
    try:
        before, pid = _daemon_status(config)
        # Held by a pidfd, checked again once held: the signal reaches
        # this vpnd or nobody, not a process given its pid meanwhile.
        daemon = processes.Held.take(
            pid, lambda p: processes.vpnd_refusal(p, files.owners()) is None)
        if daemon is None:
            raise ProcessLookupError(f"pid {pid} is gone")
        try:
            daemon.signal(signal.SIGHUP)
        finally:
            daemon.close()
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"vpnd: reload: no running daemon found through {config.status_file}: {e}; "
              f"nothing signalled", file=sys.stderr)
        return EXIT_ERROR
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            now = status.read(config.status_file)
            if now.get("pid") == pid and now.get("reloads", 0) > before.get("reloads", 0):
                # Applied, but not everything may have worked: say what not.
                failing = now.get("failing", {})
                for key, why in failing.items():
                    print(f"vpnd: reload: {key}: {why}", file=sys.stderr)
                return EXIT_ERROR if failing else EXIT_OK
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    print(f"vpnd: reload: not applied within {args.timeout:.0f}s", file=sys.stderr)
    return EXIT_ERROR


def _stop_charons(config, args) -> int:
    from vpnd.drivers import compose
    spawner = compose.charon_instances(config)
    if spawner is None:
        print("vpnd: charon.mode external: vpnd runs no charons to stop", file=sys.stderr)
        return EXIT_OK
    for ns in spawner.stop_all(spawner.namespaces()):
        print(f"stopped charon in {ns}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
