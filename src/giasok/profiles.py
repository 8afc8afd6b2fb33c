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

A profile changes sizes only, never the algorithm. It is composed of one small frozen dataclass per section
(``TrainingSetupSizes`` for §4.1, ``DataDimensionSizes`` for §4.2.1, ``TrainingStageSizes`` for §5.1,
``DataContentSizes`` for §4.2.2, ``ArchitectureSizes`` for §5.2, ``PostProcessingSizes`` for §6), each
holding that section's sizes and its attacks as ``giasok.attacks.AttackConfig``s, under the section's module
name (``profile.training_setup`` …). ``get_profile(name, section, **overrides)`` returns the preset with some
of one section's fields replaced — how a notebook's papermill parameters reach it: a field by its name
(``local_updates=[1, 2]``) or a setting of one of its attacks as ``<attack>_<setting>``
(``gia_o_iterations=300``). ``None`` keeps the preset's value; unknown names, unknown fields and ill-typed
values raise ``ValueError`` saying what is expected. A new section adds its dataclass, one field of
``Profile`` and its values in the three presets; nothing else changes.

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
§4.2.2, GIA-O with TV + BN priors (1e-4 each) on ConvNet width 16 with BatchNorm, eval mode, 32²:
    600 iterations: 28.1 dB on three ID victims (TV alone: 22.6); 300: 26.5; width 8, 300: 20.6. 600 is kept: the
    rendered canaries are harder than ID images (sharp edges on flat colour).
"""
from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass, field

from .attacks import ROG_RECIPE, AttackConfig

__all__ = ["Profile", "PROFILES", "SECTIONS", "TrainingSetupSizes", "DataDimensionSizes", "TrainingStageSizes",
           "DataContentSizes", "ArchitectureSizes", "PostProcessingSizes",
           "get_profile", "section_settings", "override_names", "check_device"]


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


def _drawn_from(known):
    """A check: a non-empty list drawn from ``known`` — a tuple, or a function returning one (for names that live
    in a module imported only when a value is checked)."""

    def check(name, value):
        allowed = tuple(known() if callable(known) else known)
        if not isinstance(value, (list, tuple)) or not value or not set(value) <= set(allowed):
            raise ValueError(f"{name} must be a non-empty list drawn from {allowed}, got {value!r}")
        return tuple(value)

    return check


def _methods():
    from .attacks import METHODS

    return METHODS


def _convnet_modifications():
    from .models import CONVNET_MODIFICATIONS

    return [m for m in CONVNET_MODIFICATIONS if m != "none"]


_attacks = _drawn_from(_methods)
_section6_attacks = _drawn_from(("GIA-O", "GIA-L", "ROG"))
_micro_designs = _drawn_from(_convnet_modifications)
_canary_kinds = _drawn_from(("clock", "digits", "words"))  # giasok.canaries.KINDS


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


def _attack_config(name, value):
    if not isinstance(value, AttackConfig):
        raise ValueError(f"{name} must be a giasok.attacks.AttackConfig, got {value!r}")
    return value


def _checked(check):
    """A dataclass field validated by ``check(name, value)`` when it is overridden."""
    return field(metadata={"check": check})


@dataclass(frozen=True)
class TrainingSetupSizes:
    """§4.1 (Tables 1–2): Geiping et al.'s ConvNet as the victim, its client's BatchNorm mode and learning rate,
    the attacks compared, Table 1's (data set, N = B) pairs and U values, Table 2's (data set, B) pairs and
    numbers of mini-batches, victims per cell, and the DCGAN seeds of GIA-L's generator gate."""

    model: str = _checked(_model)
    model_options: tuple = _checked(_options)
    bn_mode: str = _checked(_bn_mode)  # "train": the client's own batch statistics; "eval": frozen
    client_lr: float = _checked(_positive_float)
    attacks: tuple = _checked(_attacks)  # methods compared, each configured by gia_o / gia_l
    gia_o: AttackConfig = _checked(_attack_config)
    gia_l: AttackConfig = _checked(_attack_config)
    table1_data: tuple = _checked(_data_pairs)
    local_updates: tuple = _checked(_positive_ints)
    table2_data: tuple = _checked(_data_pairs)
    minibatches: tuple = _checked(_positive_ints)
    seeds: int = _checked(_positive_int)  # victim batches per cell
    generator_seeds: tuple = _checked(_non_negative_ints)


