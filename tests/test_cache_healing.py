"""A damaged cache entry (result, FedAvg checkpoint, trained generator) is set aside and recomputed, and the
tally of results computed vs loaded from the cache."""
import re
import warnings

import pytest
import torch

import giasok.generative as generative
import giasok.runs as runs
from giasok.attacks import AttackConfig
from giasok.generative import DCGANConfig, generator_path, train_dcgan
from giasok.runs import FedAvgTraining, GiaExperiment, reset_tally, result_paths, run, run_grid, tally

TINY = dict(model_options=(("width", 4),), attack=AttackConfig(priors=(("tv", 1e-4),), iterations=5))
FEDAVG = dict(model="convnet", model_options=(("width", 4),), clients=2, samples_per_client=8, batch_size=4,
              lr=0.05)
DCGAN = dict(iterations=20, width=8, batch_size=16)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGES = {
    "truncated json": ("json", _truncate),
    "json list": ("json", lambda path: path.write_text("[1, 2]")),
    "garbage npz": ("npz", lambda path: path.write_bytes(b"not an npz file at all" * 10)),
    "truncated npz": ("npz", _truncate),
}


def _aside(path):
    """The files ``path`` was set aside as."""
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_result_is_set_aside_and_recomputed(tmp_path, damage):
    config, sibling = GiaExperiment(**TINY), GiaExperiment(seed=1, **TINY)
    first = run(config, root=tmp_path)
    run(sibling, root=tmp_path)
    sibling_bytes = {k: p.read_bytes() for k, p in result_paths(sibling, tmp_path).items()}
    files = result_paths(config, tmp_path)
    kind, spoil = DAMAGES[damage]
    spoil(files[kind])
    damaged_bytes = files[kind].read_bytes()

    with pytest.warns(RuntimeWarning, match=re.escape(str(files[kind]))):
        healed = run(config, root=tmp_path)
    assert not healed["cached"] and healed["psnr"] == first["psnr"]
    assert (healed["arrays"]["reconstruction"] == first["arrays"]["reconstruction"]).all()
    [aside] = _aside(files[kind])  # kept, renamed, with its damaged bytes
    assert aside.read_bytes() == damaged_bytes
    assert re.fullmatch(rf"{files[kind].name}\.damaged-\d{{8}}T\d{{6}}", aside.name)
    assert all(len(_aside(p)) == 1 for p in files.values())  # the whole entry, png too, set aside together
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        again = run(config, root=tmp_path)
    assert again["cached"] and again["psnr"] == first["psnr"]
    assert {k: p.read_bytes() for k, p in result_paths(sibling, tmp_path).items()} == sibling_bytes
    assert not _aside(result_paths(sibling, tmp_path)["json"])


