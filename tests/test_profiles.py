"""Profiles: `paper` is the paper's Appx B, `cpu` keeps several victims per cell, every section field can be set."""
import dataclasses

import pytest

from giasok.attacks import AttackConfig
from giasok.data_dimension import resolution_data
from giasok.profiles import PROFILES, SECTIONS, Profile, get_profile


def test_paper_profile_is_appendix_b():
    paper = PROFILES["paper"]
    setup, dimension, stage = paper.training_setup, paper.data_dimension, paper.training_stage
    # §4 (Appx B.I): ResNet-18 with PyTorch's default initialisation, priors 1e-5, 8000 / 400 + 6000 iterations
    assert setup.model == dimension.model == "resnet18" and dict(setup.model_options) == {}
    assert dict(setup.gia_o.priors) == {"tv": 1e-5} and dimension.prior_weight == 1e-5
    assert (setup.gia_o.iterations, setup.gia_l.iterations, setup.gia_l.generator_iterations) == (8000, 400, 6000)
    assert setup.gia_l == dimension.gia_l and dimension.gia_o.iterations == 8000
    # Fig. 4a: CIFAR10 at 32/64, ImageNet (BigGAN) at 128–512; Fig. 4b on CIFAR100 at 32²; Table 5 CIFAR10 × 10
    assert resolution_data(dimension, 64)[0] == "cifar10" and resolution_data(dimension, 256)[0] == "imagenet"
    assert dict(resolution_data(dimension, 128)[1]["generator_options"]) == {"biggan": "biggan-deep-256"}
    assert (dimension.batch_data, dimension.batch_resolution) == ("cifar100", 32)
    assert dimension.table5_seeds == dimension.wsrr_initialisations == 10
    assert len(stage.models) == 9 and stage.victims == 10 and stage.gia_o.iterations == 8000


def test_cpu_profile_has_several_victims_per_cell():
    cpu = PROFILES["cpu"]
    assert cpu.training_setup.seeds >= 3 and cpu.data_dimension.seeds >= 3
    assert cpu.data_dimension.table5_seeds >= 3 and cpu.training_stage.victims >= 3
    assert len(cpu.training_setup.generator_seeds) >= 3 and len(cpu.data_dimension.generator_seeds) >= 3


def test_a_profile_is_its_sections_named_after_their_modules():
    import importlib

    assert [f.name for f in dataclasses.fields(Profile)] == ["name", *SECTIONS]
    for name, sizes in SECTIONS.items():
        importlib.import_module(f"giasok.{name}")  # the section's module has the section's name
        assert all(isinstance(getattr(p, name), sizes) for p in PROFILES.values())


def test_every_section_field_can_be_overridden_and_is_checked():
    for section, sizes in SECTIONS.items():
        for f in dataclasses.fields(sizes):
            assert callable(f.metadata.get("check")), f"{section}.{f.name} has no check"
    changed = get_profile("cpu", "data_dimension", batch_data="cifar100")
    assert changed.data_dimension.batch_data == "cifar100"
    assert changed.training_setup == PROFILES["cpu"].training_setup  # other sections untouched
    with pytest.raises(ValueError, match="generator_seeds"):
        get_profile("cpu", "training_setup", generator_seeds=[-1])
    with pytest.raises(ValueError, match="bn_mode"):
        get_profile("cpu", "training_stage", bn_mode="frozen")
    with pytest.raises(ValueError, match="unknown section"):
        get_profile("cpu", "training_stages", rounds=3)


def test_attack_settings_are_overridden_through_the_one_config():
    sizes = get_profile("cpu", "training_setup", gia_o_iterations=300, gia_l_generator_lr=1e-3,
                        gia_o_priors=[["tv", 1e-3]]).training_setup
    assert sizes.gia_o == PROFILES["cpu"].training_setup.gia_o.with_(iterations=300, priors=(("tv", 1e-3),))
    assert sizes.gia_l.generator_lr == 1e-3 and isinstance(sizes.gia_o, AttackConfig)
    with pytest.raises(ValueError, match="gia_o_objective: unknown objective 'l1'"):
        get_profile("cpu", "training_setup", gia_o_objective="l1")
    with pytest.raises(ValueError, match="gia_o_priors: unknown prior"):
        get_profile("cpu", "training_stage", gia_o_priors={"tvv": 1e-4})


def test_attack_config_refuses_bad_settings():
    for bad, message in [(dict(method="gia-x"), "unknown attack method"), (dict(iterations=0), "iterations"),
                         (dict(lr=-1), "lr must be a positive"), (dict(restarts=1.5), "restarts"),
                         (dict(priors=[("tv",)]), "priors must be")]:
        with pytest.raises(ValueError, match=message):
            AttackConfig(**bad)
    with pytest.raises(TypeError, match="unknown attack setting.*'iteration'.*iterations"):
        AttackConfig().with_(iteration=3)
    assert AttackConfig(priors={"tv": 1e-4}) == AttackConfig(priors=(("tv", 1e-4),))  # a dict is kept in order


def test_every_paper_grid_can_be_built():
    # nothing at `paper` runs here (no GPU, no CIFAR), but its configurations must at least be valid
    from giasok import data_dimension as dd, training_setup as ts, training_stage as st

    paper = PROFILES["paper"]
    setup, dimension, stage = paper.training_setup, paper.data_dimension, paper.training_stage
    sizes = {name: len(grid(settings, "cuda")) for name, grid, settings in [
        ("Table 1", ts.table1_experiments, setup), ("Table 2", ts.table2_experiments, setup),
        ("Fig. 4a", dd.resolution_experiments, dimension), ("Fig. 4b", dd.batch_experiments, dimension),
        ("Table 5", dd.table5_experiments, dimension), ("Fig. 7", st.stage_experiments, stage)]}
    assert sizes["Table 1"] == 2 * 2 * 5 * setup.seeds                     # data sets × attacks × U × victims
    assert sizes["Table 5"] == 7 * 2 * 10 * 10                             # B × attacks × seeds × initialisations
    assert sizes["Fig. 7"] == 9 * 101                                      # models × rounds 0..100
    biggan = [e for a, e in dd.resolution_experiments(dimension, "cuda") if a == "G_L" and e.image_size >= 128]
    assert biggan and all(dict(e.attack.generator_options) == {"biggan": "biggan-deep-256"}
                          and e.dataset == "imagenet" for e in biggan)
