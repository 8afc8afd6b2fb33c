import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_pins_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    listed = set(re.findall(r"^\s+- ([A-Za-z][^\s#]*(?:==|>=|<=)[^\s#]+)\s*$", (ROOT / "environment.yml").read_text(), re.M))
    assert listed == wanted


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