def test_an_entry_damaged_twice_in_one_second_keeps_both_copies(tmp_path):
    config = GiaExperiment(**TINY)
    run(config, root=tmp_path)
    json_file = result_paths(config, tmp_path)["json"]
    for text in ("{", "[]"):
        json_file.write_text(text)
        with pytest.warns(RuntimeWarning, match=re.escape(json_file.name)):
            assert not run(config, root=tmp_path)["cached"]
    assert sorted(p.read_text() for p in _aside(json_file)) == ["[]", "{"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_grid_recomputes_a_damaged_entry_and_counts_it_as_computed(tmp_path, workers):
    damaged, healthy = GiaExperiment(**TINY), GiaExperiment(seed=1, **TINY)
    before = run_grid([damaged, healthy], root=tmp_path, progress=False)
    json_file = result_paths(damaged, tmp_path)["json"]
    _truncate(json_file)
    healthy_bytes = result_paths(healthy, tmp_path)["npz"].read_bytes()
    reset_tally()
    with pytest.warns(RuntimeWarning, match=re.escape(json_file.name)):
        after = run_grid([damaged, healthy], root=tmp_path, progress=False, workers=workers)
    assert tally() == {"computed": 1, "loaded": 1}
    assert [r["psnr"] for r in after] == [r["psnr"] for r in before]
    assert after[1]["cached"] and result_paths(healthy, tmp_path)["npz"].read_bytes() == healthy_bytes
    assert len(_aside(json_file)) == 1 and run(damaged, root=tmp_path)["cached"]


def test_the_tally_counts_what_workers_computed_once_as_computed(tmp_path):
    grid = [GiaExperiment(**TINY), GiaExperiment(seed=1, **TINY)]
    reset_tally()
    assert tally() == {"computed": 0, "loaded": 0}
    run_grid(grid, root=tmp_path, progress=False, workers=2)
    assert tally() == {"computed": 2, "loaded": 0}
    run_grid(grid, root=tmp_path, progress=False, workers=2)
    assert tally() == {"computed": 2, "loaded": 2}
    run(grid[0], root=tmp_path)
    counts = tally()
    assert counts == {"computed": 2, "loaded": 3}
    counts["loaded"] = 99  # a copy
    assert tally()["loaded"] == 3
    reset_tally()  # a config twice in one grid: computed once, then loaded, as with workers=1
    run_grid([grid[0], grid[0]], root=tmp_path / "twice", progress=False, workers=2)
    assert tally() == {"computed": 1, "loaded": 1}
    reset_tally()
    run_grid([grid[1], grid[1]], root=tmp_path / "twice", progress=False, workers=1)
    assert tally() == {"computed": 1, "loaded": 1}


def test_an_unreadable_fedavg_checkpoint_is_set_aside_and_its_rounds_retrained(tmp_path, monkeypatch):
    training = FedAvgTraining(**FEDAVG)
    monkeypatch.setenv("GIASOK_RESULTS", str(tmp_path / "clean"))
    reference = training.global_model(3, progress=False).state_dict()
    monkeypatch.setenv("GIASOK_RESULTS", str(tmp_path / "damaged"))
    training.global_model(3, progress=False)
    third, second = training.checkpoint_path(3), training.checkpoint_path(2)
    _truncate(third)
    second.write_bytes(b"garbage" * 50)
    starts, real_rounds = [], runs.fedavg_rounds

    def spy(*args, **kwargs):
        starts.append(kwargs["start"])
        return real_rounds(*args, **kwargs)

    monkeypatch.setattr(runs, "fedavg_rounds", spy)
    reset_tally()

    with pytest.warns(RuntimeWarning) as record:
        model = training.global_model(3, progress=False)
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert any(str(third) in m for m in messages) and any(str(second) in m for m in messages)
    assert starts == [1]  # resumed from the latest readable checkpoint, not from round 0
    state = model.state_dict()
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    assert len(_aside(third)) == 1 and len(_aside(second)) == 1 and third.exists() and second.exists()
    assert tally() == {"computed": 0, "loaded": 0}  # rounds are not results
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        again = training.global_model(3, progress=False).state_dict()
    assert starts == [1] and all(torch.equal(again[k], reference[k]) for k in again)


@pytest.mark.parametrize("damage", ["truncated", "weights of another generator"])
def test_an_unreadable_generator_is_set_aside_and_retrained(tmp_path, monkeypatch, damage):
    first = train_dcgan("patches", 16, root=tmp_path, progress=False, **DCGAN).state_dict()
    path = generator_path(DCGANConfig("patches", 16, **DCGAN), tmp_path)
    if damage == "truncated":
        _truncate(path)
    else:
        torch.save(generative.DCGANGenerator(16, 100, 4).state_dict(), path)
    damaged_bytes = path.read_bytes()

    with pytest.warns(RuntimeWarning, match=re.escape(str(path))):
        healed = train_dcgan("patches", 16, root=tmp_path, progress=False, **DCGAN).state_dict()
    assert healed.keys() == first.keys() and all(torch.equal(healed[k], first[k]) for k in first)
    [aside] = _aside(path)
    assert aside.read_bytes() == damaged_bytes
    monkeypatch.setattr(generative, "_fit", lambda *a, **k: pytest.fail("retrained instead of loading"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        again = train_dcgan("patches", 16, root=tmp_path, progress=False, **DCGAN).state_dict()
    assert all(torch.equal(again[k], first[k]) for k in first)
