"""Generative image priors for GIA-L (paper §2.3, assumption level 2; §4.2.1 and Appx B.I).

GIA-L searches the latent space of a generator trained on the client's data distribution instead of
pixel space (Jeon et al.'s GIAS; Li et al.'s GGL). The paper uses a pre-trained DCGAN (Radford et al.,
2016) for CIFAR and BigGAN for ImageNet. No pre-trained weights can be fetched here, so the library trains
its own DCGAN and caches it:

* ``train_dcgan(dataset, resolution, …)`` — a DCGAN for ``resolution``² images (a power of two ≥ 16),
  trained with the standard recipe (Adam 2e-4, β₁ = 0.5, non-saturating BCE loss) and stored in
  ``giasok.paths.generators_dir()`` (``data/generators/``) by a hash of its full configuration and of
  ``giasok.paths.CACHE_VERSION``; a second call with the same configuration loads it instead of retraining.
  A cached file that cannot be loaded is set aside (renamed ``….damaged-<UTC time>``, with a warning) and
  the generator retrained.
  Its output is in [0, 1], like every image in this library.
  ``train_dcgan(..., seed=k)`` (``DCGANConfig.seed``) trains another generator of the same recipe; the seed
  is part of the configuration and so of the cache name.
* ``load_biggan(...)`` — BigGAN through the optional ``pytorch-pretrained-biggan`` package, which downloads
  its weights: only on a machine with a network, and a clear error otherwise (never a silent fallback).

Reproducibility of the trained generator. Every random draw of the training — the initial weights of
generator and discriminator (N(0, 0.02) as in DCGAN), the real mini-batches and the latents z — comes from one
``torch.Generator`` on the CPU seeded with ``config.seed``, in a fixed order; the latents are drawn on the CPU and
then moved, so CPU and CUDA runs see the same numbers. Training runs inside ``torch.random.fork_rng``, so the
caller's global RNG state is the same afterwards. What that buys, precisely:

* same machine, same torch build, same device: bit-identical weights. On the CPU training always runs on
  one torch thread, whatever the caller's setting: reductions split across threads sum in another order,
  and a generator trained in a 2-thread notebook differed (by 7e-9 after 20 iterations) from one trained in
  a 1-thread worker, which is enough to move a GIA-L PSNR in its 7th digit;
* another CPU: it may differ. torch/oneDNN choose vectorised kernels by what the CPU supports (AVX2 vs
  AVX-512), and floating-point sums in another order round differently; GAN training amplifies those
  last-bit differences over its iterations. The trained generator is therefore part of an experiment's
  result, not a deterministic function of its configuration across machines (which is why it is cached,
  can be copied along with the results, and why the chapters gate GIA-L on several generator seeds);
* CUDA: training sets cuDNN to its deterministic, non-benchmarking mode for its duration, but some CUDA
  kernels are non-deterministic still (atomic adds); for bit-identical GPU runs call
  ``torch.use_deterministic_algorithms(True)`` (with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``) before training.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from . import paths
from ._io import atomic_write, load_cached_state

__all__ = ["DCGANConfig", "DCGANGenerator", "train_dcgan", "sample_figure", "load_biggan", "biggan_prior", "BigGANPrior",
           "GeneratorUnavailable"]


class GeneratorUnavailable(RuntimeError):
    """A generator's weights or package are not available on this machine."""


@dataclass(frozen=True)
class DCGANConfig:
    """Everything that determines a trained DCGAN (and so its cache name)."""

    dataset: str = "patches"
    resolution: int = 32
    latent_dim: int = 100
    width: int = 64  # feature maps of the last generator / first discriminator layer
    iterations: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    seed: int = 0  # seeds every random draw of the training (weights, mini-batches, latents)


