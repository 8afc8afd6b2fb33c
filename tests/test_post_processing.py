"""§6 post-processing: the grids, the defended victim, the defended FedAvg, and Insight 6's claims — which
pass on agreeing numbers and FAIL on contradicting ones."""
import numpy as np
import pandas as pd
import pytest
import torch

from giasok import post_processing as pp
from giasok.profiles import PROFILES
from giasok.runs import FedAvgTraining, GiaExperiment, run

POINTS = [("none", None), ("Q", 2), ("Q", "sign"), ("S", 0.9), ("S", 0.6), ("C", 0.1), ("C", 0.01), ("P", 0.1),
          ("P", 0.25)]
VICTIMS = 5  # enough for a paired permutation test to reach p < 0.05 (2⁻⁵ = 0.03)


def _frames(accuracy: dict, psnr: dict):
    """Synthetic utility and privacy frames as run_utility / run_privacy build them: ``psnr`` maps
    (point, attack) to the mean PSNR; victims scatter ±0.4 dB around it, the same way for every cell."""
    label = {p: "none" if p[0] == "none" else f"{p[0]} {p[1]}" for p in POINTS}
    utility = pd.DataFrame([dict(defence=p[0], strength=p[1], point=label[p], accuracy=accuracy[label[p]], seconds=1.0)
                            for p in POINTS])
    base = utility.accuracy.iloc[0]
    utility["drop"] = (base - utility.accuracy) / base
    scatter = np.linspace(-0.4, 0.4, VICTIMS)
    rows = [dict(attack=a, defence=p[0], strength=p[1], point=label[p], seed=s, psnr=psnr[(label[p], a)] + scatter[s],
                 ssim=0.5, lpips=None, seconds=1.0, hash="x")
            for p in POINTS for a in ("GIA-O", "GIA-L", "ROG") for s in range(VICTIMS)]
    return utility, pd.DataFrame(rows)


AGREEING_ACCURACY = {"none": 0.8, "Q 2": 0.78, "Q sign": 0.7, "S 0.9": 0.79, "S 0.6": 0.7, "C 0.1": 0.7,
                     "C 0.01": 0.3, "P 0.1": 0.75, "P 0.25": 0.6}
AGREEING_PSNR = {}
for point, (o, l, r) in {"none": (24, 22, 23), "Q 2": (10, 11, 12), "Q sign": (9, 10, 11), "S 0.9": (20, 19, 21),
                         "S 0.6": (15, 14, 16), "C 0.1": (24, 22, 23), "C 0.01": (24, 22, 23.5),
                         "P 0.1": (19, 18, 20), "P 0.25": (14, 13, 16)}.items():
    AGREEING_PSNR.update({(point, "GIA-O"): o, (point, "GIA-L"): l, (point, "ROG"): r})


def test_insight_6_passes_on_agreeing_numbers():
    utility, privacy = _frames(AGREEING_ACCURACY, AGREEING_PSNR)
    claims = pp.insight_claims(utility, privacy, PROFILES["smoke"].post_processing)
    assert len(claims) == 6 and all(c.passed for c in claims), [(c.claim, c.ours) for c in claims if not c.passed]
    table = pp.trade_off(utility, privacy)
    assert pp.best_trade_off(table) == {"Q": "Q sign", "S": "S 0.6", "C": "C 0.1", "P": "P 0.25"}
    assert not table.loc["C 0.01", "acceptable"] and table.loc["Q 2", "protects"]


def test_insight_6_fails_on_contradicting_numbers():
    accuracy = dict(AGREEING_ACCURACY, none=0.1)  # FedAvg learned nothing
    psnr = dict(AGREEING_PSNR)
    for attack in ("GIA-O", "GIA-L", "ROG"):
        psnr[("none", attack)] = 10.0                   # no leak even without a defence
        psnr[("C 0.01", attack)] = 8.0                  # clipping stops the attack
        for point in ("Q 2", "Q sign"):
            psnr[(point, attack)] = 22.0                # quantisation is the worst defence
        for point in ("S 0.6", "P 0.25", "C 0.1"):
            psnr[(point, attack)] = 19.0                # nothing but clipping protects: "most" fails
    for point in ("Q sign", "S 0.6", "C 0.01", "P 0.25"):
        psnr[(point, "ROG")] = psnr[(point, "GIA-O")] - 3  # ROG does worse than GIA-O where it should do better
    utility, privacy = _frames(accuracy, psnr)
    claims = pp.insight_claims(utility, privacy, PROFILES["smoke"].post_processing)
    failed = {c.claim.split(":")[0].split(" (")[0] for c in claims if not c.passed}
    assert len(failed) == 6 == len(claims), [(c.claim, c.passed, c.ours) for c in claims]


def test_every_grid_can_be_built_and_the_paper_grid_is_appendix_b3():
    paper = PROFILES["paper"].post_processing
    assert (paper.clients, paper.samples_per_client, paper.participation, paper.batch_size, paper.epochs) == (
        100, 500, 0.1, 10, 1)
    assert (paper.victim_samples, paper.victim_batch_size) == (10, 10)
    from giasok.defenses import PAPER_GRID, strength_order

    assert dict(paper.defences) == {d: strength_order(d, v) for d, v in PAPER_GRID["resnet18"].items()}
    for name in PROFILES:
        sizes = PROFILES[name].post_processing
        utility = pp.utility_experiments(sizes, "cpu")
        privacy = pp.privacy_experiments(sizes, "cpu")
        points = pp.defence_points(sizes)
        assert [u.defense for u in utility] == points
        assert len(privacy) == len(points) * len(sizes.attacks) * sizes.victims
        assert {e.attack.method for _, _, e in privacy} == {"gia-o", "gia-l", "rog"}
    assert len(pp.privacy_experiments(PROFILES["cpu"].post_processing)) // 9 >= 3 * 3  # 3 attacks × ≥ 3 victims


def test_the_victim_shares_its_defended_update():
    tiny = dict(model_options=(("width", 4),))
    plain = GiaExperiment(**tiny).victim()[3]
    clipped = GiaExperiment(defense=("C", 1e-4), **tiny).victim()[3]
    norm = lambda u: float(torch.sqrt(sum(d.double().pow(2).sum() for d in u.delta.values())))  # noqa: E731
    assert norm(plain) > 1e-4 and norm(clipped) == pytest.approx(1e-4, rel=1e-6)
    assert clipped.defenses and clipped.defenses[0][0] == "clip" and not plain.defenses
    with pytest.raises(ValueError, match="defense must be"):
        GiaExperiment(defense=("X", 1), **tiny)


def test_defended_fedavg_is_cached_and_the_defence_changes_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GIASOK_RESULTS", str(tmp_path))
    training = FedAvgTraining(model="convnet", model_options=(("width", 4),), clients=4, samples_per_client=10,
                              batch_size=5, lr=0.05)
    plain = pp.DefendedTraining(training=training, rounds=2, participation=0.5)
    frozen = pp.DefendedTraining(training=training, rounds=2, participation=0.5, defense=("C", 1e-12))
    a, b = run(plain), run(frozen)
    assert 0 <= a["accuracy"] <= 1 and not a["cached"] and run(plain)["cached"]
    # a bound of 1e-12 freezes the model: its accuracy is the initial model's
    initial = training.test_accuracy(training.initial_model())
    assert b["accuracy"] == pytest.approx(initial)