@dataclass(frozen=True)
class DataDimensionSizes:
    """§4.2.1 (Fig. 4, Table 5): the victim ResNet, Fig. 4a's resolution ladder (``data`` up to
    ``highres_from`` pixels, then ``highres_data`` with BigGAN), Fig. 4b's batch ladder on ``batch_data`` at
    ``batch_resolution``², Table 5's batch sizes, victim batches and initialisations, and the weight of the
    TV and BN priors of the G_O+TV and G_O+BN arms (``gia_o`` is G_O, without a prior)."""

    model: str = _checked(_model)
    model_options: tuple = _checked(_options)
    bn_mode: str = _checked(_bn_mode)
    client_lr: float = _checked(_positive_float)
    gia_o: AttackConfig = _checked(_attack_config)
    gia_l: AttackConfig = _checked(_attack_config)
    prior_weight: float = _checked(_positive_float)
    data: str = _checked(_dataset)
    highres_data: str | None = _checked(_optional_dataset)
    highres_from: int = _checked(_positive_int)
    resolutions: tuple = _checked(_positive_ints)
    batch_data: str = _checked(_dataset)
    batch_resolution: int = _checked(_positive_int)
    batch_sizes: tuple = _checked(_positive_ints)
    table5_batch_sizes: tuple = _checked(_positive_ints)
    table5_seeds: int = _checked(_positive_int)  # the paper: 10
    wsrr_initialisations: int = _checked(_positive_int)
    seeds: int = _checked(_positive_int)  # victim batches per point of Fig. 4
    generator_seeds: tuple = _checked(_non_negative_ints)


def _names(name, value):
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a non-empty list of names, got {value!r}")
    return tuple(value)


def _ood_sources(name, value):
    value = _names(name, value)
    bad = [v for v in value if v.partition(":")[0] not in ("photo", "crop", "data") or not v.partition(":")[2]]
    if bad:
        raise ValueError(f"{name}: each source is photo:<canaries photograph>, crop:<canaries photograph> or "
                         f"data:<data set>, e.g. crop:brick or data:dtd; got {bad}")
    return value


@dataclass(frozen=True)
class DataContentSizes:
    """§4.2.2 (Fig. 5–6): the in-distribution data and resolution (the network classifies it, GIA-L's DCGAN is
    trained on it), the network and its client, GIA-O (TV + BN priors, as the paper) and GIA-L; the rendered canary
    kinds with their victims and the photographs with semantic details; the OOD sources and the victims per
    source (ID included); the DCGAN seeds of GIA-L's gate."""

    data: str = _checked(_dataset)
    image_size: int = _checked(_positive_int)
    model: str = _checked(_model)
    model_options: tuple = _checked(_options)
    bn_mode: str = _checked(_bn_mode)
    client_lr: float = _checked(_positive_float)
    gia_o: AttackConfig = _checked(_attack_config)
    gia_l: AttackConfig = _checked(_attack_config)
    canary_kinds: tuple = _checked(_canary_kinds)
    canary_victims: int = _checked(_positive_int)
    photo_canaries: tuple = _checked(_names)
    ood_sources: tuple = _checked(_ood_sources)
    victims: int = _checked(_positive_int)
    generator_seeds: tuple = _checked(_non_negative_ints)


