"""IGSA (§5.1.1, Eq. 10): the two estimators, their agreement, order invariance and determinism."""
import pytest
import torch

from giasok.data import load_dataset, victim_batch
from giasok.igsa import igsa, layer_weights, parameter_layers, random_directions
from giasok.models import build_model


@pytest.fixture(scope="module")
def probes():
    return victim_batch(load_dataset("patches", "test"), 2, seed=0, distinct_labels=True)


def _relative_gap(a, b):
    return abs(a - b) / abs(b)


def test_estimators_agree_on_a_smooth_model_at_the_papers_radius(probes):
    images, labels = probes
    model = build_model("lenet", 10, seed=0)  # sigmoids: Φ is differentiable everywhere
    exact = igsa(model, images, labels, samples=32, radius=1e-3, estimator="jvp", seed=1)
    finite = igsa(model, images, labels, samples=32, radius=1e-3, estimator="finite-difference", seed=1)
    assert _relative_gap(finite.value, exact.value) < 0.05
    for a, b in zip(finite.per_input, exact.per_input):
        assert _relative_gap(a, b) < 0.05


def test_estimators_agree_on_a_relu_model_within_one_linear_piece(probes):
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4).double()
    kwargs = dict(samples=16, radius=1e-6, seed=2)  # too small a radius for any ReLU to change state
    exact = igsa(model, images.double(), labels, estimator="jvp", **kwargs)
    finite = igsa(model, images.double(), labels, estimator="finite-difference", **kwargs)
    assert _relative_gap(finite.value, exact.value) < 0.05


def test_finite_differences_see_the_relu_kinks_the_jacobian_ignores(probes):
    # at r = 1e-3 some units cross zero; their backprop masks jump, so Φ jumps and the difference quotient
    # is far larger than the derivative: the finite-difference IGSA is lower (rougher)
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4)
    exact = igsa(model, images, labels, samples=16, radius=1e-3, estimator="jvp")
    finite = igsa(model, images, labels, samples=16, radius=1e-3, estimator="finite-difference")
    assert finite.value < exact.value / 2


@pytest.mark.parametrize("estimator", ["jvp", "finite-difference"])
def test_igsa_ignores_the_order_and_chunking_of_the_samples(probes, estimator):
    images, labels = probes
    model = build_model("resnet18", 10, seed=0, width=0.125)
    directions = random_directions(tuple(images.shape[1:]), 12, seed=3)
    reference = igsa(model, images, labels, directions=directions, estimator=estimator, chunk_size=12)
    shuffled = directions[torch.randperm(12, generator=torch.Generator().manual_seed(0))]
    for chunk_size in (1, 5):
        again = igsa(model, images, labels, directions=shuffled, estimator=estimator, chunk_size=chunk_size)
        assert again.value == pytest.approx(reference.value, rel=1e-5)
    assert sorted(again.sensitivities[0]) == pytest.approx(sorted(reference.sensitivities[0]), rel=1e-5)


def test_igsa_is_reproducible_under_a_seed(probes):
    images, labels = probes
    model = build_model("convnet", 10, seed=0, width=4)
    first, second = (igsa(model, images, labels, samples=8, seed=5) for _ in range(2))
    other = igsa(model, images, labels, samples=8, seed=6)
    assert first.value == second.value and first.per_input == second.per_input
    assert other.value != first.value


def test_weights_favour_shallow_layers_and_layers_group_parameters():
    w = layer_weights(4).tolist()
    assert w == pytest.approx([2, 1.5, 4 / 3, 1.25])  # ω = [1 + 1/L, …, 2] read from the output side
    layers = parameter_layers(build_model("convnet", 10, seed=0, width=4))
    assert len(layers) == 9 and layers[0][1] == ["features.1.weight", "features.1.bias"]
    assert layers[-1][0] == "classifier"


def test_bad_arguments_are_refused(probes):
    images, labels = probes
    model = build_model("lenet", 10, seed=0)
    with pytest.raises(ValueError, match="unknown estimator"):
        igsa(model, images, labels, samples=2, estimator="hutchinson")
    with pytest.raises(ValueError, match="radius"):
        igsa(model, images, labels, samples=2, radius=0)
    with pytest.raises(ValueError, match="samples"):
        igsa(model, images, labels, samples=0)
    with pytest.raises(ValueError, match="labels"):
        igsa(model, images, labels[:1], samples=2)
