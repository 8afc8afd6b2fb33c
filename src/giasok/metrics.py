"""Reconstruction quality (paper §4, Appx C.II).

* ``psnr`` and ``ssim`` — scikit-image's implementations, per image, on [0, 1] images (data range 1).
* ``lpips_alex`` — LPIPS v0.1 with the AlexNet backbone (Zhang et al., 2018), from the ``lpips`` package;
  lower is better and the paper reads > 0.1 as "unrecognisable". The package ships its linear heads but
  takes the AlexNet backbone from torchvision's ImageNet weights (``alexnet-owt-7be5be79.pth``), which it
  downloads. Where that file is missing this module raises ``MetricUnavailable``; it never substitutes
  another network.
* ``match`` — pairs reconstructions with ground-truth samples by the Hungarian algorithm (scipy) on PSNR,
  since an attack returns a batch in arbitrary order.
* ``brr`` / ``wsrr`` — Appx C.II's sample-level rates with the indicator 1[PSNR > τ1 ∧ LPIPS < τ2]
  (τ1 = 18 dB, τ2 = 0.1). Without LPIPS they are computed on PSNR alone and say so in their ``criterion``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["MetricUnavailable", "psnr", "ssim", "lpips_alex", "lpips_available", "match", "brr", "wsrr",
           "RecoveryRate", "ALEXNET_WEIGHTS", "TAU_PSNR", "TAU_LPIPS"]

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_WEIGHTS
TAU_PSNR = 18.0
TAU_LPIPS = 0.1


class MetricUnavailable(RuntimeError):
    """A metric's required files are not installed on this machine."""


def _images(x) -> np.ndarray:
    """N×C×H×W float64 array from a tensor, array or ``Reconstruction``."""
    x = getattr(x, "images", x)
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected images N×C×H×W (or C×H×W), got shape {x.shape}")
    return x.astype(np.float64)


def _pairs(reconstruction, truth):
    a, b = _images(reconstruction), _images(truth)
    if a.shape != b.shape:
        raise ValueError(f"reconstruction {a.shape} and truth {b.shape} differ in shape")
    return a, b


def psnr(reconstruction, truth) -> np.ndarray:
    """PSNR in dB of each image (data range 1); +inf for an exact copy."""
    a, b = _pairs(reconstruction, truth)
    with np.errstate(divide="ignore"):
        return np.array([peak_signal_noise_ratio(t, r, data_range=1.0) for r, t in zip(a, b)])


def ssim(reconstruction, truth) -> np.ndarray:
    """SSIM of each image (channels last to scikit-image, data range 1, default 7×7 window)."""
    a, b = _pairs(reconstruction, truth)
    return np.array([structural_similarity(t.transpose(1, 2, 0), r.transpose(1, 2, 0), channel_axis=2,
                                           data_range=1.0) for r, t in zip(a, b)])


def _alexnet_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS


def lpips_available() -> bool:
    """Whether the AlexNet backbone weights LPIPS needs are installed."""
    return _alexnet_weights_path().is_file()


_LPIPS_MODELS: dict = {}


def _lpips_model(random_backbone: bool, device):
    key = (random_backbone, str(device))
    if key not in _LPIPS_MODELS:
        import lpips

        if not random_backbone and not lpips_available():
            raise MetricUnavailable(
                f"LPIPS needs torchvision's ImageNet AlexNet weights '{ALEXNET_WEIGHTS}' in "
                f"{_alexnet_weights_path().parent}. On a machine with a network run\n"
                f"  python -c \"import torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')\"\n"
                f"or download {ALEXNET_URL} into that folder (set TORCH_HOME to move it).")
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # lpips calls torchvision's deprecated `pretrained=`
            torch.manual_seed(0)  # the random test backbone is the same every time
            model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=random_backbone,
                                verbose=False)
        _LPIPS_MODELS[key] = model.eval().to(device)
    return _LPIPS_MODELS[key]


