"""Post-processing defences a client applies to its update before sharing it (paper §6, Appx B.III, Table 6).

The paper's four families: quantisation (Q: QSGD, Alistarh et al. 2017, with 1–4 bits, and SignSGD, Bernstein
et al. 2018), sparsification (S: top-k), clipping (C: flat clipping, McMahan et al. 2018) and perturbation
(P: Gaussian noise, as in local DP, Naseri et al. 2020). The paper follows the code of ROG (Yue et al. 2023,
"Gradient obfuscation gives a false sense of security in federated learning"); where the paper is silent these
functions follow that code (``src/compress/compressor.py``, ``main.py``, ``src/fedalg/*.py`` of KAI-YUE/rog), and
each function's docstring names the convention and the line it comes from.

Every defence is a pure function on a ``giasok.fl.ClientUpdate``: it returns a new update (the input, its dict
and its tensors are left untouched) whose ``defenses`` has a record ``(name, ((parameter, value), ...))``
appended, so defences compose (``perturb(clip(u, 0.1), 0.1)``) and a result says what was done to it.
They act on ``delta`` = W_U − W_0 only; BatchNorm running statistics (``buffers``) are not gradients and are
shared as they are. Stochastic defences draw from a local ``torch.Generator`` seeded by ``seed``, never from
the global RNG, so a defended update is a function of (update, strength, seed).

Working on ``delta`` rather than on the gradient ``−delta/η`` that ROG compresses (ROG's FedAvg shares
``(W_0 − W_U)/η``, ``src/fedalg/fedavg.py``) changes nothing for QSGD, top-k and the noise (each commutes with
multiplying the update by −1/η); SignSGD says how it maps ROG's unit signs, and a clipping bound ``b`` on the
update is a bound ``b/η`` on that gradient.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import torch

__all__ = ["quantize", "sign", "sparsify", "clip", "perturb", "apply", "DEFENSES", "PAPER_GRID", "STRONGER",
           "strength_order", "update_norm", "SCALINGS"]

SCALINGS = ("max", "l2")


def _record(update, name: str, **parameters):
    return update.defenses + ((name, tuple(parameters.items())),)


def _replace(update, delta: dict, name: str, **parameters):
    return dataclasses.replace(update, delta=delta, defenses=_record(update, name, **parameters))


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer ≥ 0, got {seed!r}")
    return int(seed)


def update_norm(delta: dict) -> float:
    """The L2 norm of the whole update (all tensors flattened into one vector), accumulated in float64."""
    return math.sqrt(sum(float(d.double().pow(2).sum()) for d in delta.values()))


def quantize(update, bits: int, *, seed: int = 0, scaling: str = "max"):
    """QSGD (Alistarh et al. 2017): each tensor v is sent as its scale ‖v‖, the signs, and for every entry a level
    index l ∈ {0, …, s} with **s = 2**bits − 1** (``bits`` bits per index, the sign sent beside it); it is
    decoded as ‖v‖·sign(v)·l/s.

    * Levels: ROG's ``QsgdQuantizer`` takes ``quant_level`` levels and uses s = quant_level − 1
      (``src/compress/compressor.py`` l. 76–77, the commented config ``quant_level: 16`` of ``utils/config.yaml``
      l. 11 being 4 bits); ``bits`` bits give quant_level = 2**bits. So a tensor's entries take at most
      2**bits distinct magnitudes (0 included): 1 bit → {0, ‖v‖} (ternary with the sign), 2 bits → 4 levels.
    * Rounding: stochastic, l = ⌊|v|/‖v‖·s⌋ + Bernoulli(frac), so E[Q(v)] = v (unbiased) and
      E‖Q(v) − v‖² ≤ min(n/s², √n/s)·‖v‖² (Alistarh et al. Lemma 3.1; it holds for either scaling below since
      max|v| ≤ ‖v‖₂) — compressor.py l. 84–88.
    * Per tensor: ROG quantises each parameter tensor on its own (``main.py`` l. 38–40).
    * ``scaling``: ``"max"`` (default) scales by max|v|, as ROG's code does (compressor.py l. 80–81: the L2 line is
      commented out, ``norm = torch.max(arr.abs())`` is used) — the paper follows ROG, so its chapter should use
      this; ``"l2"`` scales by ‖v‖₂ as Alistarh et al. define QSGD (far sparser at few bits: most |v_i|/‖v‖₂ ≪ 1/s).
    * An all-zero tensor stays zero (ROG would divide 0 by 0).
    """
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits < 1:
        raise ValueError(f"bits must be an integer ≥ 1, got {bits!r}")
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; use one of {SCALINGS}")
    seed = _check_seed(seed)
    levels = 2 ** int(bits) - 1
    generator = torch.Generator().manual_seed(seed)
    delta = {}
    for name, v in update.delta.items():
        uniform = torch.rand(v.shape, generator=generator, dtype=torch.float64).to(v.device)
        scale = v.abs().max() if scaling == "max" else v.double().norm()
        scale = float(scale) if v.numel() else 0.0
        if scale == 0.0:
            delta[name] = torch.zeros_like(v)
            continue
        level = v.double().abs() / scale * levels
        lower = level.floor()
        level = lower + (uniform < level - lower)
        delta[name] = (v.sign().double() * level * (scale / levels)).to(v.dtype)
    return _replace(update, delta, "quantize", bits=int(bits), scaling=scaling, seed=seed)


def sign(update):
    """SignSGD (Bernstein et al. 2018): every entry of the update replaced by ±η (η = the client's ``lr``).

    * Magnitude: ROG's ``SignSGDCompressor`` decodes each entry of the shared gradient to ±1, unscaled
      (``src/compress/compressor.py`` l. 43 and 48); its FedAvg gradient is (W_0 − W_U)/η
      (``src/fedalg/fedavg.py``). On the update that is Δ' = η·sign(Δ), so ``as_gradient()`` of the result is
      exactly ROG's ±1 — one SignSGD step with the client's learning rate. Only the signs (the direction's
      orthant) survive, which is what a cosine-matching attack uses.
    * Zeros: ROG encodes ``tensor >= 0``, sending an exact 0 as +1; here an exact 0 stays 0 (``torch.sign``), so a
      parameter that received no gradient is not moved by −η. Otherwise identical.
    * Deterministic: no seed.
    """
    delta = {name: torch.sign(d) * update.lr for name, d in update.delta.items()}
    return _replace(update, delta, "sign", lr=update.lr)


def _kept(keep: float, n: int) -> int:
    # ⌈keep·n⌉ as ROG (np.ceil(numel·(1 − sparsity))); keep·n is first rounded to 9 decimals so that float noise
    # (0.55·100 = 55.00000000000001) does not keep one entry more than the share says
    return min(n, math.ceil(round(keep * n, 9)))


def sparsify(update, keep: float):
    """Top-k sparsification: in every tensor keep the ⌈keep·n⌉ entries of largest |value| and zero the rest.

    * ``keep`` is the share KEPT: the paper (Appx B.III) selects "proportion k … greatest absolute values as
      significant elements", k ∈ {0.6, …, 0.95}. ROG's ``Topk`` takes the share dropped, ``sparsity``, and keeps
      k = ⌈numel·(1 − sparsity)⌉ (``src/compress/compressor.py`` l. 63), so keep = 1 − sparsity.
    * Count: exactly ⌈keep·n⌉ per tensor (at least one entry). ROG's mask ``abs > k-th largest`` (l. 65) keeps
      only the k − 1 entries strictly above the k-th largest; here the k-th is kept too, so the count is the one
      its line 63 computes. Ties at the threshold are broken by ``torch.topk`` (deterministically).
    * Per tensor: ROG compresses each parameter tensor on its own (``main.py`` l. 38–40).
    * keep = 1 is the identity.
    """
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real) or not 0 < keep <= 1:
        raise ValueError(f"keep must be a share in (0, 1], got {keep!r}")
    delta = {}
    for name, d in update.delta.items():
        k = _kept(float(keep), d.numel())
        mask = torch.zeros(d.numel(), dtype=torch.bool, device=d.device)
        mask[torch.topk(d.abs().flatten(), k, sorted=False).indices] = True
        delta[name] = torch.where(mask.view(d.shape), d, torch.zeros_like(d))
    return _replace(update, delta, "sparsify", keep=float(keep))


def clip(update, bound: float):
    """Flat clipping (McMahan et al. 2018, the paper's [61]): the whole update, all tensors as one vector, is
    scaled by min(1, bound/‖Δ‖₂), so its L2 norm is at most ``bound`` and its direction is unchanged.

    * Flat, not per layer: the paper says "flat clipping"; ROG's code has no clipping (its ``FedCdp`` is a stub,
      "coming with opacus", ``src/fedalg/fedcdp.py``), so this is the DP-FedAvg definition.
    * On the update Δ = W_U − W_0, not on the gradient −Δ/η (a bound b here is b/η there).
    * An update already within the bound is returned unchanged (the same values).
    * Float32 rounding: the scaled entries carry a relative error ≤ 2·2⁻²⁴ (factor and product each rounded once),
      so the norm after is ≤ bound·(1 + 2⁻²³) — not exactly ≤ bound.
    """
    if isinstance(bound, bool) or not isinstance(bound, numbers.Real) or not bound > 0:
        raise ValueError(f"bound must be a number > 0, got {bound!r}")
    norm = update_norm(update.delta)
    factor = 1.0 if norm <= bound else float(bound) / norm
    delta = {name: d.clone() if factor == 1.0 else d * factor for name, d in update.delta.items()}
    return _replace(update, delta, "clip", bound=float(bound))


def _clip_bound(update):
    """The bound of the last ``clip`` recorded on ``update`` (None when it was never clipped)."""
    for name, parameters in reversed(update.defenses):
        if name == "clip":
            return dict(parameters)["bound"]
    return None


def perturb(update, multiplier: float, *, seed: int = 0, bound: float | None = None):
    """Gaussian perturbation: every entry of the update gets independent N(0, σ²) noise with
    **σ = multiplier × S**, S a clipping bound.

    * The multiplier is a noise multiplier as in DP-FedAvg / local DP (McMahan et al. 2018; Naseri et al. 2020,
      the paper's [63]) and Opacus (std = noise_multiplier × max_grad_norm), which ROG's ``FedCdp`` defers to
      ("coming with opacus", ``src/fedalg/fedcdp.py``); ROG's code itself adds no noise.
    * S: ``bound`` when given; else the bound of the last ``clip`` recorded on the update (``clip`` then
      ``perturb`` is then exactly the Gaussian mechanism of DP-FedAvg); else — the paper's P alone, which does
      not say what its multiplier scales — the root mean square of the update's entries, ‖Δ‖₂/√n. The noise's
      expected norm is then multiplier × ‖Δ‖₂: the multiplier is the noise-to-signal ratio, the same for any
      lr, E, model or size. (S = ‖Δ‖₂, the DP reading without a clip, would make the paper's smallest
      multiplier, 0.05, add noise of about 0.05·√n ≈ 167 × ‖Δ‖ on ResNet-18 — no FedAvg run keeps its
      accuracy under that, while the paper's Fig. 11 finds acceptable P strengths. Give ``bound`` for it.)
    * The σ used is recorded (``("sigma", σ)``) beside the multiplier and S.
    * multiplier = 0 leaves the values unchanged.
    """
    if isinstance(multiplier, bool) or not isinstance(multiplier, numbers.Real) or not multiplier >= 0:
        raise ValueError(f"multiplier must be a number ≥ 0, got {multiplier!r}")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real) or not bound > 0):
        raise ValueError(f"bound must be None or a number > 0, got {bound!r}")
    seed = _check_seed(seed)
    scale = bound if bound is not None else _clip_bound(update)
    if scale is None:
        entries = sum(d.numel() for d in update.delta.values())
        scale = update_norm(update.delta) / math.sqrt(entries) if entries else 0.0
    scale = float(scale)
    sigma = float(multiplier) * scale
    generator = torch.Generator().manual_seed(seed)
    delta = {}
    for name, d in update.delta.items():
        noise = torch.randn(d.shape, generator=generator, dtype=torch.float64) * sigma
        delta[name] = (d.double() + noise.to(d.device)).to(d.dtype)
    return _replace(update, delta, "perturb", multiplier=float(multiplier), bound=scale, sigma=sigma, seed=seed)


DEFENSES = {"Q": quantize, "S": sparsify, "C": clip, "P": perturb}
_STOCHASTIC = {"Q", "P"}


def apply(update, defence: str, strength, *, seed: int = 0):
    """One entry point for the paper's grid: ``("Q", 2)`` → 2-bit QSGD, ``("Q", "sign")`` → SignSGD (Q's coarsest
    setting), ``("S", 0.9)`` → top-k keeping 90 %, ``("C", 0.1)`` → flat clipping at 0.1, ``("P", 0.1)`` →
    Gaussian noise with multiplier 0.1, ``("none", None)`` → the update itself. ``seed`` feeds Q and P."""
    if defence == "none":
        if strength is not None:
            raise ValueError(f"defence 'none' takes strength None, got {strength!r}")
        return update
    if defence not in DEFENSES:
        raise ValueError(f"unknown defence {defence!r}; use one of {sorted(DEFENSES)} or 'none'")
    if defence == "Q" and strength == "sign":
        return sign(update)
    if defence in _STOCHASTIC:
        return DEFENSES[defence](update, strength, seed=seed)
    return DEFENSES[defence](update, strength)


# Appx B.III: the strengths the paper sweeps (Q and S shared by both models)
_Q = (1, 2, 3, 4, "sign")
_S = (0.6, 0.7, 0.8, 0.9, 0.95)
PAPER_GRID = {
    "resnet18": {"Q": _Q, "S": _S, "C": (0.5, 0.3, 0.1, 0.05, 0.01), "P": (0.05, 0.1, 0.15, 0.2, 0.25)},
    "swin": {"Q": _Q, "S": _S, "C": (1, 0.7, 0.5, 0.3, 0.1), "P": (0.005, 0.007, 0.01, 0.03, 0.05)},
}
# which end of each grid obfuscates the update most
STRONGER = {"Q": "fewer bits; 'sign' strongest (1 bit an entry, no magnitude)", "S": "smaller keep",
            "C": "smaller bound", "P": "larger multiplier"}


def _strength_key(defence: str):
    if defence == "Q":
        # 'sign' sends 1 bit an entry, below 1-bit QSGD's 1 + sign bits: the coarsest encoding. Coarsest is not
        # necessarily the best defence (1-bit QSGD zeroes most entries at random; sign keeps every sign).
        return lambda v: 0 if v == "sign" else -v
    if defence in ("S", "C"):
        return lambda v: -v
    if defence == "P":
        return lambda v: v
    raise ValueError(f"unknown defence {defence!r}; use one of {sorted(DEFENSES)}")


def strength_order(defence: str, values) -> tuple:
    """``values`` of one defence ordered from the weakest to the strongest obfuscation (see ``STRONGER``)."""
    return tuple(sorted(values, key=_strength_key(defence)))
