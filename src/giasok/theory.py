"""Gradient → logit → input, and why local updates break it (paper §4.1, Lemma 4.1, Theorem 4.2, Eq. 3–9).

This module is the executable version of the "Theoretical Analysis" of §4.1 and of its proof in Appx A.
Everything is float64 and deterministic; it needs only torch (for autograd), numpy/scipy (root finding)
and pandas (the table).

The model (Eq. 3–5)
-------------------
A binary classifier, y ∈ {−1, +1}, built from L fully-connected layers. Every layer uses an *augmented*
weight matrix, as the paper says of W_L: the bias is the last column and the layer input carries a
constant 1 as its last feature, F̃ = [F; 1]. With F_0 = x::

    F_l = σ(W_l F̃_{l−1})            l = 1 … L−1                      (Eq. 4)
    μ   = y · W_L F̃_{L−1}           (W_L is 1 × (d_{L−1}+1))          (Eq. 3)
    ℓ   = log(1 + e^{−μ})                                              (Eq. 5)

``logistic_mlp(dims, seed)`` builds one; ``dims = (d_0, d_1, …, d_{L−1})`` lists the input width and the
hidden widths, the scalar output layer is implied, so ``(20, 16, 8)`` is 20 → 16 → 8 → 1 with L = 3.

Activation. Eq. 7 applies σ^{-1}, so σ must be injective. The default is leaky ReLU with slope
α = 0.2 on the negative side: it is a bijection of ℝ, so σ^{-1} exists for *every* value — including the
"activations" an adversary reads off a perturbed gradient, which need not lie in σ's range (sigmoid's
σ^{-1} only exists on (0, 1); plain ReLU is not invertible and zeroes whole gradient rows). Being
piecewise linear, σ'(z) only depends on the sign of z, which makes Eq. 8 hold exactly in the small-η limit
(see Theorem 4.2 below). ``activation="sigmoid"`` is available too (Lemma 4.1 is exact with it as well).

Lemma 4.1 — logit from the last-layer gradient (Eq. 6)
------------------------------------------------------
∂ℓ/∂W_L = y (∂ℓ/∂μ) F̃_{L−1}ᵀ with ∂ℓ/∂μ = −1/(1+e^μ), and y F̃_{L−1}ᵀ W_Lᵀ = μ, hence (Appx A, Eq. 14)::

    c := (∂ℓ/∂W_L) · W_L = G(μ),       G(μ) = −μ / (1 + e^μ).                            (Eq. 6)

G is **not** monotonic: G'(μ) = (μe^μ − e^μ − 1)/(1+e^μ)² vanishes at the single point μ₀ ≈ 1.27846
(the root of μ = 1 + e^{−μ}), where G reaches its minimum G(μ₀) = −(μ₀ − 1) ≈ −0.27846. G decreases
strictly on (−∞, μ₀] (from +∞) and increases strictly on [μ₀, ∞) (back to 0⁻). So

* c ≥ 0                 → one root, μ ≤ 0 (the sample is misclassified or on the boundary);
* G(μ₀) < c < 0         → two roots, one in (0, μ₀) and one in (μ₀, ∞): Eq. 6 alone is ambiguous;
* c < G(μ₀)             → no root: c cannot come from a single-sample gradient.

``recover_logit`` resolves the ambiguity exactly with the augmented bias column: its last entry is
(∂ℓ/∂W_L)[0, −1] = −y/(1+e^μ) (the constant-1 feature), so s = |that entry| = 1/(1+e^μ) ∈ (0, 1) is
known, and μ < μ₀ ⇔ s > s₀ := 1/(1+e^{μ₀}) = (μ₀−1)/μ₀ ≈ 0.2178. The root of Eq. 6 is then found with
``scipy.optimize.brentq`` on the chosen branch, where G is strictly monotonic (bracket expanded until it
holds a sign change). In exact arithmetic the result equals log((1−s)/s); Eq. 6 is used because it is
the paper's formula and the one Theorem 4.2 is about. Near μ₀ Eq. 6 is ill-conditioned (G' = 0): the
recovered μ is then good to ~√ε ≈ 1e-8 rather than ε. If c < G(μ₀) (only possible for a corrupted or
multi-step "gradient") the least-squares solution argmin_μ |G(μ) − c| = μ₀ is returned and
``LogitSolution.has_root`` is False.

Lemma 4.1 — input from the logit (Eq. 7)
----------------------------------------
Eq. 7, x = yμ W_Lᵀ Π W_lᵀ ⊙ σ^{-1}, is schematic: a product of transposed, generally non-square weight
matrices cannot be "divided out" (20 → 16 → 8 loses rank). ``recover_input`` implements the iterative
form the proof derives it from (Appx A, Eq. 13), which is exact for any widths:

1. μ from Eq. 6;  δ_L := y ∂ℓ/∂μ = −y/(1+e^μ);
2. F̃_{L−1} = (∂ℓ/∂W_L)ᵀ / δ_L  — equivalently F̃_{L−1} = yμ (∂ℓ/∂W_L)ᵀ / c, the "yμ W_Lᵀ" factor of
   Eq. 7; drop the constant entry to get F_{L−1};
3. for l = L−1 … 1: z_l = σ^{-1}(F_l) (here σ^{-1} is needed), δ_l = (W_{l+1}ᵀ δ_{l+1})[:d_l] ⊙ σ'(z_l)
   (the "W_lᵀ … ⊙ σ" chain), and since ∂ℓ/∂W_l = δ_l F̃_{l−1}ᵀ is rank one,
   F̃_{l−1} = (∂ℓ/∂W_l)ᵀ δ_l / ‖δ_l‖² (least squares over all rows, exact for a true gradient);
4. x = F_0.

It reproduces x to ~1e-12 relative error in float64 (tests check 1e-8). The shortcut x = (∂ℓ/∂W_1)[i, :d_0] /
(∂ℓ/∂W_1)[i, d_0] needs no μ at all; it is ``recover_input_from_first_layer`` and is discussed below.

Theorem 4.2 — U local updates (Eq. 8–9)
---------------------------------------
The client runs U full-batch gradient-descent steps on the single sample, W^{u+1} = W^u − η ∇ℓ(W^u). The
adversary sees W^0 and W^U and treats their difference as one gradient. The paper writes
(W^U − W^0)/η; with the descent sign that is *minus* the gradient sum, so we use

    ĝ = (W^0 − W^U)/η = Σ_{u=0}^{U−1} ∇ℓ(W^u)  =  true gradient + (U−1) "redundant" terms,

which is what Appx A's Eq. 16 contains. The adversary applies Lemma 4.1 with W^0 (the only weights it
knows): c = ĝ_L · W_L^0 = G(μ*) + Σ_{u=1}^{U−1} (∂ℓ/∂W_L^u) · W_L^0 = G(μ^rec). A first-order Taylor step of
G about μ* gives Eq. 9 (Appx A, Eq. 17, derivation checked; the denominator is (1+e^{μ*})² G'(μ*))::

    μ^rec − μ* ≈ (e^{μ*}+1)² Σ_{u=1}^{U−1} (∂ℓ/∂W_L^u)·W_L^0 / (μ* e^{μ*} − e^{μ*} − 1).       (Eq. 9)

Where Eq. 9 is good or poor — the perturbation is *not* small. For small η every redundant gradient ≈
the first one, so ΔG := Σ_{u=1}^{U−1}(∂ℓ/∂W_L^u)·W_L^0 ≈ (U−1)·G(μ*), as large as G(μ*) itself, and the
Taylor step is only as good as G is straight between μ* and μ^rec. ("Small η" means the client barely
moves its own features: η·‖x̃‖² ≪ 1 and likewise for the hidden F̃_l; e.g. η = 1e-3 with ‖x‖² ≈ 20.)
While Eq. 6 has a root, the mean value theorem gives Eq. 9 / (μ^rec − μ*) = G'(ξ)/G'(μ*) for some ξ
between μ* and μ^rec. Hence:

* μ* ≤ 0 (sample misclassified by W^0; c ≥ 0, unique root): μ^rec ≈ U·μ*, the error grows without bound,
  and since |G'| ∈ [0.5, 1.0998] on (−∞, 0], Eq. 9 has the right sign and its ratio to the true error
  lies in [0.45, 2.2] for any U, provided ΔG ≥ 0 (true for small η). Measured: 1.0–1.4.
* 0 < μ* < μ₀: μ^rec rises towards the turning point μ₀ where G' → 0, so Eq. 9 *under*-estimates
  (measured ≈ 0.8×) — until c drops below G(μ₀), roughly when U > 0.2785·(1+e^{μ*})/μ*. Then Eq. 6 has
  no root, μ^rec is pinned at μ₀, the μ error saturates at μ₀ − μ*, and Eq. 9, still linear in U,
  over-estimates by an unbounded factor. For a randomly initialised net most correctly classified samples
  sit here, and U = 2 already suffices to pin μ^rec when μ* ≳ 0.34 (2·G(μ*) < G(μ₀)).
* μ* > μ₀ (confidently correct): μ^rec falls towards μ₀ along the right branch; G' first grows then
  shrinks, so Eq. 9 over-estimates (measured up to ≈ 3× at μ* ≈ 7, U = 8) and, since its denominator
  vanishes at μ₀, explodes for μ* just above μ₀ (measured: −12 predicted vs −0.11 true at μ* = 1.39).
* In every regime the *sign* of Eq. 9 matches that of μ^rec − μ* (it is the sign of ΔG·G'(μ*), and μ^rec
  moves along the branch of μ* in the direction ΔG dictates). For larger η, ΔG < (U−1)G(μ*) because the
  client's loss drops, and ΔG can even change sign; Eq. 9 uses the actual ΔG, so the above still applies,
  but the errors need no longer grow monotonically with U.

Eq. 8 (x^rec − x* = y(μ^rec − μ*)·[the Eq. 7 map]). With leaky ReLU and η → 0, ĝ = U·∇ℓ(W^0) and the
chain above returns x^rec = (μ^rec/μ*)·x* exactly whenever Eq. 6 has a root (every layer's recovered
features are scaled by U(1+e^{μ^rec})/(1+e^{μ*}) = μ^rec/μ*, and leaky ReLU's σ' is scale-free), i.e.
‖x^rec − x*‖/‖x*‖ = |μ^rec − μ*|/|μ*| — the linear dependence on μ^rec − μ* that Eq. 8 states. For finite η
this holds approximately. When μ^rec is pinned at μ₀ the x error is |U(1+e^{μ₀})/(1+e^{μ*}) − 1| instead;
for μ* > μ₀ that is not monotonic in U. With ``activation="sigmoid"`` the scaled features leave (0, 1)
as soon as U ≥ 2, σ^{-1} does not exist and ``x_rel_error`` is NaN — the reason leaky ReLU is the default.

Caveat the paper does not state: Theorem 4.2 is about the μ-based route of Lemma 4.1. For a single sample
(B = N = 1) every first-layer gradient is δ_1^u x̃ᵀ with the *same* x̃ = [x; 1], so ĝ_1 = (Σ_u δ_1^u) x̃ᵀ is
still rank one and ``recover_input_from_first_layer(ĝ_1)`` recovers x exactly for any U (the
bias-division identity, Phong et al. 2017). Local updates obfuscate the logit, not this identity; it
breaks when B > 1, where each row of ∂ℓ/∂W_1 mixes the samples, Σ_b δ_{1,b}[i] x̃_bᵀ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq
from scipy.special import expit

__all__ = [
    "Activation",
    "LEAKY_RELU",
    "SIGMOID",
    "LogisticMLP",
    "logistic_mlp",
    "augment",
    "eq6_g",
    "eq6_g_prime",
    "MU_TURN",
    "G_MIN",
    "S_TURN",
    "LogitSolution",
    "solve_eq6",
    "solve_logit",
    "recover_logit",
    "recover_input",
    "recover_input_from_first_layer",
    "client_updates",
    "eq9",
    "MultiUpdateError",
    "multi_update_error",
    "theorem42_table",
]

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Activation:
    """An invertible activation σ: forward, inverse σ^{-1} and derivative σ'(z) at the pre-activation z."""

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    inverse: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]