@dataclass(frozen=True)
class TrainingStageSizes:
    """§5.1 (Fig. 7, Appx B.II): the model zoo as (name, options) pairs, the FedAvg run (clients, samples,
    batch, epochs, learning rate, rounds), and the per-round evaluation: victims attacked with ``gia_o``,
    IGSA's K and r, the BatchNorm mode of the victim's update, and the window of rounds averaged."""

    models: tuple = _checked(_model_list)
    data: str = _checked(_dataset)
    image_size: int = _checked(_positive_int)
    clients: int = _checked(_positive_int)
    samples_per_client: int = _checked(_positive_int)
    batch_size: int = _checked(_positive_int)
    epochs: int = _checked(_positive_int)
    lr: float = _checked(_positive_float)
    rounds: int = _checked(_positive_int)
    window: int = _checked(_positive_int)
    victims: int = _checked(_positive_int)
    gia_o: AttackConfig = _checked(_attack_config)
    igsa_samples: int = _checked(_positive_int)
    igsa_radius: float = _checked(_positive_float)
    bn_mode: str = _checked(_bn_mode)


def _defence_grid(name, value):
    from .defenses import DEFENSES

    ok = isinstance(value, (list, tuple)) and value and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and p[0] in DEFENSES and isinstance(p[1], (list, tuple))
        and p[1] for p in value)
    if not ok:
        raise ValueError(f"{name} must be a list of [defence, [strength, ...]] pairs with a defence in "
                         f"{sorted(DEFENSES)}, e.g. [['Q', [2, 'sign']], ['C', [0.1]]], got {value!r}")
    return tuple((str(d), tuple(s)) for d, s in value)


def _fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PostProcessingSizes:
    """§6 (Fig. 11, Table 6, Appx B.III): the model and data, the FedAvg run that measures utility (clients,
    their samples, the share taking part per round, batch, epochs, rounds), the victim whose defended update
    is attacked (its N and B, and how many victims per cell), the defences with their strengths (weakest to
    strongest), and the three attacks."""

    model: str = _checked(_model)
    model_options: tuple = _checked(_options)
    data: str = _checked(_dataset)
    image_size: int = _checked(_positive_int)
    bn_mode: str = _checked(_bn_mode)  # the victim's update and the attack (FedAvg clients train in train mode)
    client_lr: float = _checked(_positive_float)
    clients: int = _checked(_positive_int)
    samples_per_client: int = _checked(_positive_int)
    participation: float = _checked(_fraction)
    batch_size: int = _checked(_positive_int)
    epochs: int = _checked(_positive_int)
    rounds: int = _checked(_positive_int)
    victim_samples: int = _checked(_positive_int)
    victim_batch_size: int = _checked(_positive_int)
    victims: int = _checked(_positive_int)
    defences: tuple = _checked(_defence_grid)
    attacks: tuple = _checked(_section6_attacks)
    gia_o: AttackConfig = _checked(_attack_config)
    gia_l: AttackConfig = _checked(_attack_config)
    rog: AttackConfig = _checked(_attack_config)


@dataclass(frozen=True)
class ArchitectureSizes:
    """§5.2 (Fig. 9–10, Tables 3–4, Appx B.II): the data and resolution, the BatchNorm mode of the client (the
    paper's GIA code runs the model in eval mode), its learning rate, victims per cell and the attack (Geiping's
    GIA-O with TV); the ResNets whose skips are cut one at a time, the DenseNets whose connections are reduced,
    the Inception nets attacked through one block's gradient (the first ``nin_blocks`` blocks), the ConvNet's
    options and the Table 4 modifications applied to it, and the ResNets of the beyond-the-paper table (each
    in train and eval mode, after Valadi et al.)."""

    data: str = _checked(_dataset)
    image_size: int = _checked(_positive_int)
    bn_mode: str = _checked(_bn_mode)
    client_lr: float = _checked(_positive_float)
    victims: int = _checked(_positive_int)
    gia_o: AttackConfig = _checked(_attack_config)
    skip_models: tuple = _checked(_model_list)
    dense_models: tuple = _checked(_model_list)
    nin_models: tuple = _checked(_model_list)
    nin_blocks: int = _checked(_positive_int)
    convnet_options: tuple = _checked(_options)
    micro_designs: tuple = _checked(_micro_designs)
    beyond_models: tuple = _checked(_model_list)

