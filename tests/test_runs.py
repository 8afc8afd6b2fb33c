import dataclasses
import json
import os

import pytest

import torch

from giasok.attacks import AttackConfig
from giasok.profiles import PROFILES, check_device, get_profile
from giasok.runs import GiaExperiment, config_hash, result_paths, run, run_grid

TINY = dict(model_options=(("width", 4),), attack=AttackConfig(priors=(("tv", 1e-4),), iterations=5))


def test_result_is_stored_atomically_and_reloaded_not_recomputed(tmp_path):
    config = GiaExperiment(**TINY)
    first = run(config, root=tmp_path)
    assert not first["cached"] and first["psnr"] > 0
    assert first["lpips"] is None or first["lpips"] >= 0
    paths = result_paths(config, tmp_path)
    assert all(p.exists() for p in paths.values())
    assert not list(tmp_path.rglob("*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in paths.values())  # not mkstemp's 0600
    stamp = paths["json"].stat().st_mtime_ns
    second = run(config, root=tmp_path)
    assert second["cached"] and second["psnr"] == first["psnr"]
    assert (second["arrays"]["reconstruction"] == first["arrays"]["reconstruction"]).all()
    assert paths["json"].stat().st_mtime_ns == stamp
    stored = json.loads(paths["json"].read_text())
    assert stored["config"] == json.loads(json.dumps(dataclasses.asdict(config))) and stored["hash"] == config_hash(config)


def test_hash_changes_with_any_field():
    base = GiaExperiment()
    assert config_hash(base) == config_hash(GiaExperiment())
    for field, value in [("seed", 1), ("device", "cuda"), ("attack", base.attack.with_(iterations=10)),
                         ("attack", base.attack.with_(known_training_config=True))]:
        assert config_hash(dataclasses.replace(base, **{field: value})) != config_hash(base)


def test_interrupted_grid_resumes_and_a_rerun_computes_nothing(tmp_path):
    grid = [GiaExperiment(seed=s, epochs=u, **TINY) for s in range(2) for u in (1, 2)]
    run_grid(grid[:2], root=tmp_path, progress=False)  # as if interrupted after two runs
    resumed = run_grid(grid, root=tmp_path, progress=False)
    assert [r["cached"] for r in resumed] == [True, True, False, False]
    again = run_grid(grid, root=tmp_path, progress=False)
    assert all(r["cached"] for r in again)
    assert [r["local_updates"] for r in again] == [1, 2, 1, 2]


def test_impossible_experiment_is_rejected_at_construction():
    with pytest.raises(ValueError, match="batch_size must be in 1..N=2"):
        GiaExperiment(num_samples=2, batch_size=3)
    with pytest.raises(ValueError, match="labels must be"):
        GiaExperiment(labels="guess")


def test_the_protocol_not_the_prior_decides_whether_the_client_shares_bn_statistics():
    bn = dict(model="resnet18", model_options=(("width", 0.125),), attack=AttackConfig(priors=(("tv", 1e-4), ("bn", 1e-4))))
    level4 = GiaExperiment(share_bn_statistics=True, **bn)
    assert level4.victim()[3].bn_statistics  # the level-4 client sends its BatchNorm statistics …
    plain = GiaExperiment(model="resnet18", model_options=(("width", 0.125),))
    assert not plain.share_bn_statistics and plain.victim()[3].bn_statistics is None  # … an ordinary one does not
    with pytest.raises(ValueError, match=r"priors=.*'bn'.*share_bn_statistics=False"):
        GiaExperiment(**bn)  # the attacker cannot ask for what the client never sent


def test_profiles_override_only_what_is_given():
    cpu = get_profile("cpu", "training_setup", local_updates=[1, 2], gia_o_iterations=None).training_setup
    assert cpu.local_updates == (1, 2) and cpu.gia_o == PROFILES["cpu"].training_setup.gia_o
    assert get_profile("cpu", "training_setup") == PROFILES["cpu"]  # no override: the preset itself
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        get_profile("gpu")
    with pytest.raises(ValueError, match=r"unknown training_setup setting.*'iterations'.*gia_o_iterations"):
        get_profile("smoke", "training_setup", iterations=3)
    with pytest.raises(ValueError, match="need the section"):
        get_profile("smoke", local_updates=[1, 2])
    with pytest.raises(ValueError, match="local_updates must be a non-empty list of positive integers"):
        get_profile("smoke", "training_setup", local_updates=[1, 0])
    with pytest.raises(ValueError, match="table1_data must be a list of"):
        get_profile("smoke", "training_setup", table1_data=[["mnist", 4]])
    with pytest.raises(ValueError, match="model must be one of"):
        get_profile("smoke", "training_setup", model="vgg99")
    with pytest.raises(ValueError, match=r"gia_o_iterations: iterations must be an integer ≥ 1"):
        get_profile("smoke", "training_setup", gia_o_iterations=0)
    assert get_profile("smoke", "training_setup", table2_data=[["patches", 2]]).training_setup.table2_data == (
        ("patches", 2),)


def test_device_check_is_clear():
    assert check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        check_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            check_device("cuda")


def test_a_grid_announces_its_runs_and_estimated_time_before_computing(tmp_path, capsys):
    from giasok.runs import estimate

    short = [GiaExperiment(seed=s, **TINY) for s in range(3)]
    long = [dataclasses.replace(e, attack=e.attack.with_(iterations=2000)) for e in short]
    quick, slow = estimate(short, root=tmp_path), estimate(long, root=tmp_path)
    assert (quick.total, quick.cached) == (3, 0) and 0 < quick.seconds < slow.seconds  # measured per iteration
    assert "3 runs (0 cached, 3 to compute); estimated" in str(quick)
    run_grid(short[:2], root=tmp_path, progress=False)
    partial = estimate(short, root=tmp_path, workers=2)
    assert (partial.cached, partial.workers) == (2, 1) and partial.seconds > 0  # one run left: one worker
    run_grid(short, root=tmp_path, progress=True, desc="Table 9")
    assert "Table 9: 3 runs (2 cached, 1 to compute); estimated" in capsys.readouterr().out
    assert str(estimate(short, root=tmp_path)).endswith("(3 cached, 0 to compute)")
