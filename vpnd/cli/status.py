"""`vpnd status`: status.json as a table, or as JSON."""
from __future__ import annotations

import json
import os
import sys

from vpnd.base.printable import printable
from vpnd.cli.exits import EXIT_ERROR, EXIT_OK

def status(config, args) -> int:
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
    print(status_table(services, document.get("updated", "?"), document.get("charons", {})))
    return EXIT_OK


def status_table(services: list[dict], updated: str, charons: dict | None = None) -> str:
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