def lpips_alex(reconstruction, truth, *, device="cpu", random_backbone_for_testing: bool = False) -> np.ndarray:
    """LPIPS (AlexNet, v0.1) of each image; images in [0, 1].

    Raises ``MetricUnavailable`` when the AlexNet weights are not installed. ``random_backbone_for_testing``
    uses a randomly initialised AlexNet under LPIPS's trained heads: the numbers are *not* LPIPS and exist
    only so tests can exercise the plumbing on a machine without the weights.
    """
    a, b = _pairs(reconstruction, truth)
    model = _lpips_model(random_backbone_for_testing, device)
    to = lambda x: torch.from_numpy(x).float().to(device)  # noqa: E731
    with torch.no_grad():
        return model(to(a), to(b), normalize=True).flatten().cpu().numpy().astype(np.float64)


def match(reconstruction, truth):
    """Reorder a reconstructed batch to best match ``truth`` (Hungarian assignment maximising total PSNR).

    Returns ``(images, order)``: ``images[i] = reconstruction[order[i]]`` is the reconstruction assigned to
    ``truth[i]``, as a tensor.
    """
    a, b = _pairs(reconstruction, truth)
    mse = ((a[:, None] - b[None]) ** 2).reshape(len(a), len(b), -1).mean(-1)
    cost = 10 * np.log10(np.maximum(mse, 1e-12))  # = −PSNR up to a constant
    rows, cols = linear_sum_assignment(cost)
    order = np.empty(len(b), dtype=np.int64)
    order[cols] = rows
    return torch.from_numpy(a[order]).float(), order


@dataclass(frozen=True)
class RecoveryRate:
    """A rate in [0, 1] and the success criterion it was computed with."""

    value: float
    criterion: str

    def __float__(self):
        return self.value


def _recovered(psnr_values, lpips_values, tau_psnr, tau_lpips):
    psnr_values = np.asarray(psnr_values, dtype=np.float64)
    if lpips_values is None:
        return psnr_values > tau_psnr, f"PSNR > {tau_psnr:g} dB only (LPIPS unavailable)"
    lpips_values = np.asarray(lpips_values, dtype=np.float64)
    if lpips_values.shape != psnr_values.shape:
        raise ValueError(f"PSNR {psnr_values.shape} and LPIPS {lpips_values.shape} values differ in shape")
    return ((psnr_values > tau_psnr) & (lpips_values < tau_lpips),
            f"PSNR > {tau_psnr:g} dB and LPIPS < {tau_lpips:g}")


def brr(psnr_values, lpips_values=None, *, tau_psnr=TAU_PSNR, tau_lpips=TAU_LPIPS) -> RecoveryRate:
    """Batch Reconstruction Rate: the share of a batch's samples whose reconstruction leaks.

    ``psnr_values`` (and ``lpips_values``) hold one value per sample, or an R×B array for R attacks, in
    which case the rate is averaged over all R·B samples.
    """
    hit, criterion = _recovered(psnr_values, lpips_values, tau_psnr, tau_lpips)
    if hit.size == 0:
        raise ValueError("brr needs at least one sample")
    return RecoveryRate(float(hit.mean()), criterion)


def wsrr(psnr_values, lpips_values=None, *, tau_psnr=TAU_PSNR, tau_lpips=TAU_LPIPS) -> RecoveryRate:
    """Worst-Sample Reconstruction Rate over R attack initialisations on one batch (arrays R×B).

    Our reading of Appx C.II: each sample's reconstruction rate is the share of the R initialisations that
    recover it; WSRR is that rate for the most vulnerable sample, i.e. ``max_b mean_r 1[recovered(r, b)]``.
    """
    hit, criterion = _recovered(psnr_values, lpips_values, tau_psnr, tau_lpips)
    if hit.ndim != 2 or hit.size == 0:
        raise ValueError(f"wsrr needs an R×B array (attack initialisations × samples), got shape {hit.shape}")
    return RecoveryRate(float(hit.mean(axis=0).max()), criterion)