@dataclass(frozen=True)
class Profile:
    """One preset: its name and every section's sizes, under the section's module name."""

    name: str
    training_setup: TrainingSetupSizes
    data_dimension: DataDimensionSizes
    data_content: DataContentSizes
    training_stage: TrainingStageSizes
    architecture: ArchitectureSizes
    post_processing: PostProcessingSizes


# section module name -> its sizes: the fields of Profile after ``name``
SECTIONS = {"training_setup": TrainingSetupSizes, "data_dimension": DataDimensionSizes, "data_content": DataContentSizes,
            "training_stage": TrainingStageSizes, "architecture": ArchitectureSizes,
            "post_processing": PostProcessingSizes}


# §5.1 at cpu, calibrated (GIA-O at round 0 on one-step updates of W_0, 500 iterations, three victims):
#   ResNet-18 width 1/4 at 32²: 17.2 dB (1000 iterations: 17.5) — just short of τ1
#   ResNet-18 width 1/4 at 16²: 20.3 dB (22.6, 15.1, 23.4), 23 s per attack   <- chosen
#   DenseNet-121 width 1/4 at 16²: 17.1 dB, 97 s per attack; GoogLeNet width 1/4 at 16²: 9.3 dB
#   (the old profile's three families at width 1/8 and 32² never leaked)
# So one family that can be attacked, rather than three that cannot; the paper profile runs all nine.
CPU_ZOO = (("resnet18", (("width", 0.25),)),)

# Table 4's nine modifications of the standard ConvNet (giasok.models.CONVNET_MODIFICATIONS)
# §5.2 at cpu, calibrated (GIA-O, 300 iterations, TV 1e-4, eval mode, three victims, 16²):
#   ResNet-18 width 1/8: 12.6 dB (800 iterations: 14.2) — never leaks;  width 1/4: 20.4 dB, 9 s per attack <- chosen
#   ResNet-34 width 1/4: 18.4 dB, 15 s per attack; ConvNet width 16: 29.2 dB, 6 s per attack
#   GoogLeNet width 1/4: 11.1 dB full, 11–12 dB per block (pytorch init: 10.4 / 9.2; width 1/8 at 32²: 10.7) —
#   no affordable setting leaks, like the paper's own full-gradient GoogLeNet (LPIPS 0.20); Inception-v3 width
#   1/4: 7.5 dB at 34 s per attack, so it runs at paper only. ConvNet at 32² (width 8: 12.3 dB) does not leak
#   in budget, and at 16² Table 4's 4×4 kernel leaves no pixel for the second max-pool (it needs ≥ 21²), so
#   the cpu profile runs the other eight modifications.
MICRO_DESIGNS = ("remove ReLU", "remove dropout", "remove max-pool", "kernel 4", "remove bias", "kernel 2", "kernel 1", "padding 2", "padding 3")


def _gia_o(iterations: int, tv: float | None) -> AttackConfig:
    """Geiping et al.'s GIA-O: cosine distance, signed Adam at 0.1, TV at weight ``tv`` (None: no prior)."""
    return AttackConfig(method="gia-o", iterations=iterations, lr=0.1, priors=(("tv", tv),) if tv else ())


def _gia_l(latent_iterations: int, generator_iterations: int, dcgan: tuple) -> AttackConfig:
    """GIAS with a DCGAN trained on the client's data (Appx B: 400 latent and 6000 generator iterations)."""
    return AttackConfig(method="gia-l", iterations=latent_iterations, lr=0.05,
                        generator_iterations=generator_iterations, generator_lr=1e-4, generator_options=dcgan)


_SMOKE_GIA_L = _gia_l(5, 5, (("iterations", 20), ("width", 8), ("batch_size", 16)))
_CPU_GIA_L = _gia_l(150, 150, (("iterations", 2000), ("width", 32)))
_PAPER_GIA_L = _gia_l(400, 6000, (("iterations", 30000), ("width", 64)))

