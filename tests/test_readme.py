"""The README's papermill commands, run with the papermill CLI exactly as written (at the smoke profile)."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("papermill ")]


def _papermill(command: str, cwd: Path, results: Path) -> subprocess.CompletedProcess:
    """``command`` in a shell at ``cwd`` (which links the repository's notebooks), with this interpreter's
    papermill first on the PATH and the results of this test kept apart."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               GIASOK_RESULTS=str(results), GIASOK_DATA=str(ROOT / "data"))
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    return tmp_path


def _configuration(notebook: Path) -> str:
    """The text of the configuration table the first code cell after the parameters shows."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    for cell in cells:
        if "notebook.configure(" in "".join(cell["source"]):
            return "".join("".join(o.get("data", {}).get("text/plain", "")) for o in cell["outputs"])
    raise AssertionError("no configure cell")


def test_the_readme_shows_every_papermill_form():
    assert len(COMMANDS) >= 3
    assert any(" -y " in c for c in COMMANDS) and any(re.search(r"-p \w+ '\[", c) for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_papermill_command_runs_as_written(command, tmp_path):
    cwd = _workdir(tmp_path)
    done = _papermill(command, cwd, tmp_path / "results")
    assert done.returncode == 0, done.stderr[-3000:]
    executed = cwd / shlex.split(command)[2]
    cells = [c for c in json.loads(executed.read_text())["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in cells)
    # every parameter given (other than profile/device/seed) is marked as an override in the chapter's table
    words = shlex.split(command)
    given = [words[i + 1] for i, w in enumerate(words) if w == "-p"]
    given += [pair.split(":")[0].strip() for i, w in enumerate(words) if w == "-y" for pair in [words[i + 1]]]
    table = _configuration(executed)
    rows = {line.split()[0]: line for line in table.splitlines() if line.split()}
    for name in set(given) - {"profile", "device", "seed"}:  # a field's row, or its attack's (gia_o_priors: gia_o)
        row = rows.get(name) or next(rows[r] for r in rows if name.startswith(r + "_"))
        assert row.rstrip().endswith("override"), row


def test_a_bad_value_on_the_command_line_fails_first_and_says_how(tmp_path):
    cwd = _workdir(tmp_path)
    done = _papermill("papermill notebooks/01_training_setup.ipynb out.ipynb -p profile smoke "
                      "-p local_updates '[1,x]'", cwd, tmp_path / "results")
    assert done.returncode != 0
    message = done.stderr + done.stdout
    assert "local_updates got the text '[1,x]'" in message and "-p local_updates '[1, 4]'" in message
    cells = [c for c in json.loads((cwd / "out.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    failed = [i for i, c in enumerate(cells) if any(o["output_type"] == "error" for o in c["outputs"])]
    assert failed == [2], failed  # the first cell after the parameters (0) and papermill's injected ones (1)


def test_readme_auditing_example_runs(capsys):
    """The README's "Auditing your own model" code, with its attack shortened (1500 → 20 iterations): the API
    it shows exists and fits together; each printed PSNR is a number."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Auditing your own model", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "iterations=1500" in block and "restricted(" in block
    exec(compile(block.replace("iterations=1500", "iterations=20"), "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert len(printed) == 3 and all(float(v) > 0 for v in printed)
