"""§6 post-processing defences (giasok.defenses): each test checks the arithmetic a defence promises, with a
tolerance derived in a comment from float32 rounding (u = 2⁻²⁴) or from the sampling distribution at a fixed
seed; FedAvg with a defence and with partial participation is checked at the end."""
import dataclasses
import math

import pytest
import scipy.stats
import torch

from giasok import defenses
from giasok.fl import ClientUpdate, fedavg_round
from giasok.models import build_model

U = 2.0 ** -24  # float32 unit roundoff


def _update(seed=0, sizes=((1000,), (7, 3), (4,)), scale=1e-2, lr=0.1):
    g = torch.Generator().manual_seed(seed)
    delta = {f"p{i}": torch.randn(size, generator=g) * scale for i, size in enumerate(sizes)}
    return ClientUpdate(delta=delta, lr=lr, epochs=1, batch_size=1, num_samples=1, batches=(torch.arange(1),),
                        buffers={}, image_shape=(3, 32, 32))


def _copy(update):
    return {k: v.clone() for k, v in update.delta.items()}


def _unchanged(update, before):
    return update.defenses == () and all(torch.equal(update.delta[k], v) for k, v in before.items())


def _flat(delta):
    return torch.cat([d.double().flatten() for d in delta.values()])


# ---------------------------------------------------------------- QSGD


@pytest.mark.parametrize("bits, scaling", [(1, "max"), (2, "max"), (4, "max"), (2, "l2")])
def test_qsgd_is_unbiased_and_within_alistarhs_variance_bound(bits, scaling):
    update = _update(sizes=((1000,),))
    v = update.delta["p0"].double()
    draws = 2000
    mean = sum(defenses.quantize(update, bits, seed=s, scaling=scaling).delta["p0"].double()
               for s in range(draws)) / draws
    s = 2 ** bits - 1
    scale = v.abs().max() if scaling == "max" else v.norm()
    # exact variance of one entry: the level ⌊a⌋ or ⌊a⌋ + 1 (a = |v|/scale·s) with P(up) = p = frac(a), step scale/s
    p = v.abs() / scale * s - (v.abs() / scale * s).floor()
    variance = (scale / s) ** 2 * p * (1 - p)
    # unbiased ⇒ Σ sign(v_i)(mean_i − v_i) has mean 0 and variance Σ var_i / draws (independent entries and draws):
    # a z-score, N(0, 1) by the CLT over 2000·1000 terms; |z| < 4.5 fails an unbiased quantiser with P ≈ 7e-6.
    # Sign-weighted so that shrinking (or inflating) magnitudes, which cancels in a plain sum, is caught.
    z = float((v.sign() * (mean - v)).sum() / (variance.sum() / draws).sqrt())
    assert abs(z) < 4.5
    # draws·‖mean − v‖² has expectation Σ var_i ≤ min(n/s², √n/s)·‖v‖² (Alistarh et al. Lemma 3.1) and, each
    # mean_i being ≈ normal, variance 2·Σ var_i²: within 5 standard deviations of Σ var_i, and below the lemma
    squared = float(draws * (mean - v).pow(2).sum())
    spread = 5 * math.sqrt(2 * float(variance.pow(2).sum()))
    assert abs(squared - float(variance.sum())) < spread
    n = v.numel()
    assert squared <= min(n / s ** 2, math.sqrt(n) / s) * float(v.pow(2).sum())


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_qsgd_uses_at_most_2_to_the_bits_magnitudes_per_tensor_and_keeps_the_input(bits):
    update = _update()
    before = _copy(update)
    quantised = defenses.quantize(update, bits, seed=3)
    assert _unchanged(update, before)
    assert quantised.defenses == (("quantize", (("bits", bits), ("scaling", "max"), ("seed", 3))),)
    s = 2 ** bits - 1
    for name, v in before.items():
        q = quantised.delta[name]
        magnitudes = q.abs().unique()
        assert len(magnitudes) <= 2 ** bits
        levels = q.double().abs() / float(v.abs().max()) * s
        # each value is scale·l/s rounded to float32 once (relative error ≤ u), so l is within s·u of an integer
        assert torch.allclose(levels, levels.round(), rtol=0, atol=4 * s * U)
        assert bool((q * v >= 0).all())  # the sign is kept
        # the largest entry sits exactly on the top level, so it is reproduced exactly
        assert float(q.abs().max()) == pytest.approx(float(v.abs().max()), rel=2 * U)
    again = defenses.quantize(update, bits, seed=3)
    assert all(torch.equal(again.delta[k], quantised.delta[k]) for k in before)


