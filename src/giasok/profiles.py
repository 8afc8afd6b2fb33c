"""Size presets: one code path, three sizes.

* ``smoke`` — seconds; for tests and a quick check that a notebook runs end to end.
* ``cpu`` — minutes per section on 2 CPU cores: the offline ``patches`` data, a width-32 ConvNet, and fewer
  attack iterations, chosen so the paper's trends still show. The book here is built with it.
* ``paper`` — the paper's settings (CIFAR10/100, its batch sizes and iteration counts, Appx B); meant
  for a GPU (``device="cuda"``).

A profile changes sizes only, never the algorithm. ``get_profile(name, **overrides)`` returns the preset
with some fields replaced (how a notebook's papermill parameters reach it); unknown names and fields raise.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    # victim model (paper §4.1: Geiping et al.'s ConvNet-style CNN; options as build_model takes them)
    model: str
    model_options: tuple
    # GIA-O
    attack_iterations: int
    attack_restarts: int
    tv_weight: float
    # §4.1: (data set, N = B) for Table 1 and (data set, B) for Table 2
    table1_data: tuple
    local_updates: tuple
    table2_data: tuple
    minibatches: tuple
    seeds: int  # victim batches averaged per table cell


PROFILES = {
    "smoke": Profile(
        name="smoke", model="convnet", model_options=(("width", 4),),
        attack_iterations=20, attack_restarts=1, tv_weight=1e-4,
        table1_data=(("patches", 1),), local_updates=(1, 4),
        table2_data=(("patches", 1),), minibatches=(1, 2), seeds=1,
    ),
    "cpu": Profile(
        name="cpu", model="convnet", model_options=(("width", 32),),
        attack_iterations=1500, attack_restarts=1, tv_weight=1e-4,
        table1_data=(("patches", 1), ("patches", 2)), local_updates=(1, 2, 4, 6, 8),
        table2_data=(("patches", 1), ("patches", 2)), minibatches=(1, 2, 3, 4, 6, 8, 10), seeds=1,
    ),
    "paper": Profile(
        name="paper", model="convnet", model_options=(("width", 64),),
        attack_iterations=8000, attack_restarts=1, tv_weight=1e-4,
        table1_data=(("cifar10", 4), ("cifar100", 8)), local_updates=(1, 2, 4, 6, 8),
        table2_data=(("cifar10", 4), ("cifar100", 8)), minibatches=(1, 2, 3, 4, 6, 8, 10), seeds=4,
    ),
}


def get_profile(name: str, **overrides) -> Profile:
    """The preset ``name`` with ``overrides`` applied; ``None`` values mean "take the preset's"."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown profile field(s) {sorted(unknown)}; available: {sorted(fields)}")
    return dataclasses.replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})
