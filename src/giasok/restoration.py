"""ROG's learned post-processing: a network that restores the upsampled low-resolution reconstruction (paper §6).

ROG (Yue et al., "Gradient obfuscation gives a false sense of security in federated learning", USENIX Security
2023), the third attack of the paper's §6, optimises a low-resolution image x_low whose interpolation up(x_low)
matches the obfuscated update (``giasok.attacks``, ``method="rog"``), then restores the detail the low resolution
cannot hold with pre-trained networks (its ``src/attack/attacker.py``, ``joint_postprocess``): a denoiser followed
by USRNet super-resolution (Zhang et al., CVPR 2020; ``networks/usrnet.py``, weights ``model_zoos/usrgan.pth``)
averaged with a label-conditioned generator (``postmodel.pth``). Those weights were trained on ImageNet and are
not downloadable here, so the library trains its own restorer on the attacked data set's train split and caches it:

* ``Restorer`` — a small residual CNN (VDSR-like, Kim et al. 2016): ``depth`` 3×3 convolutions of ``width``
  channels with ReLUs predict a correction added to its input, so it maps full-size images to full-size images
  and starts as the identity (the last convolution is zero-initialised, so training starts from the
  interpolation's quality rather than from a random image). It takes up(x_low), the attack's unrestored result,
  rather than x_low as USRNet does: the same information, at the size and place of the image it restores.
* ``train_restorer(dataset, image_size, downsample=…)`` — trains it on pairs (degrade(x), x) of train-split
  images: degrade(x) = up(down(x) + σ·ε), with down the antialiased bicubic resize of USRNet's degradation model
  (ROG's ``model_zoos/kernels_bicubicx234.mat`` is that bicubic kernel), up the attack's own interpolation
  (``AttackConfig.interpolation``) and ε Gaussian noise on the low-resolution image with σ drawn per image
  uniformly in [0, ``noise``]. Noise because the attack's x_low is not down(x) but a noisy estimate of it (ROG
  puts a denoiser before USRNet and gives USRNet a noise level, ``noise_level`` in ``utils/config.yaml``); a range
  of σ rather than one value because how noisy depends on the victim, the model and the defence. The default
  range, [0, 0.15], is what the attack leaves: ROG's x_low on undefended FedSGD updates of a width-8 ConvNet
  (``patches`` 16², factor 4, 300 iterations, six victims) was off down(x) by an RMS of 0.05 to 0.27 (median
  0.19). It is not mild noise, and the restorer trained for it smooths: with the default architecture at 16²,
  ×4, it is 1.5 dB worse than the interpolation on noiseless up(down(x)), but it added 1.9 dB on average to those
  six attacks (0.7 to 3.7 dB each), where a restorer trained without noise (+0.3 dB on noiseless inputs) cost
  them 0.5 dB and one trained with σ ≤ 0.05 added 0.25 dB. At 32², ×4, the default restorer trains in about two
  minutes on one core (114 s measured) and on the 1000 test patches raises up(down(x) + σε) from 20.2 to 23.4 dB
  at σ = 0.1 (from 23.9 to 25.6 dB at σ = 0.05; 29.1 → 27.3 dB without noise); it added 1.1 to 1.7 dB to each of
  six 300-iteration ROG attacks. L1 loss (as USRNet is trained), Adam, random horizontal flips. Stored in
  ``giasok.paths.generators_dir()`` beside the DCGANs, by a hash of its configuration and of
  ``giasok.paths.CACHE_VERSION``; a second call loads it; an unreadable file is set aside (renamed
  ``….damaged-<UTC time>``, with a warning) and the restorer retrained.
* ``load_restorer(path)`` — weights a user supplies for this architecture. ROG's published USRNet (or generator)
  weights are recognised and refused with an explanation: their architecture is not shipped here.

Reproducibility is the DCGAN's (``giasok.generative``): every random draw (initial weights, mini-batches, flips,
noise) comes from one CPU ``torch.Generator`` seeded with ``config.seed`` in a fixed order, training runs on one
torch thread on the CPU inside ``torch.random.fork_rng``, so on one machine and device the weights are
bit-identical and the caller's global RNG is untouched; across CPUs they may differ in the last bits.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from . import paths
from ._io import UNREADABLE, atomic_write, describe, load_cached_state
from .attacks import INTERPOLATIONS, downsample, upsample

__all__ = ["RestorerConfig", "Restorer", "RestorerUnavailable", "train_restorer", "load_restorer", "restorer_path",
           "degrade"]


class RestorerUnavailable(RuntimeError):
    """A restorer's weights or architecture are not available here."""