PROFILES = {
    "smoke": Profile(
        name="smoke",
        training_setup=TrainingSetupSizes(
            model="convnet", model_options=(("width", 4),), bn_mode="train", client_lr=0.1,
            attacks=("gia-o", "gia-l"), gia_o=_gia_o(10, 1e-4), gia_l=_SMOKE_GIA_L,
            table1_data=(("patches", 1),), local_updates=(1, 4), table2_data=(("patches", 1),), minibatches=(1, 2),
            seeds=1, generator_seeds=(0,)),
        data_dimension=DataDimensionSizes(
            model="resnet18", model_options=(("width", 0.125),), bn_mode="eval", client_lr=0.1,
            gia_o=_gia_o(10, None), gia_l=_SMOKE_GIA_L, prior_weight=1e-4,
            data="patches", highres_data=None, highres_from=128, resolutions=(16, 32),
            batch_data="patches", batch_resolution=16, batch_sizes=(1, 2),
            table5_batch_sizes=(1, 2), table5_seeds=1, wsrr_initialisations=2, seeds=1, generator_seeds=(0,)),
        data_content=DataContentSizes(
            data="patches", image_size=32, model="convnet", model_options=(("width", 4), ("batch_norm", True)),
            bn_mode="eval", client_lr=0.1, gia_o=_gia_o(5, 1e-4).with_(priors=(("tv", 1e-4), ("bn", 1e-4))),
            gia_l=_SMOKE_GIA_L, canary_kinds=("clock", "digits"), canary_victims=1, photo_canaries=("clock",),
            ood_sources=("crop:brick",), victims=1, generator_seeds=(0,)),
        training_stage=TrainingStageSizes(
            models=(("convnet", (("width", 4),)), ("lenet", ())), data="patches", image_size=32,
            clients=2, samples_per_client=16, batch_size=8, epochs=1, lr=0.01, rounds=3, window=2, victims=1,
            gia_o=_gia_o(5, 1e-4), igsa_samples=4, igsa_radius=1e-3, bn_mode="eval"),
        architecture=ArchitectureSizes(
            data="patches", image_size=16, bn_mode="eval", client_lr=0.1, victims=1, gia_o=_gia_o(5, 1e-4),
            skip_models=(("resnet18", (("width", 0.125),)),), dense_models=(("densenet43", (("width", 0.125),)),),
            nin_models=(("googlenet", (("width", 0.125),)),), nin_blocks=2,
            convnet_options=(("width", 4), ("dropout", 0.5)), micro_designs=("remove ReLU", "kernel 1"),
            beyond_models=(("resnet18", (("width", 0.125),)), ("preact_resnet18", (("width", 0.125),)))),
        post_processing=PostProcessingSizes(
            model="convnet", model_options=(("width", 4),), data="patches", image_size=32, bn_mode="eval",
            client_lr=0.05, clients=4, samples_per_client=20, participation=0.5, batch_size=10, epochs=1, rounds=2,
            victim_samples=1, victim_batch_size=1, victims=1,
            defences=(("Q", (2,)), ("S", (0.6,)), ("C", (0.01,)), ("P", (0.25,))), attacks=("GIA-O", "GIA-L", "ROG"),
            gia_o=_gia_o(5, 1e-4), gia_l=_SMOKE_GIA_L,
            rog=ROG_RECIPE.with_(iterations=5, restorer_options=(("iterations", 20), ("width", 8), ("depth", 2)))),
    ),
    "cpu": Profile(
        name="cpu",
        training_setup=TrainingSetupSizes(
            model="convnet", model_options=(("width", 16),), bn_mode="train", client_lr=0.1,
            attacks=("gia-o", "gia-l"), gia_o=_gia_o(600, 1e-4), gia_l=_CPU_GIA_L,
            table1_data=(("patches", 1),), local_updates=(1, 2, 4, 8), table2_data=(("patches", 1),),
            minibatches=(1, 2, 4), seeds=3, generator_seeds=(0, 1, 2)),
        data_dimension=DataDimensionSizes(
            model="resnet18", model_options=(("width", 0.25),), bn_mode="eval", client_lr=0.1,
            gia_o=_gia_o(500, None), gia_l=_CPU_GIA_L, prior_weight=1e-4,
            data="patches", highres_data=None, highres_from=128, resolutions=(16, 32, 64),
            batch_data="patches", batch_resolution=16, batch_sizes=(1, 2, 4),
            table5_batch_sizes=(1, 4), table5_seeds=3, wsrr_initialisations=2, seeds=3, generator_seeds=(0, 1, 2)),
        data_content=DataContentSizes(
            data="patches", image_size=32, model="convnet", model_options=(("width", 16), ("batch_norm", True)),
            bn_mode="eval", client_lr=0.1, gia_o=_gia_o(600, 1e-4).with_(priors=(("tv", 1e-4), ("bn", 1e-4))),
            gia_l=_CPU_GIA_L, canary_kinds=("clock", "digits", "words"), canary_victims=4,
            photo_canaries=("clock", "text", "page"), ood_sources=("crop:brick", "crop:grass", "crop:gravel"),
            victims=4, generator_seeds=(0, 1, 2)),
        training_stage=TrainingStageSizes(
            models=CPU_ZOO, data="patches", image_size=16, clients=5, samples_per_client=100, batch_size=32,
            epochs=2, lr=0.01, rounds=15, window=4, victims=3, gia_o=_gia_o(500, 1e-4), igsa_samples=32,
            igsa_radius=1e-3, bn_mode="eval"),
        architecture=ArchitectureSizes(
            data="patches", image_size=16, bn_mode="eval", client_lr=0.1, victims=3, gia_o=_gia_o(300, 1e-4),
            skip_models=(("resnet18", (("width", 0.25),)), ("resnet34", (("width", 0.25),))),
            dense_models=(("densenet43", (("width", 0.25),)),), nin_models=(("googlenet", (("width", 0.25),)),),
            nin_blocks=4, convnet_options=(("width", 16), ("dropout", 0.5)),
            micro_designs=tuple(m for m in MICRO_DESIGNS if m != "kernel 4"),  # too large for 16² (above)
            beyond_models=(("resnet18", (("width", 0.25),)), ("preact_resnet18", (("width", 0.25),)))),
        post_processing=PostProcessingSizes(
            model="resnet18", model_options=(("width", 0.25),), data="patches", image_size=16, bn_mode="eval",
            client_lr=0.1, clients=20, samples_per_client=50, participation=0.5, batch_size=10, epochs=1, rounds=10,
            victim_samples=1, victim_batch_size=1, victims=3,
            defences=(("Q", (4, 2, "sign")), ("S", (0.9, 0.7, 0.6)), ("C", (0.5, 0.1, 0.01)), ("P", (0.05, 0.15, 0.25))),
            attacks=("GIA-O", "GIA-L", "ROG"), gia_o=_gia_o(500, 1e-4), gia_l=_CPU_GIA_L,
            rog=ROG_RECIPE.with_(downsample=2)),  # 8×8 unknowns at 16², as ROG's factor 4 leaves at 32²
    ),
    # Appx B: §4 on ResNet-18 with PyTorch's default initialisation, every prior at 1e-5, GIA-O 8000 Adam
    # iterations, GIA-L (GIAS) 400 latent + 6000 generator iterations with a DCGAN (CIFAR) / BigGAN (ImageNet);
    # Fig. 4a on CIFAR10 at 32/64 and ImageNet at 128–512, Fig. 4b on CIFAR100 at 32², Table 5 on CIFAR10
    # over 10 seeds and 10 initialisations. The paper does not say how many victims Tables 1–2 average.
    "paper": Profile(
        name="paper",
        training_setup=TrainingSetupSizes(
            model="resnet18", model_options=(), bn_mode="eval", client_lr=0.1,
            attacks=("gia-o", "gia-l"), gia_o=_gia_o(8000, 1e-5), gia_l=_PAPER_GIA_L,
            table1_data=(("cifar10", 4), ("cifar100", 8)), local_updates=(1, 2, 4, 6, 8),
            table2_data=(("cifar10", 4), ("cifar100", 8)), minibatches=(1, 2, 3, 4, 6, 8, 10), seeds=4,
            generator_seeds=(0, 1, 2)),
        data_dimension=DataDimensionSizes(
            model="resnet18", model_options=(), bn_mode="eval", client_lr=0.1,
            gia_o=_gia_o(8000, None), gia_l=_PAPER_GIA_L, prior_weight=1e-5,
            data="cifar10", highres_data="imagenet", highres_from=128, resolutions=(32, 64, 128, 256, 512),
            batch_data="cifar100", batch_resolution=32, batch_sizes=(1, 5, 10, 15, 20, 30, 50, 100),
            table5_batch_sizes=(5, 10, 15, 20, 50, 80, 100), table5_seeds=10, wsrr_initialisations=10, seeds=4,
            generator_seeds=(0, 1, 2)),
        # §4.2.2 with CIFAR10 and its DCGAN (the paper: ImageNet and BigGAN; set data="imagenet" and gia_l's
        # generator_options to (("biggan", …),) where both are installed); OOD sets as the paper's, from giasok.data
        data_content=DataContentSizes(
            data="cifar10", image_size=32, model="resnet18", model_options=(), bn_mode="eval", client_lr=0.1,
            gia_o=_gia_o(8000, 1e-5).with_(priors=(("tv", 1e-5), ("bn", 1e-5))), gia_l=_PAPER_GIA_L,
            canary_kinds=("clock", "digits", "words"), canary_victims=10, photo_canaries=("clock", "text", "page"),
            ood_sources=("data:dtd", "data:places365", "data:lfw", "data:pacs"), victims=10,
            generator_seeds=(0, 1, 2)),
        training_stage=TrainingStageSizes(
            models=tuple((name, ()) for name in ("vgg11", "vgg16", "vgg19", "resnet18", "resnet50", "resnet152",
                                                 "densenet121", "googlenet", "inception_v3")),
            data="cifar10", image_size=32, clients=5, samples_per_client=10000, batch_size=128, epochs=10,
            lr=0.01, rounds=100, window=5, victims=10, gia_o=_gia_o(8000, 1e-5), igsa_samples=10000,
            igsa_radius=1e-3, bn_mode="eval"),
        # Appx B.II: Geiping's GIA-O with TV on CIFAR10 (8000 iterations, as §4); the paper gives no victim count
        # or width for §5.2: full-width models, 4 victims per cell are our choice
        architecture=ArchitectureSizes(
            data="cifar10", image_size=32, bn_mode="eval", client_lr=0.1, victims=4, gia_o=_gia_o(8000, 1e-5),
            skip_models=(("resnet18", ()), ("resnet34", ())),
            dense_models=(("densenet43", ()), ("densenet53", ())), nin_models=(("googlenet", ()), ("inception_v3", ())),
            nin_blocks=4, convnet_options=(("width", 64), ("dropout", 0.5)), micro_designs=MICRO_DESIGNS,
            beyond_models=(("resnet18", ()), ("preact_resnet18", ()))),
        # Appx B.III: 100 clients (99 with N = 500, the victim with N = 10), 10 % per round, E = 1, B = 10; the
        # paper does not give the rounds or the learning rate: 100 rounds at 0.05 is our choice
        post_processing=PostProcessingSizes(
            model="resnet18", model_options=(), data="cifar10", image_size=32, bn_mode="eval", client_lr=0.05,
            clients=100, samples_per_client=500, participation=0.1, batch_size=10, epochs=1, rounds=100,
            victim_samples=10, victim_batch_size=10, victims=4,
            defences=(("Q", (4, 3, 2, 1, "sign")), ("S", (0.95, 0.9, 0.8, 0.7, 0.6)),
                      ("C", (0.5, 0.3, 0.1, 0.05, 0.01)), ("P", (0.05, 0.1, 0.15, 0.2, 0.25))),
            attacks=("GIA-O", "GIA-L", "ROG"), gia_o=_gia_o(8000, 1e-5), gia_l=_PAPER_GIA_L, rog=ROG_RECIPE),
    ),
}


