"""Size presets: one code path, three sizes.

* ``smoke`` — seconds; for tests and a quick check that a notebook runs end to end. Its numbers decide
  nothing (one victim, tens of iterations).
* ``cpu`` — at most 15 minutes per section on 2 CPU cores (results not cached, trained generators cached):
  the offline ``patches`` data, small models and fewer grid points, **calibrated** (below). The book here is
  built with it.
* ``paper`` — the paper's settings (Appx B: CIFAR10/100 and ImageNet, ResNet-18 with PyTorch's default
  initialisation for §4, priors at 1e-5, its iteration counts, Table 5 over 10 seeds); meant for a GPU
  (``device="cuda"``). CIFAR is downloaded by torchvision where there is a network; ImageNet and BigGAN are
  manual installs (``giasok.data``, ``giasok.generative``).

A profile changes sizes only, never the algorithm. ``get_profile(name, **overrides)`` returns the preset
with some fields replaced (how a notebook's papermill parameters reach it); ``None`` keeps the preset's
value, and unknown names, unknown fields or ill-typed values raise ``ValueError`` saying what is expected.

**The calibration rule.** At each section's easiest point — U = 1 (§4.1), the smallest resolution and B = 1
(§4.2.1), the first rounds (§5.1) — the ``cpu`` attack must leak: mean PSNR over the cell's victims ≥ τ1 =
18 dB. Otherwise the section's trend would compare failures with failures and say nothing about the paper.
Every cell has at least three victims. Each chapter re-checks the rule as its first claims. The choices
below were measured with ``benchmarks/calibrate.py`` (three victims, 2 workers of one thread each on a
loaded 2-core machine, so the seconds are upper bounds):

§4.1, GIA-O at U = 1, N = B = 1:
    ConvNet width 32, 300 iterations: 24.2 dB (21.5, 21.5, 29.6), 27.6 s per attack
    ConvNet width 16, 600 iterations: 22.1 dB (15.6, 23.0, 27.7), 23.7 s           <- chosen (cheaper per
    GIA-L, ConvNet width 16, 150 latent + 150 generator iterations (1e-4):          iteration, so Table 2's
        24.6 dB (19.4, 27.3, 27.1), 20.2 s                                         larger batches fit)
§4.2.1, G_O+TV at B = 1, eval-mode BatchNorm ResNet-18 (PyTorch default initialisation):
    width 1/8, 32², 1500 iterations: 12.1 dB (10.9, 11.6, 13.9) — the old profile: it never leaks
    width 1/4, 16², 500 iterations: 22.4 dB (23.6, 20.0, 23.5), 39.5 s              <- chosen
    width 1/4, 32², 500 / 1500 iterations: 16.6 / 19.1 dB
    width 1/2, 32², 1000 iterations: 25.0 dB, 131.8 s per attack: too slow for the grid
    So Fig. 4a climbs 16² → 32² → 64² and Fig. 4b runs at 16²; the paper's easiest points are 32².
§5.1: see ``CPU_ZOO`` (one family, at 16²).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Profile", "PROFILES", "get_profile", "check_device", "attack_settings"]


@dataclass(frozen=True)
class Profile:
    name: str
    # victim model (paper §4.1: Geiping et al.'s ConvNet; options as build_model takes them)
    model: str
    model_options: tuple
    # GIA-O (Appx B: Adam; the paper runs 8000 iterations)
    attack_iterations: int
    attack_restarts: int
    tv_weight: float
    client_lr: float
    bn_mode: str  # how the §4.1 client runs BatchNorm ("train": its own batch statistics; "eval": frozen)
    # GIA-L (Appx B: GIAS, 400 latent and 6000 generator iterations; a DCGAN trained on the client's data)
    latent_iterations: int
    latent_lr: float
    generator_iterations: int
    generator_lr: float
    dcgan: tuple  # options of giasok.generative.train_dcgan
    # §4.1: the attacks of Tables 1 and 2
    attacks: tuple
    # §4.1 Table 1: (data set, N = B) pairs and the U values
    table1_data: tuple
    local_updates: tuple
    # §4.1 Table 2: (data set, B) pairs and the numbers of mini-batches N/B
    table2_data: tuple
    minibatches: tuple
    seeds: int  # victim batches per table cell (Tables 1–2, Fig. 4)
    generator_seeds: tuple  # DCGANs trained with these seeds: GIA-L's dependence on its generator (§4.1)
    # §4.2.1 (Fig. 4, Table 5): model, data, ladders; prior weight 1e-5 in the paper
    dimension_model: str
    dimension_model_options: tuple
    dimension_data: str  # Fig. 4a (up to dimension_highres_from) and Table 5
    dimension_batch_data: str  # Fig. 4b
    dimension_batch_resolution: int  # Fig. 4b (the paper: 32²)
    dimension_highres_data: str | None  # Fig. 4a at ≥ dimension_highres_from pixels (ImageNet with BigGAN)
    dimension_highres_from: int
    resolutions: tuple
    batch_sizes: tuple
    table5_batch_sizes: tuple
    wsrr_initialisations: int
    table5_seeds: int  # victim batches of Table 5 (the paper: 10)
    dimension_attack_iterations: int  # G_O's iterations in §4.2.1 (G_L takes latent/generator_iterations)
    prior_weight: float
    dimension_bn_mode: str
    # §5.1 (Fig. 7, Appx B.II): models as (name, options) pairs, FedAvg, and per-round evaluation
    stages_models: tuple
    stages_data: str
    stages_image_size: int
    stages_clients: int
    stages_samples_per_client: int
    stages_batch_size: int
    stages_epochs: int
    stages_lr: float
    stages_rounds: int
    stages_window: int
    stages_victims: int
    stages_attack_iterations: int
    stages_igsa_samples: int
    stages_igsa_radius: float
    stages_bn_mode: str


# §5.1 at cpu, calibrated (GIA-O at round 0 on one-step updates of W_0, 500 iterations, three victims):
#   ResNet-18 width 1/4 at 32²: 17.2 dB (1000 iterations: 17.5) — just short of τ1
#   ResNet-18 width 1/4 at 16²: 20.3 dB (22.6, 15.1, 23.4), 23 s per attack   <- chosen
#   DenseNet-121 width 1/4 at 16²: 17.1 dB, 97 s per attack; GoogLeNet width 1/4 at 16²: 9.3 dB
#   (the old profile's three families at width 1/8 and 32² never leaked)
# So one family that can be attacked, rather than three that cannot; the paper profile runs all nine.
CPU_ZOO = (("resnet18", (("width", 0.25),)),)

PROFILES = {
    "smoke": Profile(
        name="smoke", model="convnet", model_options=(("width", 4),), bn_mode="train",
        attack_iterations=10, attack_restarts=1, tv_weight=1e-4, client_lr=0.1,
        latent_iterations=5, latent_lr=0.05, generator_iterations=5, generator_lr=1e-4,
        dcgan=(("iterations", 20), ("width", 8), ("batch_size", 16)), attacks=("gia-o", "gia-l"),
        table1_data=(("patches", 1),), local_updates=(1, 4),
        table2_data=(("patches", 1),), minibatches=(1, 2), seeds=1, generator_seeds=(0,),
        dimension_model="resnet18", dimension_model_options=(("width", 0.125),), dimension_data="patches",
        dimension_batch_data="patches", dimension_batch_resolution=16, dimension_highres_data=None,
        dimension_highres_from=128, resolutions=(16, 32), batch_sizes=(1, 2), table5_batch_sizes=(1, 2),
        wsrr_initialisations=2, table5_seeds=1, dimension_attack_iterations=10, prior_weight=1e-4,
        dimension_bn_mode="eval",
        stages_models=(("convnet", (("width", 4),)), ("lenet", ())), stages_data="patches", stages_image_size=32,
        stages_clients=2, stages_samples_per_client=16, stages_batch_size=8, stages_epochs=1, stages_lr=0.01,
        stages_rounds=3, stages_window=2, stages_victims=1, stages_attack_iterations=5, stages_igsa_samples=4,
        stages_igsa_radius=1e-3, stages_bn_mode="eval",
    ),
    "cpu": Profile(
        name="cpu", model="convnet", model_options=(("width", 16),), bn_mode="train",
        attack_iterations=600, attack_restarts=1, tv_weight=1e-4, client_lr=0.1,
        latent_iterations=150, latent_lr=0.05, generator_iterations=150, generator_lr=1e-4,
        dcgan=(("iterations", 2000), ("width", 32)), attacks=("gia-o", "gia-l"),
        table1_data=(("patches", 1),), local_updates=(1, 2, 4, 8),
        table2_data=(("patches", 1),), minibatches=(1, 2, 4), seeds=3, generator_seeds=(0, 1, 2),
        dimension_model="resnet18", dimension_model_options=(("width", 0.25),), dimension_data="patches",
        dimension_batch_data="patches", dimension_batch_resolution=16, dimension_highres_data=None,
        dimension_highres_from=128, resolutions=(16, 32, 64), batch_sizes=(1, 2, 4), table5_batch_sizes=(1, 4),
        wsrr_initialisations=2, table5_seeds=3, dimension_attack_iterations=500, prior_weight=1e-4,
        dimension_bn_mode="eval",
        stages_models=CPU_ZOO, stages_data="patches", stages_image_size=16,
        stages_clients=5, stages_samples_per_client=100, stages_batch_size=32, stages_epochs=2, stages_lr=0.01,
        stages_rounds=15, stages_window=4, stages_victims=3, stages_attack_iterations=500, stages_igsa_samples=32,
        stages_igsa_radius=1e-3, stages_bn_mode="eval",
    ),
    # Appx B: §4 on ResNet-18 with PyTorch's default initialisation, every prior at 1e-5, GIA-O 8000 Adam
    # iterations, GIA-L (GIAS) 400 latent + 6000 generator iterations with a DCGAN (CIFAR) / BigGAN (ImageNet);
    # Fig. 4a on CIFAR10 at 32/64 and ImageNet at 128–512, Fig. 4b on CIFAR100 at 32², Table 5 on CIFAR10
    # over 10 seeds and 10 initialisations. The paper does not say how many victims Tables 1–2 average.
    "paper": Profile(
        name="paper", model="resnet18", model_options=(), bn_mode="eval",
        attack_iterations=8000, attack_restarts=1, tv_weight=1e-5, client_lr=0.1,
        latent_iterations=400, latent_lr=0.05, generator_iterations=6000, generator_lr=1e-4,
        dcgan=(("iterations", 30000), ("width", 64)), attacks=("gia-o", "gia-l"),
        table1_data=(("cifar10", 4), ("cifar100", 8)), local_updates=(1, 2, 4, 6, 8),
        table2_data=(("cifar10", 4), ("cifar100", 8)), minibatches=(1, 2, 3, 4, 6, 8, 10), seeds=4,
        generator_seeds=(0, 1, 2),
        dimension_model="resnet18", dimension_model_options=(), dimension_data="cifar10",
        dimension_batch_data="cifar100", dimension_batch_resolution=32, dimension_highres_data="imagenet",
        dimension_highres_from=128, resolutions=(32, 64, 128, 256, 512),
        batch_sizes=(1, 5, 10, 15, 20, 30, 50, 100), table5_batch_sizes=(5, 10, 15, 20, 50, 80, 100),
        wsrr_initialisations=10, table5_seeds=10, dimension_attack_iterations=8000, prior_weight=1e-5,
        dimension_bn_mode="eval",
        stages_models=tuple((name, ()) for name in ("vgg11", "vgg16", "vgg19", "resnet18", "resnet50", "resnet152",
                                                    "densenet121", "googlenet", "inception_v3")),
        stages_data="cifar10", stages_image_size=32, stages_clients=5, stages_samples_per_client=10000,
        stages_batch_size=128,
        stages_epochs=10, stages_lr=0.01, stages_rounds=100, stages_window=5, stages_victims=10,
        stages_attack_iterations=8000, stages_igsa_samples=10000, stages_igsa_radius=1e-3, stages_bn_mode="eval",
    ),
}


def _positive_ints(name, value):
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return tuple(value)


def _non_negative_ints(name, value):
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ValueError(f"{name} must be a non-empty list of non-negative integers, got {value!r}")
    return tuple(value)


def _data_pairs(name, value):
    from .data import DATASETS

    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and p[0] in DATASETS and isinstance(p[1], int) and p[1] >= 1
        for p in value)
    if not ok:
        raise ValueError(f"{name} must be a list of [data set, size] pairs with a data set in {DATASETS} and "
                         f"a positive size, got {value!r}")
    return tuple((str(d), int(s)) for d, s in value)


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _model(name, value):
    from .models import MODELS

    if value not in MODELS:
        raise ValueError(f"{name} must be one of {sorted(MODELS)}, got {value!r}")
    return value


def _options(name, value):
    if isinstance(value, dict):
        value = tuple(sorted(value.items()))
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        raise ValueError(f"{name} must be a dict or a list of [option, value] pairs, got {value!r}")
    return tuple((str(k), v) for k, v in value)


def _attacks(name, value):
    from .attacks import METHODS

    if not isinstance(value, (list, tuple)) or not value or not set(value) <= set(METHODS):
        raise ValueError(f"{name} must be a non-empty list drawn from {METHODS}, got {value!r}")
    return tuple(value)


def _bn_mode(name, value):
    if value not in ("train", "eval"):
        raise ValueError(f"{name} must be 'train' or 'eval', got {value!r}")
    return value


def _model_list(name, value):
    from .models import MODELS

    if isinstance(value, (list, tuple)):
        value = [(v, ()) if isinstance(v, str) else v for v in value]  # a bare name: default options
    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and p[0] in MODELS for p in value)
    if not ok:
        raise ValueError(f"{name} must be a list of model names or [name, options] pairs with a name in "
                         f"{sorted(MODELS)}, got {value!r}")
    return tuple((str(m), _options(name, o)) for m, o in value)


def _dataset(name, value):
    from .data import DATASETS

    if value not in DATASETS:
        raise ValueError(f"{name} must be one of {DATASETS}, got {value!r}")
    return value


def _optional_dataset(name, value):
    return None if value in (None, "none") else _dataset(name, value)


_CHECKS = {
    "model": _model, "model_options": _options, "dimension_model": _model, "dimension_model_options": _options,
    "dcgan": _options, "attacks": _attacks, "dimension_bn_mode": _bn_mode, "dimension_data": _dataset,
    "latent_iterations": _positive_int, "generator_iterations": _positive_int, "wsrr_initialisations": _positive_int,
    "latent_lr": _positive_float, "generator_lr": _positive_float, "prior_weight": _positive_float,
    "resolutions": _positive_ints, "batch_sizes": _positive_ints, "table5_batch_sizes": _positive_ints,
    "attack_iterations": _positive_int, "attack_restarts": _positive_int, "seeds": _positive_int,
    "tv_weight": _positive_float, "client_lr": _positive_float, "bn_mode": _bn_mode,
    "generator_seeds": _non_negative_ints, "dimension_batch_data": _dataset, "dimension_batch_resolution": _positive_int,
    "dimension_highres_data": _optional_dataset, "dimension_highres_from": _positive_int, "table5_seeds": _positive_int,
    "dimension_attack_iterations": _positive_int,
    "table1_data": _data_pairs, "table2_data": _data_pairs,
    "local_updates": _positive_ints, "minibatches": _positive_ints,
    "stages_models": _model_list, "stages_data": _dataset, "stages_image_size": _positive_int, "stages_bn_mode": _bn_mode,
    "stages_clients": _positive_int, "stages_samples_per_client": _positive_int, "stages_batch_size": _positive_int,
    "stages_epochs": _positive_int, "stages_rounds": _positive_int, "stages_window": _positive_int,
    "stages_victims": _positive_int, "stages_attack_iterations": _positive_int, "stages_igsa_samples": _positive_int,
    "stages_lr": _positive_float, "stages_igsa_radius": _positive_float,
}


def get_profile(name: str, **overrides) -> Profile:
    """The preset ``name`` with ``overrides`` applied (``None`` = keep the preset's value)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}")
    unknown = set(overrides) - set(_CHECKS)
    if unknown:
        raise ValueError(f"unknown profile field(s) {sorted(unknown)}; available: {sorted(_CHECKS)}")
    checked = {k: _CHECKS[k](k, v) for k, v in overrides.items() if v is not None}
    return dataclasses.replace(PROFILES[name], **checked)


def attack_settings(settings: Profile, method: str) -> dict:
    """The ``GiaExperiment`` fields of one attack at this profile: GIA-O with TV, or GIA-L (GIAS) with the
    profile's DCGAN, whose generator is its prior. Every section's attacks start from these, so an attack
    is configured once, here."""
    if method == "gia-o":
        return dict(method="gia-o", iterations=settings.attack_iterations, priors=(("tv", settings.tv_weight),),
                    restarts=settings.attack_restarts)
    return dict(method="gia-l", iterations=settings.latent_iterations, attack_lr=settings.latent_lr,
                generator_iterations=settings.generator_iterations, generator_lr=settings.generator_lr,
                generator_options=settings.dcgan, priors=(), restarts=settings.attack_restarts)


def check_device(device: str) -> str:
    """``device`` if torch can use it here, else a ``ValueError`` that says what is available."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {device!r}") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but this machine has no CUDA device; use device='cpu'")
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {device!r}")
    return str(parsed)