def test_an_all_zero_tensor_stays_zero():
    update = dataclasses.replace(_update(sizes=((5,),)), delta={"p0": torch.zeros(5)})
    assert torch.equal(defenses.quantize(update, 2).delta["p0"], torch.zeros(5))


# ---------------------------------------------------------------- SignSGD


def test_sign_is_plus_or_minus_lr_with_zero_kept():
    update = _update(lr=0.05)
    update.delta["p2"][1] = 0.0  # a parameter that got no gradient
    signed = defenses.sign(update)
    for name, d in update.delta.items():
        assert torch.equal(signed.delta[name], torch.sign(d) * 0.05)
        # read as a gradient, the update is ROG's decoded ±1 (0 for a zero entry)
        assert torch.equal(signed.as_gradient()[name], -torch.sign(d))
    assert signed.delta["p2"][1] == 0
    assert signed.defenses == (("sign", (("lr", 0.05),)),)


# ---------------------------------------------------------------- top-k


@pytest.mark.parametrize("keep", [0.55, 0.6, 0.7, 0.9, 0.95])
def test_topk_keeps_exactly_the_share_of_largest_entries(keep):
    update = _update(sizes=((1000,), (7, 3), (100,), (1,)))
    before = _copy(update)
    sparse = defenses.sparsify(update, keep)
    assert _unchanged(update, before)
    for name, d in before.items():
        n = d.numel()
        kept = sparse.delta[name] != 0
        # ⌈keep·n⌉ in exact arithmetic: keep is a decimal with two digits, so ⌈keep·100·n / 100⌉ in integers
        assert int(kept.sum()) == -(-round(keep * 100) * n // 100)
        assert torch.equal(sparse.delta[name][kept], d[kept])  # kept values untouched
        if not kept.all():
            assert float(d[kept].abs().min()) >= float(d[~kept].abs().max())
    assert sparse.defenses == (("sparsify", (("keep", keep),)),)


def test_topk_with_keep_one_is_the_identity():
    update = _update()
    assert all(torch.equal(defenses.sparsify(update, 1).delta[k], v) for k, v in update.delta.items())


# ---------------------------------------------------------------- clipping


def test_clipping_bounds_the_flat_norm_and_keeps_the_direction():
    update = _update(scale=1.0)
    norm = float(_flat(update.delta).norm())
    bound = norm / 7
    before = _copy(update)
    clipped = defenses.clip(update, bound)
    assert _unchanged(update, before)
    x, y = _flat(update.delta), _flat(clipped.delta)
    # each entry is x_i·f with f and the product each rounded to float32: relative error ≤ 2u, so the norm is
    # within bound·(1 ± 2u) (norms here in float64, exact enough)
    assert bound * (1 - 2 * U) <= float(y.norm()) <= bound * (1 + 2 * U)
    # direction: y_i/‖y‖ − x_i/‖x‖ = x_i/‖x‖·(δ_i − ε)/(1 + ε) with |δ_i|, |ε| ≤ 2u, so ≤ 4u·|x_i|/‖x‖ (+ float64)
    assert bool(((y / y.norm() - x / x.norm()).abs() <= (4 * U + 1e-12) * x.abs() / x.norm()).all())
    assert clipped.defenses == (("clip", (("bound", bound),)),)


def test_clipping_within_the_bound_changes_nothing():
    update = _update()
    clipped = defenses.clip(update, float(_flat(update.delta).norm()) * 1.01)
    assert all(torch.equal(clipped.delta[k], v) for k, v in update.delta.items())


# ---------------------------------------------------------------- perturbation


def test_noise_has_the_stated_sigma():
    update = _update(sizes=((150_000,), (200, 250)), scale=1e-3)
    multiplier = 0.1
    noisy = defenses.perturb(update, multiplier, seed=5)
    flat = _flat(update.delta)
    sigma = multiplier * float(flat.norm()) / flat.numel() ** 0.5  # no clip recorded: S = RMS entry, ‖Δ‖/√n
    assert dict(noisy.defenses[-1][1])["sigma"] == pytest.approx(sigma, rel=1e-12)
    noise = _flat(noisy.delta) - _flat(update.delta)
    n = noise.numel()
    # (n − 1)·s²/σ² ~ χ²(n − 1) for Gaussian noise of std σ: a two-sided 99.9 % interval at this fixed seed.
    # The float32 rounding of Δ + noise (relative 2⁻²⁴ of a value ≈ σ) moves s by ~1e-7·σ, far inside the interval.
    low, high = scipy.stats.chi2.ppf([0.0005, 0.9995], n - 1)
    assert low <= (n - 1) * float(noise.var()) / sigma ** 2 <= high
    # the mean: |mean| < 4 σ/√n (P ≈ 6e-5 for N(0, σ²/n))
    assert abs(float(noise.mean())) < 4 * sigma / math.sqrt(n)
    same = defenses.perturb(update, multiplier, seed=5)
    other = defenses.perturb(update, multiplier, seed=6)
    assert all(torch.equal(same.delta[k], noisy.delta[k]) for k in update.delta)
    assert not any(torch.equal(other.delta[k], noisy.delta[k]) for k in update.delta)


def test_clip_then_perturb_records_both_in_order_and_noise_scales_with_the_clip_bound():
    update = _update(sizes=((100_000,),))
    clipped = defenses.clip(update, 1e-3)
    noisy = defenses.perturb(clipped, 0.2, seed=1)
    assert [name for name, _ in noisy.defenses] == ["clip", "perturb"]
    record = dict(noisy.defenses[1][1])
    assert record["bound"] == 1e-3 and record["sigma"] == pytest.approx(0.2 * 1e-3)
    std = float((_flat(noisy.delta) - _flat(clipped.delta)).std())
    # 100 000 samples: the sample std is within ±1 % of σ with ≥ 99.9 % probability (s/σ ≈ 1 ± 3.3/√(2n) = ±0.74 %)
    assert std == pytest.approx(2e-4, rel=0.01)
    assert defenses.perturb(update, 0.0).delta["p0"].equal(update.delta["p0"])


# ---------------------------------------------------------------- parameters, apply, grids


@pytest.mark.parametrize("call, message", [
    (lambda u: defenses.quantize(u, 0), "bits must be an integer ≥ 1"),
    (lambda u: defenses.quantize(u, 2.0), "bits must be an integer ≥ 1"),
    (lambda u: defenses.quantize(u, 2, scaling="mean"), "unknown scaling 'mean'"),
    (lambda u: defenses.quantize(u, 2, seed=-1), "seed must be an integer ≥ 0"),
    (lambda u: defenses.sparsify(u, 0), r"keep must be a share in \(0, 1\]"),
    (lambda u: defenses.sparsify(u, 1.5), r"keep must be a share in \(0, 1\]"),
    (lambda u: defenses.clip(u, 0), "bound must be a number > 0"),
    (lambda u: defenses.clip(u, -0.1), "bound must be a number > 0"),
    (lambda u: defenses.perturb(u, -0.1), "multiplier must be a number ≥ 0"),
    (lambda u: defenses.perturb(u, 0.1, bound=0), "bound must be None or a number > 0"),
    (lambda u: defenses.apply(u, "X", 1), "unknown defence 'X'"),
    (lambda u: defenses.apply(u, "none", 1), "defence 'none' takes strength None"),
])
def test_bad_parameters_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(_update())


def test_apply_maps_the_papers_names_to_the_defences():
    update = _update()
    assert defenses.apply(update, "none", None) is update
    assert defenses.apply(update, "Q", 2, seed=4).delta["p0"].equal(defenses.quantize(update, 2, seed=4).delta["p0"])
    assert defenses.apply(update, "Q", "sign").defenses[0][0] == "sign"
    assert defenses.apply(update, "S", 0.9).defenses[0] == ("sparsify", (("keep", 0.9),))
    assert defenses.apply(update, "C", 0.1).defenses[0] == ("clip", (("bound", 0.1),))
    assert defenses.apply(update, "P", 0.1, seed=2).delta["p0"].equal(defenses.perturb(update, 0.1, seed=2).delta["p0"])


def test_paper_grid_and_strength_order():
    grid = defenses.PAPER_GRID
    assert grid["resnet18"]["C"] == (0.5, 0.3, 0.1, 0.05, 0.01) and grid["swin"]["C"] == (1, 0.7, 0.5, 0.3, 0.1)
    assert grid["swin"]["P"] == (0.005, 0.007, 0.01, 0.03, 0.05)
    assert defenses.strength_order("Q", grid["resnet18"]["Q"]) == (4, 3, 2, 1, "sign")
    assert defenses.strength_order("S", grid["swin"]["S"]) == (0.95, 0.9, 0.8, 0.7, 0.6)
    assert defenses.strength_order("C", (0.01, 0.5, 0.1)) == (0.5, 0.1, 0.01)
    assert defenses.strength_order("P", (0.25, 0.05, 0.1)) == (0.05, 0.1, 0.25)
    with pytest.raises(ValueError, match="unknown defence"):
        defenses.strength_order("X", (1,))


# ---------------------------------------------------------------- FedAvg with a defence


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_fedavg_with_clipped_updates_moves_the_model_by_at_most_the_bound():
    model = build_model("convnet", 10, seed=0, width=4)
    clients = [_data(4, seed=1), _data(6, seed=2), _data(2, seed=3)]
    bound = 1e-3
    plain, raw = fedavg_round(model, clients, lr=0.1, batch_size=2, seed=0)
    new, updates = fedavg_round(model, clients, lr=0.1, batch_size=2, seed=0,
                                defense=lambda u, s: defenses.clip(u, bound))
    assert all(u.defenses == (("clip", (("bound", bound),)),) for u in updates)
    old = dict(model.named_parameters())

    def moved(m):
        return math.sqrt(sum(float((p.detach().double() - old[k].detach().double()).pow(2).sum())
                             for k, p in m.named_parameters()))

    assert moved(plain) > 10 * bound  # without the defence the model moves much further: the bound binds
    # ‖Σ w_k Δ_k‖ ≤ Σ w_k ‖Δ_k‖ ≤ bound·(1 + 2u); the weighted sum and W + Δ are rounded to float32 once more per
    # entry, adding at most ~u·(‖W‖ + 3·bound) to the measured change
    weights = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in model.parameters()))
    assert moved(new) <= bound * (1 + 2 * U) + 2 * U * (weights + 3 * bound)


def test_participation_samples_that_many_clients_per_round():
    model = build_model("convnet", 10, seed=0, width=4)
    clients = [_data(2, seed=k) for k in range(4)]
    calls = []

    def counting(update, seed):
        calls.append(seed)
        return update

    _, updates = fedavg_round(model, clients, lr=0.1, seed=10, defense=counting, participation=0.5)
    assert len(calls) == len(updates) == 2
    assert all(10 <= s < 14 for s in calls) and len(set(calls)) == 2  # seeds of two distinct clients
    calls.clear()
    fedavg_round(model, clients, lr=0.1, seed=10, defense=counting)
    assert calls == [10, 11, 12, 13]  # everyone by default, client k with seed + k
