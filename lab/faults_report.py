"""Prints the fault suite's report from the lines tests/conftest.py wrote:
each case, its outcome and time, and the figures it measured."""
from __future__ import annotations

import json
import sys


def main(path: str) -> int:
    cases: dict[str, dict] = {}
    with open(path) as f:
        for line in f:
            entry = json.loads(line)
            case = cases.setdefault(entry["test"], {"figures": []})
            if "outcome" in entry:
                case["outcome"], case["seconds"] = entry["outcome"], entry["seconds"]
            else:
                case["figures"].append((entry["what"], entry["value"]))
    failed = [t for t, c in cases.items() if c.get("outcome") != "passed"]
    print("vpnd fault suite")
    for test, case in cases.items():
        name = test.split("::", 1)[1]
        print(f"\n{case.get('outcome', '?').upper():7} {name}  ({case.get('seconds', '?')} s)")
        for what, value in case["figures"]:
            print(f"        {what}: {value}")
    print(f"\n{len(cases)} fault cases, {len(cases) - len(failed)} passed, {len(failed)} failed"
          f"{': ' + ', '.join(failed) if failed else ''}")
    print("every case also checks: vpnd stays up (no crash), every wait has a deadline "
          "(no hang), the other tunnels keep their SAs")
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
