"""The package's layers (pyproject's [tool.importlinter]): the library imports no section and no book, the
sections do not import each other, and only notebooks import the book. ``make test`` runs ``lint-imports``
itself before pytest; these tests run it too, and show that a broken layer makes it fail."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"  # the test extra installs it beside python


def _lint_imports(cwd: Path, source: Path) -> subprocess.CompletedProcess:
    """lint-imports with the configuration in ``cwd`` (its pyproject.toml) on the giasok found in ``source``."""
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: pip install -e '.[test]' installs import-linter"
    env = dict(os.environ, PYTHONPATH=str(source))  # this copy of giasok, not an installed one
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_package_keeps_its_import_contracts():
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_library_module_that_imports_a_section_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "src" / "giasok", tmp_path / "giasok", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")  # the same contracts
    assert _lint_imports(tmp_path, tmp_path).returncode == 0  # the copy itself is fine …
    metrics = tmp_path / "giasok" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nfrom . import training_setup  # a library module using a section\n")
    result = _lint_imports(tmp_path, tmp_path)  # … until the metrics import a section
    assert result.returncode != 0, result.stdout
    assert "the library imports neither a section nor the book's display and build code BROKEN" in result.stdout
    assert "giasok.metrics -> giasok.training_setup" in result.stdout


def test_every_module_of_the_package_is_in_a_layer():
    # a new module must be placed in the library or among the sections, or no contract would look at it
    modules = {f"giasok.{p.stem}" for p in (ROOT / "src" / "giasok").glob("*.py") if p.stem != "__init__"}
    library, sections, book = _contracts()
    notebook_only = {"giasok.book", "giasok.notebook"}
    assert set(library["source_modules"]) | set(sections["modules"]) | notebook_only == modules
    assert set(library["source_modules"]).isdisjoint(sections["modules"])
    assert set(library["forbidden_modules"]) == set(sections["modules"]) | notebook_only
    assert set(book["source_modules"]) == modules - notebook_only and set(book["forbidden_modules"]) == notebook_only
