"""docs/design.md's Layout names every module vpnd has, under its
subpackage, and nothing it no longer has: a newcomer finds code there."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "design.md").read_text()
    block = text.split("## Layout\n\n```\n", 1)[1].split("```", 1)[0]
    named: dict[str, set[str]] = {}
    package = None
    for line in block.splitlines():
        if m := re.match(r"  (\w+)/ ", line):
            package = m.group(1)
            named[package] = set()
        elif (m := re.match(r"    (\w+\.py) ", line)) and package:
            named[package].add(m.group(1))
    return named


def test_every_module_is_in_the_layout_under_its_package():
    have = {p.name: {m.name for m in p.glob("*.py") if not m.name.startswith("__")}
            for p in (ROOT / "vpnd").iterdir() if (p / "__init__.py").exists()}
    assert layout() == have


def test_vpnd_holds_only_subpackages_and_its_entry_points():
    flat = {p.name for p in (ROOT / "vpnd").glob("*.py")}
    assert flat == {"__init__.py", "__main__.py"}


def test_test_files_have_unique_basenames():
    """tests/ has no __init__.py (rootdir imports): two test files of one
    name fail the whole collection, as CI would find out."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