class DCGANGenerator(nn.Module):
    """z ∈ ℝ^latent_dim → image in [0, 1]: a 4×4 projection, then stride-2 transposed convolutions."""

    def __init__(self, resolution: int = 32, latent_dim: int = 100, width: int = 64, channels: int = 3):
        super().__init__()
        steps = int(math.log2(resolution)) - 2
        if resolution < 16 or 2 ** (steps + 2) != resolution:
            raise ValueError(f"DCGAN resolution must be a power of two ≥ 16, got {resolution}")
        self.latent_dim = latent_dim
        feats = width * 2 ** (steps - 1)
        layers = [nn.ConvTranspose2d(latent_dim, feats, 4, 1, 0, bias=False), nn.BatchNorm2d(feats), nn.ReLU(True)]
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(feats, feats // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(feats // 2),
                       nn.ReLU(True)]
            feats //= 2
        layers += [nn.ConvTranspose2d(feats, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return (self.net(z.view(len(z), -1, 1, 1)) + 1) / 2


def _discriminator(resolution: int, width: int, channels: int = 3) -> nn.Module:
    steps = int(math.log2(resolution)) - 2
    layers, feats = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], width
    for _ in range(steps - 1):
        layers += [nn.Conv2d(feats, feats * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(feats * 2), nn.LeakyReLU(0.2, True)]
        feats *= 2
    layers += [nn.Conv2d(feats, 1, 4, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


# Bumped whenever ``_fit`` would train different weights from the same configuration, so that a cached
# generator of an older recipe is not loaded as if it were this one's. 2: all draws from one seeded
# torch.Generator (1 drew the initial weights and the latents from the global RNG). The hash also covers
# giasok.paths.CACHE_VERSION, so that bumping the library's cache version retrains the generators too.
_RECIPE = 2


def _config_hash(config: DCGANConfig) -> str:
    return paths.trained_network_hash(config, _RECIPE)


def generator_path(config: DCGANConfig, root: str | os.PathLike | None = None) -> Path:
    """Where the generator of ``config`` is cached, in the data folder ``root`` (default
    ``giasok.paths.data_dir()``)."""
    return paths.generators_dir(root) / f"dcgan-{config.dataset}-{config.resolution}px-{_config_hash(config)}.pt"


def train_dcgan(dataset: str = "patches", resolution: int = 32, *, root: str | os.PathLike | None = None,
                device: str = "cpu", progress: bool = True, **options) -> DCGANGenerator:
    """A DCGAN generator for ``dataset`` at ``resolution``², trained once and then loaded from the cache.

    ``options`` are the other ``DCGANConfig`` fields (``iterations``, ``width``, ``latent_dim``, ``seed``, …);
    ``seed=k`` trains the k-th generator of the same recipe (all its random draws come from it), e.g. to
    see how much a GIA-L result depends on the particular generator. Training is bit-reproducible on one
    machine and device but not across CPUs (module docstring), and leaves the caller's global RNG as it was.
    ``root`` is the data folder holding both the training data and ``generators/`` (default
    ``giasok.paths.data_dir()``). Returns the generator in eval mode on ``device``; ``generator.config`` is
    its configuration.
    """
    from .data import image_size_option, load_dataset

    unknown = set(options) - {f.name for f in dataclasses.fields(DCGANConfig)}
    if unknown:
        raise ValueError(f"train_dcgan: unknown option(s) {sorted(unknown)}; "
                         f"available: {[f.name for f in dataclasses.fields(DCGANConfig)]}")
    config = DCGANConfig(dataset=dataset, resolution=resolution, **options)
    path = generator_path(config, root)
    # The modules' constructors draw their default initialisation from the global RNG: fork it, so that
    # neither building nor training a generator moves the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        generator = load_cached_state(path, lambda: DCGANGenerator(resolution, config.latent_dim, config.width),
                                      "DCGAN generator")
        if generator is None:
            generator = DCGANGenerator(resolution, config.latent_dim, config.width)
            data = load_dataset(dataset, "train", root=root, download=True,  # CIFAR where a network exists
                                **image_size_option(dataset, resolution))
            images = _resized_stack(data, resolution)
            from .runs import cpu_threads  # here, not at the top: runs imports this module lazily too

            with cpu_threads(1, device):  # see the module docstring: the thread count changes the weights
                _fit(generator, images, config, device, progress)
            atomic_write(path, lambda f: torch.save(generator.state_dict(), f))
    generator.config = config
    return generator.to(device).eval()


def _resized_stack(data, resolution):
    images = torch.stack([data[i][0] for i in range(len(data))])
    if images.shape[-1] != resolution:
        images = nn.functional.interpolate(images, size=(resolution, resolution), mode="bilinear",
                                           antialias=True, align_corners=False)
    return images


def _fit(generator, images, config: DCGANConfig, device, progress):
    """The DCGAN recipe: alternate discriminator and generator steps with the non-saturating BCE loss.

    Every random draw comes from ``rng``, one CPU ``torch.Generator`` seeded with ``config.seed``, in a fixed
    order (initial weights, then per iteration the real mini-batch and the latents), so the run does not
    depend on what else used the global RNG before it. The caller (``train_dcgan``) forks the global RNG.
    """
    rng = torch.Generator().manual_seed(config.seed)
    torch.default_generator.manual_seed(config.seed)  # nothing below should draw from it; if it does, seeded
    generator.apply(lambda m: _dcgan_init(m, rng)).to(device).train()
    critic = _discriminator(config.resolution, config.width).apply(lambda m: _dcgan_init(m, rng)).to(device).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    bar = tqdm(range(config.iterations), desc=f"training DCGAN on {config.dataset} ({config.resolution}px)",
               disable=not progress, mininterval=2.0)
    with _deterministic_cudnn(torch.device(device)):
        for it in bar:
            real = images[torch.randint(len(images), (config.batch_size,), generator=rng)].to(device) * 2 - 1
            # drawn on the CPU and moved: the same latents whatever the device
            z = torch.randn(config.batch_size, config.latent_dim, generator=rng).to(device)
            fake = generator(z) * 2 - 1  # the critic sees [-1, 1] images
            ones = torch.ones(config.batch_size, 1, device=device)
            loss_d = bce(critic(real), ones) + bce(critic(fake.detach()), torch.zeros_like(ones))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = bce(critic(fake), ones)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if it % 200 == 0:
                bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")
    generator.cpu()


@contextlib.contextmanager
def _deterministic_cudnn(device: torch.device):
    """cuDNN in its deterministic, non-benchmarking mode while training on CUDA; restored afterwards."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _dcgan_init(module, rng: torch.Generator | None = None):
    """Radford et al.'s initialisation: convolutions N(0, 0.02), BatchNorm scales N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02, generator=rng)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02, generator=rng)
        nn.init.zeros_(module.bias)


def sample_figure(generator: nn.Module, *, count: int = 16, seed: int = 0, title: str | None = None):
    """A grid of ``count`` samples G(z) for z ~ N(0, I) drawn with ``seed``."""
    import matplotlib.pyplot as plt

    z = torch.randn(count, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = generator(z.to(next(generator.parameters()).device)).cpu()
    cols = min(count, 8)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.4), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, images):
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    fig.suptitle(title or "generator samples", fontsize=10)
    return fig


class BigGANPrior(nn.Module):
    """A pre-trained BigGAN as a GIA-L generator: latent → image in [0, 1] at ``resolution``².

    The latent is BigGAN's noise vector (``noise_dim`` = 128) followed by 1000 class logits; the class vector
    BigGAN is conditioned on is their softmax, so the attack can search the class as well as the noise (GIAS
    optimises the latent it is given; the class of an ImageNet victim is unknown to the generator otherwise).
    Its output (in [−1, 1] at BigGAN's native size) is mapped to [0, 1] and resized with antialiasing.
    """

    def __init__(self, biggan: nn.Module, resolution: int, truncation: float = 0.4, noise_dim: int = 128,
                 classes: int = 1000):
        super().__init__()
        self.biggan, self.resolution, self.truncation = biggan, resolution, truncation
        self.noise_dim, self.latent_dim = noise_dim, noise_dim + classes

    def forward(self, z):
        noise, logits = z[:, :self.noise_dim], z[:, self.noise_dim:]
        images = (self.biggan(noise, logits.softmax(dim=1), self.truncation) + 1) / 2
        if images.shape[-1] != self.resolution:
            images = nn.functional.interpolate(images, size=(self.resolution,) * 2, mode="bilinear",
                                               antialias=True, align_corners=False)
        return images.clamp(0, 1)


def biggan_prior(resolution: int, name: str = "biggan-deep-256", *, device: str = "cpu") -> BigGANPrior:
    """BigGAN (``load_biggan``) wrapped as a GIA-L generator for ``resolution``² images (Fig. 4a's ImageNet
    rungs). Raises ``GeneratorUnavailable`` with what to install where the package or weights are missing."""
    return BigGANPrior(load_biggan(name), resolution).to(device).eval()


def load_biggan(name: str = "biggan-deep-256"):
    """BigGAN from the optional ``pytorch-pretrained-biggan`` package (it downloads its weights)."""
    try:
        from pytorch_pretrained_biggan import BigGAN
    except ImportError as error:
        raise GeneratorUnavailable(
            "BigGAN needs the optional package 'pytorch-pretrained-biggan' (pip install pytorch-pretrained-biggan) "
            "and a network to download its weights; GIA-L at ImageNet resolutions is unavailable without it.") from error
    try:
        return BigGAN.from_pretrained(name)
    except Exception as error:  # the package raises several kinds when the download fails
        raise GeneratorUnavailable(f"could not load BigGAN '{name}' ({error}); it downloads its weights, "
                                   "which needs a network") from error
