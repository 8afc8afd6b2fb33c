"""Size presets: one code path, three sizes.

* ``smoke`` — seconds; for tests and a quick check that a notebook runs end to end.
* ``cpu`` — minutes per section on 2 CPU cores: the offline ``patches`` data, a width-32 ConvNet, and fewer
  attack iterations and grid points, chosen so the paper's trends still show. The book here is built with it.
* ``paper`` — the paper's settings (CIFAR10/100, its batch sizes and iteration counts, Appx B); meant
  for a GPU (``device="cuda"``).

A profile changes sizes only, never the algorithm. ``get_profile(name, **overrides)`` returns the preset
with some fields replaced (how a notebook's papermill parameters reach it); ``None`` keeps the preset's
value, and unknown names, unknown fields or ill-typed values raise ``ValueError`` saying what is expected.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Profile", "PROFILES", "get_profile", "check_device"]


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
    seeds: int  # victim batches averaged per table cell
    # §4.2.1 (Fig. 4, Table 5): model, data, ladders; prior weight 1e-5 in the paper
    dimension_model: str
    dimension_model_options: tuple
    dimension_data: str
    resolutions: tuple
    batch_sizes: tuple
    table5_batch_sizes: tuple
    wsrr_initialisations: int
    prior_weight: float
    dimension_bn_mode: str
    # §5.1 (Fig. 7, Appx B.II): models as (name, options) pairs, FedAvg, and per-round evaluation
    stages_models: tuple
    stages_data: str
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


# §5.1 at cpu: three families (residual, dense, Inception) at 1/8 width. Not VGG: without BatchNorm it needs
# far more SGD steps than this budget before its loss moves at all (see models, "Initialisation").
CPU_ZOO = (("resnet18", (("width", 0.125),)), ("densenet121", (("width", 0.125),)),
           ("googlenet", (("width", 0.125),)))

PROFILES = {
    "smoke": Profile(
        name="smoke", model="convnet", model_options=(("width", 4),),
        attack_iterations=10, attack_restarts=1, tv_weight=1e-4, client_lr=0.1,
        latent_iterations=5, latent_lr=0.05, generator_iterations=5, generator_lr=1e-4,
        dcgan=(("iterations", 20), ("width", 8), ("batch_size", 16)), attacks=("gia-o", "gia-l"),
        table1_data=(("patches", 1),), local_updates=(1, 4),
        table2_data=(("patches", 1),), minibatches=(1, 2), seeds=1,
        dimension_model="resnet18", dimension_model_options=(("width", 0.125),), dimension_data="patches",
        resolutions=(16, 32), batch_sizes=(1, 2), table5_batch_sizes=(1, 2), wsrr_initialisations=2,
        prior_weight=1e-4, dimension_bn_mode="eval",
        stages_models=(("convnet", (("width", 4),)), ("lenet", ())), stages_data="patches",
        stages_clients=2, stages_samples_per_client=16, stages_batch_size=8, stages_epochs=1, stages_lr=0.01,
        stages_rounds=3, stages_window=2, stages_victims=1, stages_attack_iterations=5, stages_igsa_samples=4,
        stages_igsa_radius=1e-3, stages_bn_mode="eval",
    ),
    "cpu": Profile(
        name="cpu", model="convnet", model_options=(("width", 32),),
        attack_iterations=300, attack_restarts=1, tv_weight=1e-4, client_lr=0.1,
        latent_iterations=150, latent_lr=0.05, generator_iterations=150, generator_lr=1e-4,
        dcgan=(("iterations", 2000), ("width", 32)), attacks=("gia-o", "gia-l"),
        table1_data=(("patches", 1), ("patches", 2)), local_updates=(1, 2, 4, 6, 8),
        table2_data=(("patches", 1),), minibatches=(1, 2, 4), seeds=1,
        dimension_model="resnet18", dimension_model_options=(("width", 0.125),), dimension_data="patches",
        resolutions=(16, 32, 64), batch_sizes=(1, 2, 4, 8), table5_batch_sizes=(1, 2, 4, 8),
        wsrr_initialisations=3, prior_weight=1e-4, dimension_bn_mode="eval",
        stages_models=CPU_ZOO, stages_data="patches",
        stages_clients=5, stages_samples_per_client=100, stages_batch_size=32, stages_epochs=2, stages_lr=0.01,
        stages_rounds=15, stages_window=4, stages_victims=2, stages_attack_iterations=200, stages_igsa_samples=32,
        stages_igsa_radius=1e-3, stages_bn_mode="eval",
    ),
    "paper": Profile(
        name="paper", model="convnet", model_options=(("width", 64),),
        attack_iterations=8000, attack_restarts=1, tv_weight=1e-4, client_lr=0.1,
        latent_iterations=400, latent_lr=0.05, generator_iterations=6000, generator_lr=1e-4,
        dcgan=(("iterations", 30000), ("width", 64)), attacks=("gia-o", "gia-l"),
        table1_data=(("cifar10", 4), ("cifar100", 8)), local_updates=(1, 2, 4, 6, 8),
        table2_data=(("cifar10", 4), ("cifar100", 8)), minibatches=(1, 2, 3, 4, 6, 8, 10), seeds=4,
        dimension_model="resnet18", dimension_model_options=(("width", 1.0),), dimension_data="cifar10",
        resolutions=(32, 64), batch_sizes=(1, 5, 10, 15, 20, 30, 50, 100), table5_batch_sizes=(5, 10, 15, 20, 50, 80, 100),
        wsrr_initialisations=10, prior_weight=1e-5, dimension_bn_mode="eval",
        stages_models=tuple((name, ()) for name in ("vgg11", "vgg16", "vgg19", "resnet18", "resnet50", "resnet152",
                                                    "densenet121", "googlenet", "inception_v3")),
        stages_data="cifar10", stages_clients=5, stages_samples_per_client=10000, stages_batch_size=128,
        stages_epochs=10, stages_lr=0.01, stages_rounds=100, stages_window=5, stages_victims=10,
        stages_attack_iterations=8000, stages_igsa_samples=10000, stages_igsa_radius=1e-3, stages_bn_mode="eval",
    ),
}


def _positive_ints(name, value):
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {value!r}")
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


_CHECKS = {
    "model": _model, "model_options": _options, "dimension_model": _model, "dimension_model_options": _options,
    "dcgan": _options, "attacks": _attacks, "dimension_bn_mode": _bn_mode, "dimension_data": _dataset,
    "latent_iterations": _positive_int, "generator_iterations": _positive_int, "wsrr_initialisations": _positive_int,
    "latent_lr": _positive_float, "generator_lr": _positive_float, "prior_weight": _positive_float,
    "resolutions": _positive_ints, "batch_sizes": _positive_ints, "table5_batch_sizes": _positive_ints,
    "attack_iterations": _positive_int, "attack_restarts": _positive_int, "seeds": _positive_int,
    "tv_weight": _positive_float, "client_lr": _positive_float,
    "table1_data": _data_pairs, "table2_data": _data_pairs,
    "local_updates": _positive_ints, "minibatches": _positive_ints,
    "stages_models": _model_list, "stages_data": _dataset, "stages_bn_mode": _bn_mode,
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