LEAKY_SLOPE = 0.2

LEAKY_RELU = Activation(
    name="leaky_relu",
    forward=lambda z: torch.where(z > 0, z, LEAKY_SLOPE * z),
    inverse=lambda a: torch.where(a > 0, a, a / LEAKY_SLOPE),
    derivative=lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE)),
)

SIGMOID = Activation(
    name="sigmoid",
    forward=torch.sigmoid,
    inverse=torch.logit,  # only defined on (0, 1)
    derivative=lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)),
)

_ACTIVATIONS = {a.name: a for a in (LEAKY_RELU, SIGMOID)}


# ---------------------------------------------------------------------------------------------- the model
def augment(v: torch.Tensor) -> torch.Tensor:
    """F̃ = [F; 1]: append the constant feature that carries the bias of an augmented weight matrix."""
    return torch.cat([v, v.new_ones(1)])


@dataclass(frozen=True, eq=False)
class LogisticMLP:
    """Binary logistic FC network of Eq. 3–5 with augmented weights.

    ``weights[l-1]`` is W_l of shape (d_l, d_{l−1} + 1) (last column = bias); the last one is 1 × (d_{L−1}+1).
    Instances are immutable; ``step`` returns a new network.
    """

    weights: tuple[torch.Tensor, ...]
    activation: Activation = LEAKY_RELU

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.weights)

    def features(self, x: torch.Tensor, weights: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """[F_0 = x, F_1, …, F_{L−1}] (Eq. 4), without the constant feature."""
        ws = self.weights if weights is None else weights
        feats = [x]
        for w in ws[:-1]:
            feats.append(self.activation.forward(w @ augment(feats[-1])))
        return feats

    def forward(self, x: torch.Tensor, weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """The score W_L F̃_{L−1} (a 0-d tensor); the logit is μ = y · score (Eq. 3)."""
        ws = self.weights if weights is None else weights
        return (ws[-1] @ augment(self.features(x, ws)[-1])).squeeze(0)

    def logit(self, x: torch.Tensor, y: int) -> float:
        """μ = y W_L F̃_{L−1} (Eq. 3)."""
        return float(_check_label(y) * self.forward(x))

    def loss(self, x: torch.Tensor, y: int, weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """ℓ = log(1 + e^{−μ}) (Eq. 5), computed stably as softplus(−μ)."""
        return torch.nn.functional.softplus(-_check_label(y) * self.forward(x, weights))

    def gradient(self, x: torch.Tensor, y: int) -> tuple[torch.Tensor, ...]:
        """(∂ℓ/∂W_1, …, ∂ℓ/∂W_L) for the single sample (x, y), by autograd."""
        ws = [w.detach().clone().requires_grad_(True) for w in self.weights]
        grads = torch.autograd.grad(self.loss(x.detach(), y, ws), ws)
        return tuple(g.detach() for g in grads)

    def step(self, x: torch.Tensor, y: int, lr: float) -> LogisticMLP:
        """One full-batch gradient-descent step W ← W − η ∇ℓ(W) on the sample."""
        grads = self.gradient(x, y)
        return replace(self, weights=tuple(w - lr * g for w, g in zip(self.weights, grads)))


def logistic_mlp(dims: Sequence[int], seed: int = 0, activation: str = "leaky_relu") -> LogisticMLP:
    """A seeded float64 ``LogisticMLP``: ``dims = (d_0, …, d_{L−1})`` plus an implied scalar output layer.

    Weights and biases ~ N(0, 1/(fan_in + 1)) (LeCun-style, fan_in counts the constant feature) from a
    private ``torch.Generator``; the global RNG is untouched.
    """
    dims = [int(d) for d in dims]
    if len(dims) < 1 or min(dims) < 1:
        raise ValueError(f"dims must be positive widths (d_0, …, d_(L-1)), got {dims}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}")
    gen = torch.Generator().manual_seed(int(seed))
    widths = dims + [1]
    weights = tuple(
        torch.randn(d_out, d_in + 1, generator=gen, dtype=DTYPE) / math.sqrt(d_in + 1)
        for d_in, d_out in zip(widths[:-1], widths[1:])
    )
    return LogisticMLP(weights=weights, activation=_ACTIVATIONS[activation])


def _check_label(y: int) -> int:
    if y not in (-1, 1):
        raise ValueError(f"y must be -1 or +1 (binary logistic model), got {y!r}")
    return int(y)


# ---------------------------------------------------------------------------------------------- Eq. 6
def eq6_g(mu: float) -> float:
    """G(μ) = −μ/(1+e^μ) = (∂ℓ/∂μ)·μ, the right-hand side of Eq. 6 (overflow-free form −μ·expit(−μ))."""
    return float(-mu * expit(-mu))


def eq6_g_prime(mu: float) -> float:
    """G'(μ) = (μe^μ − e^μ − 1)/(1+e^μ)² = (1 − p)(μp − 1) with p = e^μ/(1+e^μ); zero only at μ = MU_TURN."""
    p, q = float(expit(mu)), float(expit(-mu))  # q = 1 − p, computed without cancellation
    return q * (mu * p - 1.0)


#: μ₀, the unique stationary point of G (root of μ = 1 + e^{−μ}); G is decreasing left of it, increasing right.
MU_TURN: float = float(brentq(lambda m: m - 1 - math.exp(-m), 1.0, 2.0, xtol=1e-16, rtol=4 * np.finfo(float).eps))
#: G(μ₀) = −(μ₀ − 1) ≈ −0.27846, the smallest value Eq. 6's left-hand side can take for a true gradient.
G_MIN: float = eq6_g(MU_TURN)
#: s₀ = 1/(1+e^{μ₀}) = (μ₀−1)/μ₀ ≈ 0.2178; the bias-column magnitude s = 1/(1+e^μ) exceeds it iff μ < μ₀.
S_TURN: float = float(expit(-MU_TURN))


@dataclass(frozen=True)
class LogitSolution:
    """Result of solving Eq. 6: the logit, the value c it was solved for, the branch, and whether G(μ) = c
    has a root at all (False ⇒ μ = μ₀, the least-squares fallback)."""

    mu: float
    c: float
    branch: str  # "left" (μ ≤ μ₀) or "right" (μ ≥ μ₀)
    has_root: bool


def solve_eq6(c: float, branch: str) -> LogitSolution:
    """Solve G(μ) = c on one monotonic branch of G ("left": μ ≤ μ₀, "right": μ ≥ μ₀) with brentq."""
    if branch not in ("left", "right"):
        raise ValueError(f"branch must be 'left' or 'right', got {branch!r}")
    c = float(c)
    if not math.isfinite(c):
        raise ValueError(f"Eq. 6 left-hand side must be finite, got {c}")
    if c <= G_MIN:
        return LogitSolution(MU_TURN, c, branch, has_root=c == G_MIN)
    f = lambda m: eq6_g(m) - c  # noqa: E731
    tol = dict(xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    if branch == "left":
        if c == 0.0:
            return LogitSolution(0.0, c, branch, True)
        lo = -1.0
        while f(lo) < 0:  # G decreasing: need G(lo) ≥ c
            lo *= 2.0
        mu = brentq(f, lo, MU_TURN, **tol)
    else:
        if c >= 0:  # the right branch only takes values in [G_MIN, 0)
            return LogitSolution(math.inf, c, branch, has_root=False)
        hi = MU_TURN + 1.0
        while f(hi) < 0:  # G increasing towards 0⁻: need G(hi) ≥ c
            hi *= 2.0
        mu = brentq(f, MU_TURN, hi, **tol)
    return LogitSolution(float(mu), c, branch, True)


def solve_logit(grad_last: torch.Tensor, W_last: torch.Tensor, branch: str = "auto") -> LogitSolution:
    """Lemma 4.1 / Eq. 6 with full diagnostics; see ``recover_logit``."""
    g = grad_last.reshape(-1).to(DTYPE)
    w = W_last.reshape(-1).to(DTYPE)
    if g.shape != w.shape:
        raise ValueError(f"grad_last and W_last must match, got {tuple(grad_last.shape)} vs {tuple(W_last.shape)}")
    c = float(g @ w)  # (∂ℓ/∂W_L) · W_L, Eq. 6
    if branch == "auto":
        s = abs(float(g[-1]))  # bias column: |−y/(1+e^μ)| = 1/(1+e^μ)
        branch = "left" if (c >= 0 or s >= S_TURN) else "right"
    return solve_eq6(c, branch)


def recover_logit(grad_last: torch.Tensor, W_last: torch.Tensor, branch: str = "auto") -> float:
    """μ from the last-layer gradient (Lemma 4.1, Eq. 6): solve (∂ℓ/∂W_L)·W_L = −μ/(1+e^μ).

    G(μ) = −μ/(1+e^μ) is not monotonic (minimum G(μ₀) ≈ −0.2785 at μ₀ ≈ 1.2785), so a negative c has two
    roots. ``branch="auto"`` picks the side with the bias column of the augmented W_L, whose gradient
    entry is −y/(1+e^μ): its magnitude s = 1/(1+e^μ) is > s₀ ≈ 0.2178 iff μ < μ₀. The root is then found
    by ``brentq`` on that strictly monotonic branch. ``branch="left"/"right"`` forces a side. If c is below
    G(μ₀) there is no root and μ₀ (the least-squares fit) is returned; use ``solve_logit`` to detect it.
    """
    return solve_logit(grad_last, W_last, branch).mu


# ---------------------------------------------------------------------------------------------- Eq. 7
def recover_input(
    gradients: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    y: int,
    activation: Activation = LEAKY_RELU,
    mu: float | None = None,
) -> torch.Tensor:
    """x from one gradient of one sample (Lemma 4.1, Eq. 7 in the iterative form of Appx A Eq. 13).

    μ from Eq. 6 (unless given) → δ_L = −y/(1+e^μ) → F̃_{L−1} = (∂ℓ/∂W_L)ᵀ/δ_L → for each lower layer
    z_l = σ^{-1}(F_l), δ_l = (W_{l+1}ᵀ δ_{l+1})[:d_l] ⊙ σ'(z_l), F̃_{l−1} = (∂ℓ/∂W_l)ᵀ δ_l / ‖δ_l‖² → x = F_0.
    ``weights`` are the weights the gradient was taken at (W^0 for the adversary of Theorem 4.2). Exact for
    a true single-sample gradient; fed anything else (e.g. a multi-step update) it returns what the
    Lemma-4.1 adversary would reconstruct.
    """
    y = _check_label(y)
    grads = [g.to(DTYPE) for g in gradients]
    ws = [w.to(DTYPE) for w in weights]
    if len(grads) != len(ws) or any(g.shape != w.shape for g, w in zip(grads, ws)):
        raise ValueError("gradients and weights must be matching per-layer tensors")
    if mu is None:
        mu = recover_logit(grads[-1], ws[-1])
    delta = torch.tensor([-y * float(expit(-mu))], dtype=DTYPE)  # δ_L = y ∂ℓ/∂μ, shape (1,)
    feat_aug = grads[-1].T @ delta / (delta @ delta)  # F̃_{L−1}
    for l in range(len(ws) - 2, -1, -1):  # layer index l ↔ W_{l+1} in the paper's 1-based numbering
        feat = feat_aug[:-1]  # F_{l+1} (drop the constant feature)
        z = activation.inverse(feat)
        delta = (ws[l + 1].T @ delta)[:-1] * activation.derivative(z)
        feat_aug = grads[l].T @ delta / (delta @ delta)
    return feat_aug[:-1]


def recover_input_from_first_layer(grad_first: torch.Tensor) -> torch.Tensor:
    """x from the first layer's gradient alone: ∂ℓ/∂W_1 = δ_1 [x; 1]ᵀ, so x = rows / bias column.

    Least squares over all rows: x̃ = (∂ℓ/∂W_1)ᵀ b / ‖b‖² with b the bias column, then x = x̃[:d_0]/x̃[d_0]
    (x̃[d_0] = 1 for a true gradient; dividing makes the estimate scale-free). Needs neither μ nor the
    weights, and for one sample it stays exact under any number of local updates (see module docstring).
    """
    g = grad_first.to(DTYPE)
    b = g[:, -1]
    x_aug = g.T @ b / (b @ b)
    return x_aug[:-1] / x_aug[-1]


# ---------------------------------------------------------------------------------------------- Theorem 4.2
def client_updates(net: LogisticMLP, x: torch.Tensor, y: int, lr: float, steps: int):
    """The client's trajectory: ([W^0, …, W^U] as networks, [∇ℓ(W^0), …, ∇ℓ(W^{U−1})])."""
    nets, grads = [net], []
    for _ in range(int(steps)):
        g = nets[-1].gradient(x, y)
        grads.append(g)
        nets.append(replace(nets[-1], weights=tuple(w - lr * gi for w, gi in zip(nets[-1].weights, g))))
    return nets, grads


@dataclass(frozen=True)
class MultiUpdateError:
    """One row of Theorem 4.2: the Lemma-4.1 adversary against U local updates.

    ``mu_error`` is signed, μ^rec − μ* (so it can be compared with Eq. 9); ``abs_mu_error`` = |μ^rec − μ*|.
    ``eq6_has_root`` is False when c < G(μ₀) and μ^rec was pinned at μ₀.
    """

    U: int
    mu_true: float
    mu_rec: float
    mu_error: float
    eq9_mu_error: float
    x_rel_error: float
    eq6_has_root: bool

    @property
    def abs_mu_error(self) -> float:
        return abs(self.mu_error)


def eq9(mu_true: float, redundant: float) -> float:
    """Eq. 9 as written: (e^{μ*}+1)² · Σ_{u=1}^{U−1}(∂ℓ/∂W_L^u)·W_L^0 / (μ* e^{μ*} − e^{μ*} − 1).

    ``redundant`` is the sum. Equals ``redundant / eq6_g_prime(mu_true)``; NaN-free for |μ*| < 700.
    """
    e = math.exp(mu_true)
    return (e + 1) ** 2 * redundant / (mu_true * e - e - 1)


def multi_update_error(net: LogisticMLP, x: torch.Tensor, y: int, lr: float, local_updates: int) -> MultiUpdateError:
    """Theorem 4.2 for one U: client does U GD steps from W^0; adversary inverts (W^0 − W^U)/η with W^0.

    Sign convention: the paper writes (W^U − W^0)/η; under W ← W − η∇ℓ that is −Σ_u ∇ℓ(W^u), so the
    adversary's "gradient" is (W^0 − W^U)/η = Σ_{u=0}^{U−1} ∇ℓ(W^u) (Appx A, Eq. 16).
    ``eq9_mu_error`` sums the client's last-layer gradients at W^1 … W^{U−1} (known to us, not to the
    adversary). With a sigmoid network ``x_rel_error`` is NaN once a recovered activation leaves (0, 1).
    """
    U = int(local_updates)
    if U < 1:
        raise ValueError(f"local_updates must be ≥ 1, got {local_updates}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    y = _check_label(y)
    x = x.to(DTYPE)
    nets, grads = client_updates(net, x, y, lr, U)
    w0, wU = net.weights, nets[-1].weights
    g_hat = [(a - b) / lr for a, b in zip(w0, wU)]  # what the adversary sees, as one "gradient"

    mu_true = net.logit(x, y)
    sol = solve_logit(g_hat[-1], w0[-1])
    x_rec = recover_input(g_hat, w0, y, net.activation, mu=sol.mu)
    w_last0 = w0[-1].reshape(-1)
    redundant = sum(float(g[-1].reshape(-1) @ w_last0) for g in grads[1:])  # Σ_{u=1}^{U−1} ∂ℓ/∂W_L^u · W_L^0
    return MultiUpdateError(
        U=U,
        mu_true=mu_true,
        mu_rec=sol.mu,
        mu_error=sol.mu - mu_true,
        eq9_mu_error=eq9(mu_true, redundant),
        x_rel_error=float(torch.linalg.vector_norm(x_rec - x) / torch.linalg.vector_norm(x)),
        eq6_has_root=sol.has_root,
    )


def theorem42_table(
    net: LogisticMLP, x: torch.Tensor, y: int, lr: float, local_updates: Sequence[int] = (1, 2, 4, 6, 8)
) -> pd.DataFrame:
    """One ``multi_update_error`` row per U: columns U, mu_true, mu_rec, mu_error (signed μ^rec − μ*),
    eq9_mu_error, x_rel_error, eq6_has_root."""
    rows = [multi_update_error(net, x, y, lr, u).__dict__ for u in local_updates]
    return pd.DataFrame(rows, columns=["U", "mu_true", "mu_rec", "mu_error", "eq9_mu_error", "x_rel_error",
                                       "eq6_has_root"])