@dataclass(frozen=True)
class RestorerConfig:
    """Everything that determines a trained restorer (and so its cache name).

    The defaults were chosen to train in about two minutes on one CPU core at 32² (``train_restorer``)."""

    dataset: str = "patches"
    image_size: int = 32
    downsample: int = 4  # ROG's factor (attacker.py: self.sf = 4)
    interpolation: str = "bicubic"  # ROG's up (attacker.py: mode='bicubic')
    noise: float = 0.15  # σ of the low-resolution image's noise is drawn uniformly in [0, noise]
    width: int = 32
    depth: int = 5  # convolutions
    iterations: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0  # seeds every random draw of the training (weights, mini-batches, flips, noise)

    def __post_init__(self):
        for name, low in (("image_size", 2), ("downsample", 1), ("width", 1), ("depth", 2), ("iterations", 1),
                          ("batch_size", 1), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"restorer: {name} must be an integer ≥ {low}, got {value!r}")
        if self.image_size % self.downsample:
            raise ValueError(f"restorer: downsample={self.downsample} must divide image_size={self.image_size}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"restorer: unknown interpolation {self.interpolation!r}; "
                             f"available: {', '.join(INTERPOLATIONS)}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) or self.noise < 0:
            raise ValueError(f"restorer: noise must be a number ≥ 0, got {self.noise!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or self.lr <= 0:
            raise ValueError(f"restorer: lr must be a positive number, got {self.lr!r}")


class Restorer(nn.Module):
    """Full-size image → restored full-size image: the input plus a correction from ``depth`` 3×3 convolutions
    (``width`` channels, ReLU between). Not clamped: ``invert`` clamps its result to [0, 1]."""

    def __init__(self, width: int = 32, depth: int = 5, channels: int = 3):
        super().__init__()
        if width < 1 or depth < 2:
            raise ValueError(f"Restorer needs width ≥ 1 and depth ≥ 2, got width={width}, depth={depth}")
        self.width, self.depth = width, depth
        layers, feats = [], channels
        for _ in range(depth - 1):
            layers += [nn.Conv2d(feats, width, 3, padding=1), nn.ReLU(inplace=True)]
            feats = width
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.tail(self.body(x))


def degrade(images: torch.Tensor, factor: int, interpolation: str = "bicubic", *, noise: torch.Tensor | float = 0.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """up(down(x) + σ·ε): what the restorer is trained to undo. ``noise`` is σ, one number or one per image; ε is
    drawn on the CPU from ``generator`` (so CPU and CUDA see the same numbers)."""
    low = downsample(images, factor)
    sigma = torch.as_tensor(noise, dtype=low.dtype)
    if sigma.ndim == 1:
        sigma = sigma.view(-1, 1, 1, 1)
    if bool((sigma > 0).any()):
        low = low + sigma.to(low.device) * torch.randn(low.shape, generator=generator).to(low.device)
    return upsample(low, factor, interpolation)


# Bumped whenever ``_fit`` would train different weights from the same configuration. The hash also covers
# giasok.paths.CACHE_VERSION, so that bumping the library's cache version retrains the restorers too.
_RECIPE = 1


def _config_hash(config: RestorerConfig) -> str:
    return paths.trained_network_hash(config, _RECIPE)


def restorer_path(config: RestorerConfig, root: str | os.PathLike | None = None) -> Path:
    """Where the restorer of ``config`` is cached, in the data folder ``root`` (default ``giasok.paths.data_dir()``):
    beside the DCGANs, in ``generators_dir``, the folder of the networks giasok trains for its attacks."""
    return paths.generators_dir(root) / (f"restorer-{config.dataset}-{config.image_size}px-x{config.downsample}-"
                                         f"{_config_hash(config)}.pt")


def train_restorer(dataset: str = "patches", image_size: int = 32, *, downsample: int = 4, device: str = "cpu",
                   root: str | os.PathLike | None = None, progress: bool = True, **options) -> Restorer:
    """ROG's post-processing network for ``dataset`` at ``image_size``² and factor ``downsample``: trained once on
    the train split (module docstring), then loaded from the cache.

    ``options`` are the other ``RestorerConfig`` fields (``interpolation`` — pass the attack's —, ``noise``,
    ``width``, ``depth``, ``iterations``, ``seed``, …). Training is bit-reproducible on one machine and device, runs
    on one torch thread on the CPU whatever the caller's setting, and leaves the caller's global RNG as it was.
    Returns the restorer in eval mode on ``device``; ``restorer.config`` is its configuration.
    """
    from .data import image_size_option, load_dataset

    unknown = set(options) - {f.name for f in dataclasses.fields(RestorerConfig)}
    if unknown:
        raise ValueError(f"train_restorer: unknown option(s) {sorted(unknown)}; "
                         f"available: {[f.name for f in dataclasses.fields(RestorerConfig)]}")
    config = RestorerConfig(dataset=dataset, image_size=image_size, downsample=downsample, **options)
    path = restorer_path(config, root)
    with torch.random.fork_rng(devices=[]):  # the modules' default initialisation draws from the global RNG
        restorer = load_cached_state(path, lambda: Restorer(config.width, config.depth), "restorer",
                                     key="state_dict")
        if restorer is None:
            data = load_dataset(dataset, "train", root=root, download=True, **image_size_option(dataset, image_size))
            images = torch.stack([data[i][0] for i in range(len(data))])
            if images.shape[-1] != image_size:
                images = nn.functional.interpolate(images, size=(image_size, image_size), mode="bilinear",
                                                   antialias=True, align_corners=False).clamp(0, 1)
            from .runs import cpu_threads  # here, not at the top: runs imports this module lazily too

            with cpu_threads(1, device):  # the thread count changes the weights (giasok.generative's docstring)
                restorer = _fit(images, config, device, progress)
            state = {"architecture": {"width": config.width, "depth": config.depth},
                     "state_dict": restorer.state_dict()}
            atomic_write(path, lambda f: torch.save(state, f))
    restorer.config = config
    return restorer.to(device).eval()


def _fit(images: torch.Tensor, config: RestorerConfig, device, progress) -> Restorer:
    """Adam on the L1 distance between restorer(degrade(x)) and x over random mini-batches of the train images.

    Every random draw comes from ``rng``, seeded with ``config.seed``, in a fixed order: the initial weights (the
    module's default initialisation, drawn from the global RNG seeded with ``config.seed`` inside the caller's fork),
    then per iteration the mini-batch, its flips, its noise levels and the noise.
    """
    rng = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    restorer = Restorer(config.width, config.depth)
    nn.init.zeros_(restorer.tail.weight)  # start as the identity: the interpolation itself
    nn.init.zeros_(restorer.tail.bias)
    restorer.to(device).train()
    optimizer = torch.optim.Adam(restorer.parameters(), lr=config.lr)
    bar = tqdm(range(config.iterations), desc=f"training restorer on {config.dataset} ({config.image_size}px, "
               f"x{config.downsample})", disable=not progress, mininterval=2.0)
    for it in bar:
        batch = images[torch.randint(len(images), (config.batch_size,), generator=rng)]
        flip = torch.rand(config.batch_size, generator=rng) < 0.5
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch).to(device)
        sigma = config.noise * torch.rand(config.batch_size, generator=rng)
        degraded = degrade(batch, config.downsample, config.interpolation, noise=sigma, generator=rng)
        loss = (restorer(degraded) - batch).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if it % 100 == 0:
            bar.set_postfix(l1=f"{loss.item():.4f}")
    return restorer.cpu()


# Parameter names of ROG's published post-processing networks (github.com/KAI-YUE/rog, model_zoos/ from its
# README's Hugging Face link): USRNet's (networks/usrnet.py: self.p ResUNet, self.h HyPaNet) in usrgan.pth, and the
# conditional generator's / denoiser's checkpoints (postmodel.pth, denoiser.pth) keyed "gen_state_dict".
_USRNET_PREFIXES = ("p.m_head", "p.m_down1", "h.mlp")
_ROG_CHECKPOINT_KEYS = ("gen_state_dict", "dis_state_dict")


def load_restorer(path: str | os.PathLike, *, width: int | None = None, depth: int | None = None,
                  device: str = "cpu") -> Restorer:
    """A ``Restorer`` with weights the user supplies: a file ``train_restorer`` wrote (its architecture is stored
    with the weights), or a plain state dict of this architecture (give ``width`` and ``depth``; defaults 32, 5).

    ROG's own post-processing networks are not this architecture: USRNet (``usrgan.pth``) is a deep unfolding
    network that takes the low-resolution image with a blur kernel, the factor and a noise level, and ROG's
    generator and denoiser (``postmodel.pth``, ``denoiser.pth``) are other networks again. Their files raise
    ``RestorerUnavailable`` saying so, rather than being loaded into something they do not fit.
    """
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise
    except UNREADABLE as error:
        raise RestorerUnavailable(f"cannot read restorer weights from {path}: {describe(error)}") from error
    if not isinstance(stored, dict):
        raise RestorerUnavailable(f"{path} holds a {type(stored).__name__}, not a restorer's state dict")
    if any(key in stored for key in _ROG_CHECKPOINT_KEYS) or any(
            str(key).startswith(_USRNET_PREFIXES) for key in stored):
        raise RestorerUnavailable(
            f"{path} holds ROG's published post-processing weights (USRNet, or its conditional generator / "
            "denoiser), whose architectures giasok does not ship: USRNet (Zhang et al. 2020) super-resolves the "
            "low-resolution image given a blur kernel, the factor and a noise level. To use them, copy ROG's "
            "networks/usrnet.py and networks/basicblock.py (github.com/KAI-YUE/rog), load the weights into "
            "USRNet(n_iter=8, h_nc=64, in_nc=4, out_nc=3, nc=[64, 128, 256, 512], nb=2, act_mode='R', "
            "downsample_mode='strideconv', upsample_mode='convtranspose'), wrap it in a module that takes the "
            "upsampled N×3×H×W image, downsamples it and returns usrnet(x_low, kernel, sf, sigma), and pass that "
            "module as invert(..., restorer=module). Note they were trained on ImageNet at 128².")
    architecture = stored.get("architecture", {})
    state = stored.get("state_dict", stored)
    width = width or architecture.get("width", 32)
    depth = depth or architecture.get("depth", 5)
    restorer = Restorer(width, depth)
    try:
        restorer.load_state_dict(state)
    except RuntimeError as error:
        raise RestorerUnavailable(f"{path} does not hold weights of a Restorer(width={width}, depth={depth}): "
                                  f"{describe(error)}") from error
    return restorer.to(device).eval()
