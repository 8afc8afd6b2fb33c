"""IGSA (§5.1.1, Eq. 10): the layer weighting against a direct computation, the two estimators, their
agreement, order invariance and determinism.

Tests whose tolerance is tighter than the float32 rounding of a finite difference run in float64: a
difference quotient at r = 1e-3 divides the rounding of Φ (≈ eps·|Φ|) by r, which in float32
(eps ≈ 6e-8) reaches the 1e-5 … 1e-2 level and depends on the kernels' summation order, i.e. the machine.
"""
import pytest
import torch
from torch import nn

from giasok.data import load_dataset, victim_batch
from giasok.igsa import LAYER_NORMS, igsa, layer_weights, parameter_layers, random_directions, sensitivities
from giasok.models import build_model


@pytest.fixture(scope="module")
def probes():
    return victim_batch(load_dataset("patches", "test"), 2, seed=0, distinct_labels=True)


def _relative_gap(a, b):
    return abs(a - b) / abs(b)


def _tiny_smooth_model():
    """Flatten → Linear(12, 6) → tanh → Linear(6, 3) in float64: two layers, Φ smooth everywhere."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64))
    return model


def _per_layer_jvp_norms(model, x, label, u):
    """‖J_l u‖₂ of each layer at x, by torch.autograd (double backward), independently of giasok.igsa."""
    params = list(model.parameters())

    def phi(inp):
        loss = nn.functional.cross_entropy(model(inp.unsqueeze(0)), torch.tensor([label]))
        return torch.autograd.grad(loss, params, create_graph=True)

    _, tangent = torch.autograd.functional.jvp(phi, (x,), (u,))
    # parameters come as weight, bias of the first Linear, then weight, bias of the second
    return [torch.cat([tangent[0].flatten(), tangent[1]]).norm(), torch.cat([tangent[2].flatten(), tangent[3]]).norm()]


def test_default_sensitivity_is_the_weighted_mean_of_the_layers_norms():
    model = _tiny_smooth_model()
    generator = torch.Generator().manual_seed(1)
    image = torch.rand((3, 2, 2), generator=generator, dtype=torch.float64)
    directions = random_directions((3, 2, 2), 4, seed=2, dtype=torch.float64)
    radius, label = 1e-3, 1
    omega = torch.tensor([2.0, 1.5], dtype=torch.float64)  # ω_i = 1 + 1/(i + 1) for the two layers
    expected_mean, expected_l2 = [], []
    for u in directions:
        # the jvp estimator differentiates at the sample point X_k = X + r·u_k (Eq. 10's second line)
        n = torch.stack(_per_layer_jvp_norms(model, image + radius * u, label, u))
        expected_mean.append(float((omega * n).sum() / omega.sum()))
        expected_l2.append(float((omega * n).norm()))
    # Both sides are float64 and do the same few dozen multiply-adds per entry of J_l u (sums of ≤ 12
    # terms), only in a different order (torch.func forward-over-reverse vs autograd's double backward):
    # the rounding differs by ~ 12·eps ≈ 3e-15 relative per entry, and the norms and the weighted mean
    # add a few eps more. rel = 1e-10 leaves four orders of margin, while the alternatives it must tell
    # apart differ at the 1e-1 level (dividing by L instead of Σω: ×1.75; weighted-l2: ω² weights).
    got = sensitivities(model, image, label, directions, radius=radius, estimator="jvp")
    assert got.tolist() == pytest.approx(expected_mean, rel=1e-10)
    got_l2 = sensitivities(model, image, label, directions, radius=radius, estimator="jvp", layer_norm="weighted-l2")
    assert got_l2.tolist() == pytest.approx(expected_l2, rel=1e-10)
    # The finite-difference quotient over [X, X + r·u] is the derivative at the midpoint, up to O(r²);
    # the JVP above is taken at the end X + r·u, so the two differ by ≈ (r/2)·‖Φ''[u, u]‖/‖Φ'u‖ ≈ 5e-4
    # for O(1) curvature of this O(1)-weighted tanh net, plus float64 rounding ≈ eps·|Φ|/r ≈ 1e-13.
    # rel = 1e-2 covers the curvature term with margin; a wrong layer combination is off by ≥ 1e-1.
    finite = sensitivities(model, image, label, directions, radius=radius, estimator="finite-difference")
    assert finite.tolist() == pytest.approx(expected_mean, rel=1e-2)
    assert finite.dtype == torch.float64


def test_estimators_agree_on_a_smooth_model_at_the_papers_radius(probes):
    # float64: in float32 the finite differences at r = 1e-3 carry ≈ 2 % rounding error on this model
    # (eps32·|Φ|/r with |Φ| large next to |J u|), too close to any tolerance that means "agree". In
    # float64 that term shrinks by eps64/eps32 = 2^-29 to ≈ 4e-11, leaving the O(r) gap between the
    # slope over [X, X + r·u] and the derivative at X + r·u, measured ≈ 3e-8 on this sigmoid LeNet.
    # 1e-4 leaves a wide margin over both and still fails on any difference of scale or weighting.
    images, labels = probes
    model = build_model("lenet", 10, seed=0).double()  # sigmoids: Φ is differentiable everywhere
    exact = igsa(model, images.double(), labels, samples=32, radius=1e-3, estimator="jvp", seed=1)
    finite = igsa(model, images.double(), labels, samples=32, radius=1e-3, estimator="finite-difference", seed=1)
    assert _relative_gap(finite.value, exact.value) < 1e-4
    for a, b in zip(finite.per_input, exact.per_input):
        assert _relative_gap(a, b) < 1e-4


def test_estimators_agree_on_a_relu_model_within_one_linear_piece(probes):
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4).double()
    kwargs = dict(samples=16, radius=1e-6, seed=2)  # too small a radius for any ReLU to change state
    exact = igsa(model, images.double(), labels, estimator="jvp", **kwargs)
    finite = igsa(model, images.double(), labels, estimator="finite-difference", **kwargs)
    assert _relative_gap(finite.value, exact.value) < 0.05


def test_finite_differences_see_the_relu_kinks_the_jacobian_ignores(probes):
    # at r = 1e-3 some units cross zero; their backprop masks jump, so Φ jumps and the difference quotient
    # is far larger than the derivative: the finite-difference IGSA is lower (rougher). The gap is a factor
    # ≈ 100 in float32 and float64 alike, so float32 (the dtype the project runs in) with its percent-level
    # rounding is safe against the factor-2 threshold.
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4)
    exact = igsa(model, images, labels, samples=16, radius=1e-3, estimator="jvp")
    finite = igsa(model, images, labels, samples=16, radius=1e-3, estimator="finite-difference")
    assert finite.value < exact.value / 2


@pytest.mark.parametrize("estimator", ["jvp", "finite-difference"])
def test_igsa_ignores_the_order_and_chunking_of_the_samples(probes, estimator):
    # float64 throughout. Chunk sizes and vmap vs loop change the kernels' summation order, so Φ's
    # entries round differently, by ~ eps·|Φ| (a few eps for a reduction of many terms; eps64 ≈ 1.1e-16).
    # The finite difference divides that by r = 1e-3: relative error on the order of 1e-12 at most
    # (measured ≤ 6e-13; the float32 version failed at 3.9e-5, and eps64/eps32 = 2^-29 scales that to 7e-14).
    # The JVP has no division by r and matches to ~1e-16. rel = 1e-9 has a margin of > 10³ over this and
    # still catches a wrong order/chunk mapping, which would pair directions whose sensitivities differ
    # at the 1e-2 level or more.
    images, labels = probes
    # one probe and 6 directions keep the float64 ResNet affordable (float64 convolutions have no fast
    # CPU kernels; the JVP loop takes ~1.5 s a direction); order and chunking concern the directions
    images, labels = images[:1].double(), labels[:1]
    model = build_model("resnet18", 10, seed=0, width=0.125).double()
    directions = random_directions(tuple(images.shape[1:]), 6, seed=3, dtype=torch.float64)
    reference = igsa(model, images, labels, directions=directions, estimator=estimator, chunk_size=6)
    permutation = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    for chunk_size in (1, 4):  # a plain loop, and vmap chunks 4 + 2
        again = igsa(model, images, labels, directions=directions[permutation], estimator=estimator,
                     chunk_size=chunk_size)
        assert again.value == pytest.approx(reference.value, rel=1e-9)
        # sample i of the shuffled run is direction permutation[i] of the reference
        assert again.sensitivities == pytest.approx(reference.sensitivities[:, permutation.numpy()], rel=1e-9)

def test_igsa_is_reproducible_under_a_seed(probes):
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4)
    first, second = (igsa(model, images, labels, samples=8, seed=5) for _ in range(2))
    other = igsa(model, images, labels, samples=8, seed=6)
    assert first.value == second.value and first.per_input == second.per_input
    assert other.value != first.value


def test_layer_norm_is_recorded_and_orders_the_two_readings(probes):
    # for per-layer norms n_l ≥ 0 and weights ω_l ≥ 1: Σ ω_l n_l / Σ ω_l ≤ max_l n_l ≤ ‖ω ⊙ n‖₂, so the
    # weighted mean's s_k are never larger than the literal reading's, and its IGSA is larger
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4)
    default = igsa(model, images, labels, samples=4, seed=0)
    literal = igsa(model, images, labels, samples=4, seed=0, layer_norm="weighted-l2")
    assert default.layer_norm == "weighted-mean" and literal.layer_norm == "weighted-l2"
    assert LAYER_NORMS == ("weighted-mean", "weighted-l2")
    assert (default.sensitivities <= literal.sensitivities).all()
    assert default.value > literal.value


def test_weights_favour_shallow_layers_and_layers_group_parameters():
    w = layer_weights(4).tolist()
    assert w == pytest.approx([2, 1.5, 4 / 3, 1.25])  # ω = [1 + 1/L, …, 2] read from the output side
    layers = parameter_layers(build_model("convnet", 10, seed=0, width=4))
    assert len(layers) == 9 and layers[0][1] == ["features.1.weight", "features.1.bias"]
    assert layers[-1][0] == "classifier"


def test_random_directions_are_unit_vectors_in_the_asked_dtype():
    single = random_directions((3, 4, 4), 5, seed=0)
    double = random_directions((3, 4, 4), 5, seed=0, dtype=torch.float64)
    assert single.dtype == torch.float32 and double.dtype == torch.float64
    assert double.flatten(1).norm(dim=1).tolist() == pytest.approx([1.0] * 5, rel=1e-15)
    assert torch.equal(double.float(), single)  # the same draw, rounded once


def test_bad_arguments_are_refused(probes):
    images, labels = probes
    model = build_model("lenet", 10, seed=0)
    with pytest.raises(ValueError, match="unknown estimator"):
        igsa(model, images, labels, samples=2, estimator="hutchinson")
    with pytest.raises(ValueError, match="unknown layer_norm 'l2'; available: weighted-mean, weighted-l2"):
        igsa(model, images, labels, samples=2, layer_norm="l2")
    with pytest.raises(ValueError, match="unknown layer_norm"):
        sensitivities(model, images[0], labels[0], random_directions(tuple(images.shape[1:]), 2, seed=0),
                      layer_norm="mean")
    with pytest.raises(ValueError, match="dtype"):  # a float32 model at float64 images: no silent cast
        igsa(model, images.double(), labels, samples=2)
    with pytest.raises(ValueError, match="radius"):
        igsa(model, images, labels, samples=2, radius=0)
    with pytest.raises(ValueError, match="samples"):
        igsa(model, images, labels, samples=0)
    with pytest.raises(ValueError, match="labels"):
        igsa(model, images, labels[:1], samples=2)
