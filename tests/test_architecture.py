"""§5.2 architecture: the partial-update attack of Table 3, the Eq. 12 decomposition that explains Fig. 9, the
experiment grid, and Insights 5.2.1–5.2.2's claims — which pass on agreeing numbers and FAIL on contradicting ones."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from giasok import architecture as ar
from giasok.attacks import invert
from giasok.fl import client_update
from giasok.models import build_model, inception_blocks, parameter_names
from giasok.profiles import PROFILES
from giasok.runs import GiaExperiment, ModuleGradientExperiment

VICTIMS = 5  # enough for a paired permutation test to reach p < 0.05 (2⁻⁵ = 0.03)
SETTINGS = dataclasses.replace(PROFILES["smoke"].architecture, victims=VICTIMS)


@pytest.fixture(scope="module")
def rows():
    return ar.architecture_experiments(SETTINGS)


def test_grid_has_every_variant_on_the_same_victims(rows):
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "experiment"} for r in rows])
    skips = frame[frame.study == "skip"]
    assert sorted(skips.variant.unique()) == sorted(["N"] + [f"#{i}" for i in range(8)])  # ResNet-18: blocks #0–#7
    cut = next(r["experiment"] for r in rows if r["study"] == "skip" and r["variant"] == "#3")
    assert dict(cut.model_options)["cut_skips"] == (3,)
    assert (frame.groupby(["study", "model", "variant"]).victim.nunique() == VICTIMS).all()
    # victims are the same data seeds in every cell, so cells compare paired
    seeds = {(r["study"], r["variant"]): r["experiment"].seed for r in rows if r["victim"] == 2}
    assert set(seeds.values()) == {2}
    nin = [r["experiment"] for r in rows if r["study"] == "nin"]
    blocks = inception_blocks(build_model("googlenet", 10, seed=0, **dict(SETTINGS.nin_models[0][1])))
    assert [e.observed_module for e in nin if isinstance(e, ModuleGradientExperiment)][::VICTIMS] == \
        blocks[:SETTINGS.nin_blocks]
    micro = {r["variant"]: dict(r["experiment"].model_options) for r in rows if r["study"] == "micro"}
    assert micro["remove ReLU"]["activation"] is False and micro["kernel 1"]["kernel_size"] == 1
    assert micro["none"]["dropout"] == 0.5 and micro["none"]["image_size"] == SETTINGS.image_size
    modes = {(r["model"], r["experiment"].bn_mode) for r in rows if r["study"] == "beyond"}
    assert modes == {(m, mode) for m in ("ResNet-18", "pre-act ResNet-18", "ConvNet") for mode in ("eval", "train")}


def test_a_block_only_attack_matches_exactly_that_block():
    model = build_model("googlenet", 10, seed=0, width=0.125)
    block = inception_blocks(model)[0]
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([3])
    update = client_update(model, images, labels, lr=0.1, bn_mode="eval")
    names = parameter_names(model, block)
    part = update.restricted(names)
    assert set(part.delta) == set(names) and len(names) < len(update.delta)
    # what lies outside the block cannot move the attack: scramble it, restrict, and get the same reconstruction
    scrambled = dataclasses.replace(update, delta={k: (v if k in names else torch.randn_like(v))
                                                   for k, v in update.delta.items()})
    attack = dict(iterations=4, lr=0.1, labels=labels, seed=1)
    a = invert(model, part, **attack).images
    b = invert(model, scrambled.restricted(names), **attack).images
    full = invert(model, update, **attack).images
    assert torch.equal(a, b) and not torch.equal(a, full)
    with pytest.raises(ValueError, match="unknown"):
        update.restricted(["net.nonexistent.weight"])
    with pytest.raises(ValueError, match="pass the labels"):
        invert(model, part, iterations=2)


def test_module_gradient_experiment_shares_the_victim_and_restricts_the_update():
    common = dict(image_size=16, model="googlenet", model_options=(("width", 0.125),), bn_mode="eval")
    whole = GiaExperiment(**common)
    block = inception_blocks(build_model("googlenet", 10, seed=0, width=0.125))[1]
    part = ModuleGradientExperiment(**common, observed_module=block)
    images, labels, model, update = whole.victim()
    images2, labels2, _, restricted = part.victim()
    assert torch.equal(images, images2) and torch.equal(labels, labels2)
    assert set(restricted.delta) == set(parameter_names(model, block))
    assert all(torch.equal(restricted.delta[k], update.delta[k]) for k in restricted.delta)
    with pytest.raises(ValueError, match="observed_module"):
        ModuleGradientExperiment(**common)
    with pytest.raises(ValueError, match="labels"):
        ModuleGradientExperiment(**common, observed_module=block, labels="inferred")


def test_the_skip_and_branch_terms_add_up_to_the_input_gradient():
    model = build_model("resnet18", 10, seed=0, width=0.125).eval()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    terms = ar.residual_gradients(model, images, torch.tensor([1, 7]))
    assert len(terms) == 8
    for g_skip, g_branch, g_input in terms:
        # two float32 sums of the same terms in a different order: a few ulps of the largest entry
        scale = g_input.abs().max()
        assert torch.allclose(g_skip + g_branch, g_input, rtol=0, atol=float(scale) * 1e-5)
        assert g_skip.norm() > 0 and g_branch.norm() > 0
    assert all(p.grad is None for p in model.parameters())  # the measurement leaves the model clean


def _frame(rows, psnr):
    """A synthetic run_architecture frame: ``psnr(row)`` is the cell's mean; victims scatter ±0.4 dB around it,
    the same way in every cell."""
    scatter = np.linspace(-0.4, 0.4, VICTIMS)
    return pd.DataFrame([dict({k: v for k, v in r.items() if k != "experiment"},
                              psnr=psnr(r) + scatter[r["victim"]], ssim=0.5, lpips=np.nan, seconds=1.0, hash="x")
                         for r in rows])


PAPER_SIGN = {name: sign for name, (_, sign) in ar.PAPER_TABLE4.items()}


def agreeing(row):
    study, position, variant = row["study"], row["position"], row["variant"]
    if study == "skip":
        return 24.0 if position == 0 else 10.0 + position  # every cut worse, deeper cuts less so
    if study == "dense":
        return 22.0 - 5 * position  # dense > shortnet1 > shortnet2
    if study == "nin":
        return 12.0 if position == 0 else 20.0  # each block beats the full gradient
    if study == "micro":
        return 25.0 + (0 if variant == "none" else 3 if PAPER_SIGN[variant] == "+" else -3)
    model_bonus = 2.0 if row["model"] == "pre-act ResNet-18" else 0.0
    return (24.0 if variant == "eval mode" else 11.0) + model_bonus


def test_insights_5_2_pass_on_agreeing_numbers(rows):
    frame = _frame(rows, agreeing)
    claims = ar.insight_claims(frame, SETTINGS)
    assert len(claims) == 8
    assert all(c.passed for c in claims), [(c.claim, c.ours) for c in claims if not c.passed]
    table = ar.micro_table(frame)
    assert table.loc["remove ReLU", "ours"] == "+" and table.loc["kernel 1", "ours"] == "−"
    assert table.drop(index="none").agree.all()


def test_insights_5_2_fail_on_contradicting_numbers(rows):
    def contradicting(row):
        study, position, variant = row["study"], row["position"], row["variant"]
        if study == "skip":
            return 12.0 if position == 0 else 30.0 - position  # cuts help, and deep cuts less
        if study == "dense":
            return 10.0 + 5 * position  # fewer connections, better attack
        if study == "nin":
            return 20.0 if position == 0 else 12.0  # blocks worse than the full gradient
        if study == "micro":
            return 25.0 + (0 if variant == "none" else -3 if PAPER_SIGN[variant] == "+" else 3)
        return (11.0 if variant == "eval mode" else 24.0) + (0.0 if row["model"] == "pre-act ResNet-18" else 2.0)

    claims = ar.insight_claims(_frame(rows, contradicting), SETTINGS)
    assert len(claims) == 8
    assert not any(c.passed for c in claims), [(c.claim, c.ours) for c in claims if c.passed]


def test_a_modification_that_changes_nothing_does_not_agree_with_either_sign(rows):
    frame = _frame(rows, lambda r: 25.0 if r["study"] == "micro" else agreeing(r))
    table = ar.micro_table(frame)
    assert (table.drop(index="none").ours == "0").all() and not table.drop(index="none").agree.any()
    claim = next(c for c in ar.insight_claims(frame, SETTINGS) if "micro-design" in c.claim)
    assert not claim.passed


def test_paper_and_cpu_profiles_cover_the_paper_grid():
    paper, cpu = PROFILES["paper"].architecture, PROFILES["cpu"].architecture
    assert [m for m, _ in paper.skip_models] == ["resnet18", "resnet34"]
    assert [m for m, _ in paper.dense_models] == ["densenet43", "densenet53"]
    assert [m for m, _ in paper.nin_models] == ["googlenet", "inception_v3"] and paper.nin_blocks == 4
    assert set(paper.micro_designs) == set(ar.PAPER_TABLE4) - {"none"}
    assert paper.data == "cifar10" and paper.image_size == 32 and paper.gia_o.iterations == 8000
    # at 16² Table 4's 4×4 kernel leaves nothing for the second max-pool; the cpu profile runs the other eight
    assert cpu.victims >= 3 and set(cpu.micro_designs) == set(paper.micro_designs) - {"kernel 4"}
    assert [m for m, _ in cpu.skip_models] == ["resnet18", "resnet34"]  # every skip of both, also at cpu
    with pytest.raises(ValueError, match="'kernel 4' cannot run at image_size=16"):
        ar.architecture_experiments(dataclasses.replace(cpu, micro_designs=("kernel 4",)))
