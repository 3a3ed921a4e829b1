"""The subcommands that talk to a running daemon through status.json: `health`
(probes), `reload` (SIGHUP, then wait until applied) and `stop-charons`."""
from __future__ import annotations

import json
import os
import sys

from vpnd.cli.exits import EXIT_ERROR, EXIT_OK

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


def health(config, args) -> int:
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


def reload(config, args) -> int:
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


def stop_charons(config, args) -> int:
    from vpnd.drivers import compose
    spawner = compose.charon_instances(config)
    if spawner is None:
        print("vpnd: charon.mode external: vpnd runs no charons to stop", file=sys.stderr)
        return EXIT_OK
    for ns in spawner.stop_all(spawner.namespaces()):
        print(f"stopped charon in {ns}")
    return EXIT_OK
