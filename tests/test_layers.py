"""The layers of ``core/`` (the import-linter contracts in ``pyproject.toml``) hold, and each contract
fails, naming itself, when an import that breaks it is planted in a copy of ``core/``.

``scripts/test.sh`` runs ``lint-imports`` before pytest, so CI fails on a broken contract; these tests
show the contracts can fail at all (a contract that cannot fail checks nothing).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lint():
    if not LINT.exists():
        pytest.skip(f"lint-imports is not installed beside {sys.executable} (pip install import-linter)")
    return _lint


def test_core_keeps_its_contracts(lint):
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("module, planted, contract", [
    ("core/errors.py", "import pytest", "core never imports claims, benchmark, tests or pytest"),
    ("core/cache.py", "import core.report.markdown", "core's layers"),
    ("core/data/__init__.py", "import core.neurons.stats", "core's layers"),
    ("core/abl/ablation.py", "import core.mod.lorenz", "the paper folders do not import each other"),
    ("core/report/compare.py", "import core.abl.ablation", "the report reads result and curve files"),
    ("core/papers.py", "import core.abl.ablation", "the report reads result and curve files"),
    ("core/papers.py", "import core.zoo.models", "the manifest of papers imports only"),
    ("core/zoo/sites.py", "import core.zoo.models", "no import circle inside core"),
])
def test_a_planted_import_breaks_its_contract(tmp_path, lint, module, planted, contract):
    shutil.copytree(ROOT / "core", tmp_path / "core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by tests/test_layers.py\n")
    out = lint(tmp_path)
    assert out.returncode != 0, out.stdout
    broken = out.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), out.stdout
