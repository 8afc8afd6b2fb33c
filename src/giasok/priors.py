"""Image priors for gradient inversion (paper §2.3, Eq. 1's regulariser R; assumption levels 1 and 4).

A prior maps the dummy images (N×C×H×W in [0, 1]) and a ``PriorContext`` (what the adversary holds besides
the update) to a scalar added, weighted, to the gradient-matching loss. ``PRIORS`` maps the names that
``invert(priors={name: weight})`` accepts.

* ``tv`` — anisotropic total variation (Rudin et al., 1992) as used by Geiping et al. (2020): the mean
  absolute difference between vertically and horizontally neighbouring pixels. Level 1 (a prior).
* ``bn`` — Yin et al.'s (2021) BatchNorm-statistics prior. Level 4: the client shares, with its update,
  the mean and variance of every BatchNorm layer's input over its (first) mini-batch; the dummy batch is
  pushed through W_0 and Σ_l ‖μ_l(x̂) − μ_l‖₂ + ‖σ²_l(x̂) − σ²_l‖₂ is minimised. The update carries the
  statistics only when the protocol shares them (``client_update(..., share_bn_statistics=True)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["PRIORS", "PriorContext", "total_variation", "bn_statistics_prior", "batchnorm_input_statistics"]


@dataclass(frozen=True)
class PriorContext:
    """The adversary's model at W_0 and side information a prior may use."""

    model: nn.Module
    params: dict
    buffers: dict
    first_batch: torch.Tensor  # indices of the dummy samples that make up the client's first mini-batch
    bn_statistics: dict | None  # BatchNorm layer name -> (mean, variance) of its input, if shared


def total_variation(images: torch.Tensor, context: PriorContext | None = None) -> torch.Tensor:
    """Mean |x[i+1, j] − x[i, j]| + mean |x[i, j+1] − x[i, j]| over the batch."""
    dy = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return dx + dy


def batchnorm_input_statistics(model: nn.Module, images: torch.Tensor, params=None, buffers=None) -> dict:
    """Per BatchNorm layer, the per-channel mean and (biased) variance of its input on ``images``.

    The forward runs in the model's current mode (train or eval) with a copy of the buffers, so running
    statistics are not touched; the returned tensors stay in the autograd graph of ``images``.
    """
    stats, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            def record(mod, inputs, name=name):
                x = inputs[0]
                dims = [0] + list(range(2, x.dim()))
                stats[name] = (x.mean(dims), x.var(dims, unbiased=False))
            hooks.append(module.register_forward_pre_hook(record))
    try:
        params = params if params is not None else dict(model.named_parameters())
        buffers = {k: b.clone() for k, b in (buffers if buffers is not None else dict(model.named_buffers())).items()}
        functional_call(model, (params, buffers), (images,))
    finally:
        for hook in hooks:
            hook.remove()
    return stats


def bn_statistics_prior(images: torch.Tensor, context: PriorContext) -> torch.Tensor:
    """Σ_l ‖μ_l(x̂) − μ_l‖₂ + ‖σ²_l(x̂) − σ²_l‖₂ over the BatchNorm layers (Yin et al., 2021)."""
    dummy = batchnorm_input_statistics(context.model, images[context.first_batch], context.params, context.buffers)
    loss = images.new_zeros(())
    for name, (mean, var) in context.bn_statistics.items():
        mean_hat, var_hat = dummy[name]
        loss = loss + torch.linalg.vector_norm(mean_hat - mean) + torch.linalg.vector_norm(var_hat - var)
    return loss


# name -> prior(images, context) -> scalar
PRIORS = {
    "tv": total_variation,
    "bn": bn_statistics_prior,
}
