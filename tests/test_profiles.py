"""Profiles: `paper` is the paper's Appx B, `cpu` keeps several victims per cell, every field can be set."""
import dataclasses

import pytest

from giasok.data_dimension import resolution_data
from giasok.profiles import PROFILES, _CHECKS, get_profile


def test_paper_profile_is_appendix_b():
    paper = PROFILES["paper"]
    # §4 (Appx B.I): ResNet-18 with PyTorch's default initialisation, priors 1e-5, 8000 / 400 + 6000 iterations
    assert paper.model == paper.dimension_model == "resnet18" and dict(paper.model_options) == {}
    assert paper.tv_weight == paper.prior_weight == 1e-5
    assert (paper.attack_iterations, paper.latent_iterations, paper.generator_iterations) == (8000, 400, 6000)
    # Fig. 4a: CIFAR10 at 32/64, ImageNet (BigGAN) at 128–512; Fig. 4b on CIFAR100 at 32²; Table 5 CIFAR10 × 10
    assert resolution_data(paper, 64)[0] == "cifar10" and resolution_data(paper, 256)[0] == "imagenet"
    assert dict(resolution_data(paper, 128)[1]["generator_options"]) == {"biggan": "biggan-deep-256"}
    assert (paper.dimension_batch_data, paper.dimension_batch_resolution) == ("cifar100", 32)
    assert paper.table5_seeds == paper.wsrr_initialisations == 10
    assert len(paper.stages_models) == 9 and paper.stages_victims == 10


def test_cpu_profile_has_several_victims_per_cell():
    cpu = PROFILES["cpu"]
    assert cpu.seeds >= 3 and cpu.table5_seeds >= 3 and cpu.stages_victims >= 3
    assert len(cpu.generator_seeds) >= 3


def test_every_field_can_be_overridden_and_is_checked():
    fields = {f.name for f in dataclasses.fields(PROFILES["cpu"])} - {"name"}
    assert fields == set(_CHECKS)
    assert get_profile("cpu", dimension_batch_data="cifar100").dimension_batch_data == "cifar100"
    with pytest.raises(ValueError, match="generator_seeds"):
        get_profile("cpu", generator_seeds=[-1])
    with pytest.raises(ValueError, match="bn_mode"):
        get_profile("cpu", bn_mode="frozen")


def test_every_paper_grid_can_be_built():
    # nothing at `paper` runs here (no GPU, no CIFAR), but its configurations must at least be valid
    from giasok import data_dimension as dd, training_setup as ts, training_stage as st

    paper = PROFILES["paper"]
    sizes = {name: len(grid(paper, "cuda")) for name, grid in [
        ("Table 1", ts.table1_experiments), ("Table 2", ts.table2_experiments), ("Fig. 4a", dd.resolution_experiments),
        ("Fig. 4b", dd.batch_experiments), ("Table 5", dd.table5_experiments), ("Fig. 7", st.stage_experiments)]}
    assert sizes["Table 1"] == 2 * 2 * 5 * paper.seeds                     # data sets × attacks × U × victims
    assert sizes["Table 5"] == 7 * 2 * 10 * 10                             # B × attacks × seeds × initialisations
    biggan = [e for a, e in dd.resolution_experiments(paper, "cuda") if a == "G_L" and e.image_size >= 128]
    assert biggan and all(dict(e.generator_options) == {"biggan": "biggan-deep-256"} and e.dataset == "imagenet"
                          for e in biggan)
