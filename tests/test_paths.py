"""One place for paths (giasok.paths): the environment decides every folder, the package finds its own data
wherever it is installed, and the cache version names the cached generators as well as the results."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path


from giasok import claims, paths
from giasok.attacks import AttackConfig
from giasok.data import load_dataset
from giasok.generative import DCGANConfig, generator_path
from giasok.runs import CACHE_VERSION, GiaExperiment, config_hash, result_paths, run

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_data_and_results_in_the_working_directory(monkeypatch):
    monkeypatch.delenv("GIASOK_DATA", raising=False)
    monkeypatch.delenv("GIASOK_RESULTS", raising=False)
    assert paths.data_dir() == Path("data") and paths.results_dir() == Path("results")
    assert paths.cache_dir() == Path("data/cache") and paths.generators_dir() == Path("data/generators")
    monkeypatch.setenv("GIASOK_DATA", "")  # empty means unset, not the working directory itself
    assert paths.data_dir() == Path("data")


def test_giasok_data_moves_data_sets_their_cache_and_the_generators(monkeypatch, tmp_path):
    monkeypatch.setenv("GIASOK_DATA", str(tmp_path / "elsewhere"))
    assert paths.data_dir() == tmp_path / "elsewhere"  # read at the call, not at import
    assert paths.cache_dir() == tmp_path / "elsewhere" / "cache"
    assert generator_path(DCGANConfig()).parent == tmp_path / "elsewhere" / "generators"
    canaries = load_dataset("canaries")
    assert (tmp_path / "elsewhere" / "cache" / "canaries.npz").exists() and len(canaries) == 7
    # root= still wins over the environment
    assert paths.cache_dir(tmp_path / "mine") == tmp_path / "mine" / "cache"
    load_dataset("canaries", root=tmp_path / "mine")
    assert (tmp_path / "mine" / "cache" / "canaries.npz").exists()


def test_giasok_results_moves_results_checkpoints_and_claims(monkeypatch, tmp_path):
    monkeypatch.setenv("GIASOK_RESULTS", str(tmp_path / "out"))
    assert paths.results_dir() == tmp_path / "out" and claims.claims_dir() == tmp_path / "out" / "claims"
    config = GiaExperiment(model_options=(("width", 4),), attack=AttackConfig(iterations=2))
    assert not run(config)["cached"]
    assert result_paths(config)["json"] == tmp_path / "out" / "GiaExperiment" / f"{config_hash(config)}.json"
    assert result_paths(config)["json"].exists() and run(config)["cached"]


def test_a_new_cache_version_names_new_generators_and_new_results(monkeypatch):
    config, experiment = DCGANConfig(), GiaExperiment()
    before = generator_path(config, "data"), config_hash(experiment)
    assert CACHE_VERSION == paths.CACHE_VERSION  # giasok.runs re-exports the one defined in giasok.paths
    monkeypatch.setattr(paths, "CACHE_VERSION", paths.CACHE_VERSION + 1)
    after = generator_path(config, "data"), config_hash(experiment)
    assert after[0] != before[0] and after[0].parent == before[0].parent  # the generator is retrained
    assert after[1] != before[1]  # and so are the results


def _install_like_a_wheel(target: Path) -> Path:
    """Copy what a wheel of this project holds, by pyproject's own rules: every package's modules and its
    declared package data, nothing else of the repository."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    source = ROOT / setuptools["packages"]["find"]["where"][0]
    for package in (p.parent for p in source.rglob("__init__.py") if "__pycache__" not in p.parts):
        name = ".".join(package.relative_to(source).parts)
        globs = ["*.py", *setuptools.get("package-data", {}).get(name, [])]
        for pattern in globs:
            for file in package.glob(pattern):
                destination = target / file.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, destination)
    return target


def test_the_systematization_table_is_package_data_found_outside_the_repository(tmp_path):
    site = _install_like_a_wheel(tmp_path / "site-packages")
    assert (site / "giasok" / "resources" / "systematization.csv").exists()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()  # no data/ here, and the repository is not on the path
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GIASOK_DATA")}
    env["PYTHONPATH"] = str(site)
    code = ("import giasok; from giasok.systematization import load_systematization; "
            "print(giasok.__file__); print(len(load_systematization()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    location, rows = out.stdout.split()
    assert Path(location).is_relative_to(site) and rows == "38"