def override_names(section: str) -> list[str]:
    """What a notebook may override in ``section``: its fields, and ``<attack>_<setting>`` for its attacks."""
    return _override_names(section_settings(PROFILES["smoke"], section))


def _override_names(sizes) -> list[str]:
    names = []
    for f in dataclasses.fields(sizes):
        value = getattr(sizes, f.name)
        if isinstance(value, AttackConfig):
            names += [f"{f.name}_{a.name}" for a in dataclasses.fields(value)]
        else:
            names.append(f.name)
    return names


def _attack_override(sizes, key):
    """``("gia_o", "iterations")`` for ``gia_o_iterations`` when ``sizes`` has an attack ``gia_o``, else None."""
    for f in dataclasses.fields(sizes):
        if isinstance(getattr(sizes, f.name), AttackConfig) and key.startswith(f.name + "_"):
            return f.name, key[len(f.name) + 1:]
    return None


def get_profile(name: str, section: str | None = None, **overrides) -> Profile:
    """The preset ``name`` with ``overrides`` applied to ``section``'s sizes (``None`` = keep the preset's value).

    >>> get_profile("cpu", "training_setup", local_updates=[1, 2], gia_o_iterations=300)  # doctest: +SKIP
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if section is not None:
        sizes = section_settings(profile, section)
    if not overrides:
        return profile
    if section is None:
        raise ValueError(f"overrides {sorted(overrides)} need the section they apply to; sections: "
                         f"{', '.join(SECTIONS)}")
    checks = {f.name: f.metadata["check"] for f in dataclasses.fields(sizes)}
    changed = {}
    for key, value in overrides.items():
        attack = _attack_override(sizes, key)
        if key in checks and not isinstance(getattr(sizes, key), AttackConfig):
            current = getattr(sizes, key)
            changed[key] = _explained(key, current, lambda: checks[key](key, _from_text(key, value, current)))
        elif attack is not None:
            config = changed.get(attack[0], getattr(sizes, attack[0]))
            current = getattr(config, attack[1])
            changed[attack[0]] = _explained(key, current, lambda: _tuples(config.with_(
                **{attack[1]: _tuples(_from_text(key, value, current))})))
        else:
            raise ValueError(f"unknown {section} setting(s) [{key!r}]; available: {', '.join(_override_names(sizes))}")
    return dataclasses.replace(profile, **{section: dataclasses.replace(sizes, **changed)})


def _from_text(key: str, value, current):
    """A value as papermill's ``-p`` hands it over: text, unless it reads as a number or a boolean. Where the
    setting is not text (a list, a number, pairs), the text is read as a Python/JSON literal — literals only
    (``ast.literal_eval``), never code — so ``-p local_updates '[1,2,4]'`` is the list [1, 2, 4]."""
    if not isinstance(value, str) or isinstance(current, str) or current is None:
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"{key} got the text {value!r}, which does not read as a literal like "
                         f"{_example(current)}") from error


def _tuples(value):
    """Lists (from papermill, YAML or literals) become the tuples the frozen dataclasses store."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _example(current) -> str:
    """The preset's value as a parameter is written on a command line (JSON: lists, not tuples)."""
    if isinstance(current, tuple):
        return json.dumps(current)
    return json.dumps(current) if not isinstance(current, str) else current


def _explained(key: str, current, make):
    """``make()``, or its ``ValueError`` with how to pass ``key`` correctly from the command line."""
    try:
        return make()
    except (TypeError, ValueError) as error:
        example, message = _example(current), str(error).rstrip(".")
        message = message if message.startswith(key) else f"{key}: {message}"
        raise ValueError(f"{message}. From the command line, e.g.: papermill <notebook> out.ipynb "
                         f"-p {key} '{example}'  (or -y '{key}: {example}')") from None


def section_settings(profile: Profile, section: str):
    """``section``'s sizes in ``profile`` (``profile.<section>``), with a clear error for an unknown name."""
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}; available: {', '.join(SECTIONS)}")
    return getattr(profile, section)


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
