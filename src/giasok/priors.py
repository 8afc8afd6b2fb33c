"""Image priors for GIA-O (paper §2.3, assumption level 1; Eq. 1's regulariser R).

A prior is a function of the dummy images (N×C×H×W in [0, 1]) returning a scalar to add, weighted, to the
gradient-matching loss. ``PRIORS`` maps the names accepted by ``invert(priors={name: weight})``.

* ``tv`` — anisotropic total variation (Rudin et al., 1992), as used by Geiping et al. (2020): the mean
  absolute difference between vertically and horizontally neighbouring pixels.
"""
from __future__ import annotations

import torch

__all__ = ["PRIORS", "total_variation"]


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean |x[i+1, j] − x[i, j]| + mean |x[i, j+1] − x[i, j]| over the batch."""
    dy = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return dx + dy


# name -> prior(images) -> scalar
PRIORS = {
    "tv": total_variation,
}
