"""The layering in .importlinter, checked on every run of the suite."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = str(Path(sys.executable).parent / "lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    # grimp reads the packages from the working directory first.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def test_the_import_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_pure_module_that_imports_io_breaks_them(tmp_path):
    for part in ("vpnd", "lab", ".importlinter"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / part)
    plan = tmp_path / "vpnd" / "plan.py"
    plan.write_text(plan.read_text() + "\nimport subprocess  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The pure core imports no I/O library and no driver BROKEN" in result.stdout
    assert "vpnd.plan -> subprocess" in result.stdout
