"""§5.1: per-round evaluation of a FedAvg run, windows and per-victim rows (its claims: test_section_claims)."""
import numpy as np
import pandas as pd
import pytest

from giasok import training_stage as st
from giasok.attacks import AttackConfig
from giasok.runs import FedAvgTraining, run

FIVE_STEPS = AttackConfig(iterations=5, priors=(("tv", 1e-4),))  # plumbing, not a leak


def _frame(psnr, igsa, accuracy, model="m"):
    rounds = np.arange(len(psnr))
    frame = pd.DataFrame(dict(model=model, round=rounds, psnr=psnr, igsa=igsa, igsa_exact=igsa, accuracy=accuracy,
                              ssim=0.1, lpips=None, seed=0))
    for c in ("igsa", "igsa_exact"):
        frame[f"{c}_normalised"] = frame[c] / frame[c].max()
    return frame


def test_windows_average_consecutive_rounds():
    frame = _frame(psnr=[20, 18, 15, 11, 9], igsa=[5, 4, 3, 1, 0.5], accuracy=[0.1, 0.3, 0.5, 0.6, 0.7])
    table = st.windowed(frame, 2)
    assert table.psnr.tolist() == [19, 13, 9]
    assert table.rounds.tolist() == ["0–1", "2–3", "4–4"]


def test_a_round_is_evaluated_on_the_victims_of_client_zero_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GIASOK_RESULTS", str(tmp_path))  # the FedAvg checkpoints too
    training = FedAvgTraining(model="convnet", model_options=(("width", 4),), clients=2, samples_per_client=8,
                              batch_size=4, lr=0.05)
    evaluation = st.RoundEvaluation(training=training, round=1, victims=2, attack=FIVE_STEPS, igsa_samples=4)
    images, labels = evaluation.victim_samples()
    client_images, client_labels = training.client_data()[0]
    assert len(set(labels.tolist())) == 2
    assert all(any(bool((x == c).all()) for c in client_images) for x in images)
    result = run(evaluation)
    assert 0 <= result["accuracy"] <= 1 and result["igsa"] > 0 and result["igsa_exact"] > 0
    assert result["arrays"]["reconstruction"].shape == result["arrays"]["truth"].shape == (2, 3, 32, 32)
    assert np.isfinite(result["psnr"]) and not result["cached"]
    frame = pd.DataFrame([dict(model="convnet", round=1, accuracy=result["accuracy"])])
    victims = st.per_victim(frame, [result])
    assert len(victims) == 2 and victims.psnr.tolist() == pytest.approx(result["psnr_per_sample"])
    assert victims.igsa.mean() == pytest.approx(result["igsa"])  # the round's IGSA is the victims' mean
    again = run(evaluation)
    assert again["cached"] and again["psnr"] == result["psnr"]
    assert training.last_checkpoint(1) == 1


def test_too_many_victims_are_refused():
    training = FedAvgTraining(clients=1, samples_per_client=4, batch_size=4)
    with pytest.raises(ValueError, match="victims"):
        st.RoundEvaluation(training=training, round=0, victims=5).victim_samples()


def test_parallel_workers_give_the_same_numbers_as_one_process(tmp_path, monkeypatch):
    training = FedAvgTraining(model="lenet", clients=2, samples_per_client=8, batch_size=4, lr=0.05)
    experiments = [st.RoundEvaluation(training=training, round=t, victims=1, attack=FIVE_STEPS, igsa_samples=4)
                   for t in (0, 1, 2)]
    frames = []
    for workers in (1, 2):
        monkeypatch.setenv("GIASOK_RESULTS", str(tmp_path / f"workers-{workers}"))  # inherited by the workers
        frame, _ = st.run_stages(experiments, progress=False, workers=workers)
        frames.append(frame.drop(columns=["seconds"]))
    pd.testing.assert_frame_equal(*frames)
    assert training.last_checkpoint(2) == 2  # trained (in a worker) before the rounds were evaluated
