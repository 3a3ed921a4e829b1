"""The layering in .importlinter, checked on every run of the suite."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def copy_tree(tmp_path: Path) -> Path:
    for part in ("vpnd", "lab", ".importlinter"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / part)
    return tmp_path


def test_a_pure_module_that_imports_io_breaks_them(tmp_path):
    copy_tree(tmp_path)
    plan = tmp_path / "vpnd" / "plan" / "planner.py"
    plan.write_text(plan.read_text() + "\nimport subprocess  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The core stages import no I/O library and no driver BROKEN" in result.stdout
    assert "vpnd.plan.planner -> subprocess" in result.stdout


LAYERS = "vpnd's stages are layers: a lower one never imports a higher one"


@pytest.mark.parametrize("module, line, link", [
    # The arrow that ran backwards before the layers (a constant of the queue's).
    ("plan/upkeep.py", "from vpnd.loop.workqueue import BACKOFF_MAX",
     "vpnd.plan.upkeep -> vpnd.loop.workqueue"),
    ("base/model.py", "from vpnd.system import files", "vpnd.base.model -> vpnd.system.files"),
    # Siblings in one layer are independent too.
    ("apply/applier.py", "from vpnd.drivers import strongswan",
     "vpnd.apply.applier -> vpnd.drivers.strongswan"),
])
def test_an_import_up_the_layers_breaks_them(tmp_path, module, line, link):
    copy_tree(tmp_path)
    path = tmp_path / "vpnd" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{LAYERS} BROKEN" in result.stdout
    assert link in result.stdout


def test_a_module_outside_the_layers_breaks_them(tmp_path):
    """vpnd/ holds the stages' subpackages and the CLI: a new flat module
    must say which layer it belongs to."""
    copy_tree(tmp_path)
    (tmp_path / "vpnd" / "helpers.py").write_text("X = 1\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{LAYERS} BROKEN" in result.stdout
    assert "vpnd.helpers" in result.stdout


# vpnd's own venv has no neutron: an import of the driver, or of neutron or
# oslo, anywhere else in vpnd would break vpnd without neutron-vpnaas.
@pytest.mark.parametrize("module, line, contract, link", [
    ("cli/entry", "import vpnd.neutron_driver",
     "Only vpnd.neutron_driver imports vpnd.neutron_driver", "vpnd.cli.entry -> vpnd.neutron_driver"),
    ("cli/entry", "from vpnd.neutron_driver import l3",
     "Only vpnd.neutron_driver imports vpnd.neutron_driver", "vpnd.cli.entry -> vpnd.neutron_driver.l3"),
    ("cli/entry", "import oslo_messaging",
     "Nothing outside vpnd.neutron_driver imports neutron or oslo",
     "vpnd.cli.entry -> oslo_messaging"),
    ("loop/daemon", "from neutron_lib import constants",
     "Nothing outside vpnd.neutron_driver imports neutron or oslo",
     "vpnd.loop.daemon -> neutron_lib"),
])
def test_an_import_of_neutron_outside_the_driver_breaks_them(tmp_path, module, line, contract,
                                                             link):
    copy_tree(tmp_path)
    path = tmp_path / "vpnd" / f"{module}.py"
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout
    assert link in result.stdout
