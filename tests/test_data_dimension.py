"""§4.2.1: Theorem 4.3's non-unique inverse, and Table 5's aggregation of BRR/WSRR."""
import pandas as pd
import pytest
import torch

from giasok.data_dimension import ATTACKS, non_unique_inverse, resolution_experiments, table5, table5_experiments
from giasok.profiles import get_profile


def test_two_different_inputs_share_one_gradient_when_p_is_below_d(one_patch):
    images, labels = one_patch
    twin = non_unique_inverse(images[0], int(labels[0]) % 2, seed=0)
    assert twin["parameters"] < twin["input_size"] and twin["jacobian_rank"] <= twin["parameters"]
    assert twin["input_distance"] > 0.05            # visibly different inputs …
    assert twin["gradient_distance"] < 1e-8         # … with the same gradient
    assert not torch.allclose(twin["x"], twin["x_other"])


def test_table5_aggregates_brr_over_samples_and_wsrr_over_initialisations():
    # one batch of 2 samples attacked from 2 initialisations, by one attack
    frame = pd.DataFrame([
        dict(attack="G_O+TV", batch=2, seed=0, psnr=21.0, lpips=None, psnr_per_sample=[25.0, 10.0], lpips_per_sample=None),
        dict(attack="G_O+TV", batch=2, seed=0, psnr=15.0, lpips=None, psnr_per_sample=[12.0, 10.0], lpips_per_sample=None),
    ])
    row = table5(frame).iloc[0]
    assert row.attack == "GIA-O" and row.brr == pytest.approx(25.0) and row.wsrr == pytest.approx(50.0)
    assert "PSNR > 18 dB only" in row.criterion


def test_experiment_grids_cover_every_attack_and_initialisation():
    settings = get_profile("smoke").data_dimension
    grid = resolution_experiments(settings)
    assert {a for a, _ in grid} == set(ATTACKS) and {e.image_size for _, e in grid} == set(settings.resolutions)
    assert all(e.bn_mode == settings.bn_mode for _, e in grid)
    bn = [e for a, e in grid if a == "G_O+BN"]
    assert all(dict(e.attack.priors).keys() == {"bn"} and e.share_bn_statistics for e in bn)
    assert not any(e.share_bn_statistics for a, e in grid if a != "G_O+BN")  # only level 4 shares them
    t5 = table5_experiments(settings)
    seeds = {(e.num_samples, e.seed, e.attack.method): set() for _, e in t5}
    for _, e in t5:
        seeds[(e.num_samples, e.seed, e.attack.method)].add(e.attack_seed)
    assert all(len(s) == settings.wsrr_initialisations for s in seeds.values())
