"""`vpnd status`: status.json as a table, or as JSON."""
from __future__ import annotations

import json
import os
import sys

from vpnd.base.printable import printable
from vpnd.cli.exits import EXIT_ERROR, EXIT_OK

COLUMNS = ("SERVICE", "CONNECTION", "NAMESPACE", "STATUS", "SINCE", "REASON / DETAIL")


def status(config, args) -> int:
    try:
        # status.json is plain JSON (observe.status writes it): read here
        # without importing that module, whose imports were a tenth of
        # the command's time.
        with open(config.status_file, "rb") as f:
            document = json.load(f)
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
    print(status_table(services, document.get("updated", "?"), document.get("charons", {})))
    return EXIT_OK


def status_table(services: list[dict], updated: str, charons: dict | None = None) -> str:
    """One line per service and per connection, reasons in the last
    column; ACTIVE connections show algorithms and traffic instead. A
    charon that is wrong as a whole comes first: it explains the rest."""
    cells = _cells(services, charons or {})
    # Names and reasons come from files and charon: shown, never obeyed.
    # Most tables hold nothing to escape: one look at all of it says so
    # (what printable escapes is never printable), not 120,000 calls.
    cells = [c if type(c) is str else str(c) for c in cells]
    if not "".join(cells).isprintable():
        cells = [printable(c) for c in cells]
    n = len(COLUMNS)
    widths = [max(map(len, cells[i::n])) for i in range(n - 1)]
    line = "  ".join(f"%-{w}s" for w in widths) + "  %s"
    lines = [(line % tuple(cells[i:i + n])).rstrip() for i in range(0, len(cells), n)]
    return "\n".join([*lines, f"(as of {printable(updated)})"])


def _cells(services: list[dict], charons: dict) -> list:
    """The table's cells, row after row, as status.json has them."""
    cells = list(COLUMNS)
    for ns, charon in sorted(charons.items()):
        cells += ("(charon)", "-", ns, charon["status"], "", charon.get("reason", ""))
    for s in services:
        cells += (s.get("id") or os.path.basename(s["file"]), "-",
                  s.get("namespace", "-"), s["status"], "", s.get("reason", ""))
        conns = s.get("ipsec_site_connections", {})
        for cid in sorted(conns) if len(conns) > 1 else conns:
            c = conns[cid]
            cells += ("", cid, "", c["status"], c.get("since", ""), _detail(c))
        for error in s.get("errors", ()):
            cells += ("", "", "", "", "", error)
        for warning in s.get("warnings", ()):
            cells += ("", "", "", "", "", f"warning: {warning}")
    return cells


def _detail(conn: dict) -> str:
    if conn["status"] != "ACTIVE":
        return conn.get("reason", "")
    children = conn.get("child_sas", {}).values()
    bytes_in = sum(c.get("bytes_in", 0) for c in children)
    bytes_out = sum(c.get("bytes_out", 0) for c in children)
    algorithms = next(iter(children), {}).get("algorithms", "")
    return f"{algorithms}  in {bytes_in} B, out {bytes_out} B, rekeys {conn.get('rekeys', 0)}"
