"""Input-Gradient Smoothness Analysis, IGSA (paper §5.1.1, Eq. 9–10).

The model turns a training input X into the gradient the client shares: Φ(X) = ∇_W ℓ(f_W(X), y), one block
Φ_l per layer l. A gradient inversion descends a loss built on Φ, so if Φ swings wildly under small input
changes the attack's landscape is rough and the attack gets lost; if Φ is smooth it converges. IGSA scores
that smoothness at an input X:

    IGSA^X = ( E_Δ ‖(Φ(X + Δ) − Φ(X))·ω‖₂ )⁻¹ = K · ( Σ_{k=1..K} ‖J(X_k)·ω‖₂ )⁻¹          (Eq. 10)

with J = ∂Φ/∂X the Jacobian of the input→gradient map (Eq. 9), K samples X_k within radius r of X, and
ω = [1 + 1/L, 1 + 1/(L−1), …, 2] weighting the L layers' blocks. Higher IGSA = smoother = easier to invert.

Our reading of Eq. 10, made precise (the paper leaves these points implicit):

* **Per unit perturbation.** We measure the change of Φ per unit of input change along K directions
  u_k drawn uniformly from the unit sphere, with Δ_k = r·u_k (in D = C·H·W ≈ 3000 dimensions a uniform
  point of the r-ball lies within a fraction of a percent of its surface anyway). Averaging over random
  directions makes mean_k s_k a Hutchinson-style estimate of a Frobenius-type norm of J over √D, so
  IGSA = 1 / mean_k s_k is a scale of how far the gradient moves per unit of input change.
* **How ω enters: a weighted mean of the layers' l2 norms** (``layer_norm="weighted-mean"``, the default).
  The text under Eq. 10 says ω "assigns higher weights to the shallow layers when averaging l2-norms":
  the l2 norm is taken per layer and the layers' norms are then averaged with weights ω. A weighted
  average is normalised by the sum of its weights, so

      s_k = Σ_l ω_l ‖J_l u_k‖₂ / Σ_l ω_l.

  We divide by Σ_l ω_l rather than by L because that is what makes it an average: with equal per-layer
  norms n it returns n, so ω only shifts the emphasis between layers, as the sentence describes, and
  does not also inflate the scale (dividing by L would multiply every s_k by mean(ω) = 1 + H_L/L, with
  H_L the L-th harmonic number). The two normalisations differ by that factor alone, which depends only
  on the number of layers: IGSA values of one architecture (e.g. across training rounds, which the paper
  normalises per model, Appx B.II) are the same up to a constant and rank identically. Between
  architectures with different L the raw values shift relative to one another, as the factor falls from
  2 at L = 1 to 1.46 at L = 5 and 1.08 at L = 60, so a ranking of architectures by raw IGSA can differ.
* **The alternative, ``layer_norm="weighted-l2"``**: s_k = ‖ω ⊙ J u_k‖₂ = ( Σ_l ω_l² ‖J_l u_k‖² )^½, the
  literal ‖J·ω‖₂ of the formula read as one l2 norm over the whole gradient with ω scaling each layer's
  rows. It is kept because Eq. 10's symbols alone do admit it and this package computed it before; it
  weighs layers by ω² and lets the layer with the largest norm dominate, which is not an average of the
  layers' norms, so it is not the default.
* **Which layer weighs 2.** The paper says shallow layers weigh more, so ω is indexed from the output in
  the order backpropagation reaches the layers: the classifier (reached first) gets 1 + 1/L and the first
  layer 2. In forward order, layer i (0-based) gets ω_i = 1 + 1/(i + 1).
* **Layers** are the modules that own parameters, in registration order (forward order for the models in
  ``giasok.models``); a layer's block is all its parameters (weight and bias) together.
* **Several inputs.** IGSA is computed for each probe input separately (B = 1, its own label) and then
  averaged, as the paper averages 10 independent samples (Appx B.II).

Two estimators:

* ``estimator="finite-difference"`` — the paper's first line: the layer-weighted norm of
  (Φ(X + Δ_k) − Φ(X)) / ‖Δ_k‖, the K perturbed gradients computed in vectorised chunks.
* ``estimator="jvp"`` — exact directional derivatives J(X_k)·u_k, at the sample points X_k = X + r·u_k as
  Eq. 10's second line writes, by forward-mode differentiation of the reverse-mode gradient
  (``torch.func.jvp`` over ``torch.func.grad``), vectorised over the K directions with ``vmap``.

They agree wherever Φ is differentiable along the segment from X to X + Δ_k — on a smooth network
(DLG's sigmoid LeNet) at the paper's r = 1e-3, and on any network once r is small enough that no unit
changes state (``tests/test_igsa.py`` checks both within 5 %). **On ReLU / max-pool networks they differ
at r = 1e-3, and the difference is the point:** Φ is only piecewise smooth there. When a unit's
pre-activation crosses 0 its activation is continuous but its backpropagated mask jumps from 0 to 1, so
the gradients of the weights feeding it jump by a finite amount. The JVP sees only the smooth pieces; a
finite difference over a radius that crosses kinks adds (jump)/r, so it reads the landscape as much
rougher. We report the paper's finite-difference IGSA and, beside it, the exact one.

Both process the K directions in chunks of ``chunk_size`` (the paper's K = 10000 fits a GPU this way);
``chunk_size=1`` evaluates them one at a time in a plain loop, the baseline ``make bench`` compares with.
The model is used in eval mode (BatchNorm with its running statistics) unless ``mode="train"``; dropout is
always off, since a random mask would make Φ a random map rather than a function. Everything is computed
in the dtype of the images (the model's parameters must match): float32 as in training, or float64 where
a test needs the finite differences' rounding (≈ eps·|Φ|/r) to be negligible.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

__all__ = ["IGSA", "igsa", "layer_weights", "parameter_layers", "random_directions", "sensitivities",
           "ESTIMATORS", "LAYER_NORMS"]

ESTIMATORS = ("jvp", "finite-difference")
LAYER_NORMS = ("weighted-mean", "weighted-l2")  # how ω combines the layers' norms; see the module docstring


@dataclass(frozen=True)
class IGSA:
    """IGSA of a model at some inputs: ``value`` (mean over inputs), ``per_input`` (one per input), and the
    ``sensitivities`` s_k behind them (inputs × K), with the settings that produced them (``layer_norm``:
    how ω combined the layers' norms, one of ``LAYER_NORMS``)."""

    value: float
    per_input: tuple
    sensitivities: np.ndarray
    radius: float
    estimator: str
    layers: tuple
    weights: tuple
    layer_norm: str = "weighted-mean"


def parameter_layers(model: nn.Module) -> list[tuple[str, list[str]]]:
    """The model's layers as (module name, its parameter names), in registration order."""
    layers: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        layers.setdefault(name.rpartition(".")[0], []).append(name)
    return list(layers.items())


def layer_weights(num_layers: int) -> torch.Tensor:
    """ω in forward order: ω_i = 1 + 1/(i + 1), from 2 at the first layer to 1 + 1/L at the last (Eq. 10)."""
    if num_layers < 1:
        raise ValueError(f"need at least one layer, got {num_layers}")
    return 1 + 1 / torch.arange(1, num_layers + 1, dtype=torch.float64)


def random_directions(shape: tuple, samples: int, *, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``samples`` unit vectors of ``shape`` drawn uniformly from the sphere (normalised Gaussians), in ``dtype``.

    Drawn and normalised in float64 whatever ``dtype`` is, so a seed gives the same directions in float32
    and float64 up to the final rounding.
    """
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn((samples, *shape), generator=generator, dtype=torch.float64)
    return (u / u.flatten(1).norm(dim=1).view(-1, *([1] * len(shape)))).to(dtype)


def _check_layer_norm(layer_norm: str) -> None:
    if layer_norm not in LAYER_NORMS:
        raise ValueError(f"unknown layer_norm {layer_norm!r}; available: {', '.join(LAYER_NORMS)}")


def _analysed_copy(model: nn.Module, mode: str, device) -> nn.Module:
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    net = copy.deepcopy(model).to(device).train(mode == "train")
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    if mode == "train":
        # vmap cannot update running statistics in place; in train mode they do not affect Φ anyway
        torch.func.replace_all_batch_norm_modules_(net)
    return net


def sensitivities(model: nn.Module, image: torch.Tensor, label: int | torch.Tensor, directions: torch.Tensor, *,
                  radius: float = 1e-3, estimator: str = "jvp", layer_norm: str = "weighted-mean",
                  chunk_size: int = 64, mode: str = "eval", device: str | torch.device = "cpu") -> torch.Tensor:
    """s_k for each unit direction u_k in ``directions`` (K × C×H×W), at one input ``image`` (C×H×W).

    With the default ``layer_norm="weighted-mean"`` s_k = Σ_l ω_l ‖J_l u_k‖₂ / Σ_l ω_l, the ω-weighted
    average of the layers' l2 norms the text under Eq. 10 describes; ``"weighted-l2"`` gives the literal
    ‖ω ⊙ J u_k‖₂ (module docstring). Computed in ``image.dtype`` throughout (the model's parameters must
    have it too); returns a float64 CPU tensor of K sensitivities in the order of ``directions``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; available: {', '.join(ESTIMATORS)}")
    _check_layer_norm(layer_norm)
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if image.ndim != 3 or directions.shape[1:] != image.shape:
        raise ValueError(f"need one C×H×W image and K×C×H×W directions; got {tuple(image.shape)} and "
                         f"{tuple(directions.shape)}")
    mismatched = {p.dtype for p in model.parameters()} - {image.dtype}
    if not image.is_floating_point() or mismatched:
        # a silent cast either way would change the rounding the finite differences divide by r
        raise ValueError(f"the image ({image.dtype}) and the model's parameters ({', '.join(map(str, mismatched))}) "
                         f"must share one floating dtype; convert both, e.g. model.double() and image.double()")
    device = torch.device(device)
    net = _analysed_copy(model, mode, device)
    params = {k: p.detach() for k, p in net.named_parameters()}
    buffers = {k: b.detach() for k, b in net.named_buffers()}
    layers = parameter_layers(net)
    weights = layer_weights(len(layers)).to(device=device, dtype=image.dtype)
    x = image.to(device)
    y = torch.as_tensor(label, device=device).view(1)

    def phi(inp):  # the input→gradient map Φ of Eq. 9 for one sample
        def loss(p):
            return nn.functional.cross_entropy(functional_call(net, (p, buffers), (inp.unsqueeze(0),)), y)
        return grad(loss)(params)

    def weighted_norm(blocks):  # ω combines the layers' squared l2 norms ‖v_l‖² as ``layer_norm`` says
        per_layer = torch.stack([sum(blocks[n].pow(2).sum() for n in names) for _, names in layers])
        if layer_norm == "weighted-mean":  # Σ_l ω_l ‖v_l‖₂ / Σ_l ω_l
            return (weights * per_layer.sqrt()).sum() / weights.sum()
        return (weights.pow(2) * per_layer).sum().sqrt()  # ‖ω ⊙ v‖₂

    if estimator == "jvp":
        def one(u):
            _, tangent = jvp(phi, (x + radius * u,), (u,))
            return weighted_norm(tangent)
    else:
        base = phi(x)

        def one(u):
            moved = phi(x + radius * u)
            return weighted_norm({k: moved[k] - base[k] for k in base}) / radius

    directions = directions.to(device=device, dtype=x.dtype)
    out = []
    for chunk in directions.split(chunk_size):
        if chunk_size == 1:
            out.append(one(chunk[0]).detach().view(1))
        else:
            out.append(vmap(one)(chunk).detach())
    return torch.cat(out).double().cpu()


def igsa(model: nn.Module, images: torch.Tensor, labels, *, samples: int = 100, radius: float = 1e-3,
         estimator: str = "jvp", layer_norm: str = "weighted-mean", seed: int = 0, chunk_size: int = 64,
         mode: str = "eval", device: str | torch.device = "cpu", directions: torch.Tensor | None = None) -> IGSA:
    """IGSA of ``model`` at each image of ``images`` (N×C×H×W in [0, 1], with their ``labels``), averaged.

    ``samples`` = K directions per image, drawn with ``seed`` (the same directions for every image), or
    given as ``directions`` (K×C×H×W, normalised here). ``radius`` = r, the paper uses K = 10000, r = 1e-3.
    ``layer_norm`` says how ω combines the layers (module docstring); computed in ``images.dtype``.

    >>> model = build_model("convnet", 10, seed=0, width=8)                       # doctest: +SKIP
    >>> igsa(model, images, labels, samples=32).value                             # doctest: +SKIP
    """
    if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need N ≥ 1 images N×C×H×W and N labels; got {tuple(images.shape)} and {len(labels)}")
    _check_layer_norm(layer_norm)
    if directions is None:
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        directions = random_directions(tuple(images.shape[1:]), samples, seed=seed, dtype=images.dtype)
    else:
        directions = directions.to(images.dtype)  # normalise in the dtype the directions will be used in
        directions = directions / directions.flatten(1).norm(dim=1).view(-1, *([1] * (directions.ndim - 1)))
    s = torch.stack([sensitivities(model, image, label, directions, radius=radius, estimator=estimator,
                                   layer_norm=layer_norm, chunk_size=chunk_size, mode=mode, device=device)
                     for image, label in zip(images, torch.as_tensor(labels))])
    per_input = (1.0 / s.mean(dim=1)).tolist()  # Eq. 10: K / Σ_k s_k
    layers = tuple(name for name, _ in parameter_layers(model))
    return IGSA(value=float(np.mean(per_input)), per_input=tuple(per_input), sensitivities=s.numpy(),
                radius=radius, estimator=estimator, layers=layers,
                weights=tuple(layer_weights(len(layers)).tolist()), layer_norm=layer_norm)
