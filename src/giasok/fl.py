"""Federated-learning client simulation (paper §3 and §4.1).

A client holds N samples, trains the global model W_0 for E epochs of mini-batch SGD with batch size B and
learning rate η, and shares the parameter change W_U − W_0 after U = E·⌈N/B⌉ local updates.

* FedSGD: ``batch_size=None`` (B = N), ``epochs=1`` — one step; the update is exactly −η·∇W ℓ.
* Full batch, several updates (Table 1): ``batch_size=None``, ``epochs=U``.
* FedAvg / mini-batch SGD (Table 2): ``batch_size=B < N`` — U = N/B steps per epoch.

``fedavg_round`` is one round of FedAvg over a list of clients; ``fedavg_rounds`` runs rounds one after
another (§5.1 trains the global model this way and attacks it at every round). Checkpointing the global
model, so that an interrupted run resumes, is the result cache's job: ``giasok.runs.FedAvgTraining``.
Both take ``participation`` (the share of clients sampled per round; §6 samples 10 % of 100) and ``defense``
(post-processing every participating client applies to its update before sharing: ``giasok.defenses``).

BatchNorm: the client trains in **train mode**, normalising with each mini-batch's own statistics, as a
real client does (the paper's §5 models and the later practical study both stress this). The running
statistics it accumulates are returned in ``ClientUpdate.buffers`` for aggregation; attacks here do not
use them.

``client_update`` trains with ``torch.optim.SGD`` on a copy of the model; the adversary's simulation of the
same steps (``giasok.attacks``) is written independently with ``torch.func``, so the test that the two
agree means something.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ClientUpdate", "client_update", "fedavg_round", "fedavg_rounds", "apply_update", "minibatch_schedule",
           "sample_clients"]


@dataclass(frozen=True)
class ClientUpdate:
    """What a client shares (``delta``) and what a worst-case adversary may also know about it."""

    delta: dict  # parameter name -> W_U − W_0 (on the CPU)
    lr: float  # η
    epochs: int  # E
    batch_size: int  # B
    num_samples: int  # N
    batches: tuple  # per local step, the indices (into the client's N samples) of that step's mini-batch
    buffers: dict  # the client's BatchNorm running statistics after training (for FedAvg aggregation)
    image_shape: tuple  # C, H, W: the data shape, level-0 knowledge of the adversary
    bn_mode: str = "train"
    # BatchNorm layer name -> (mean, variance) of its input on the first mini-batch at W_0: present only
    # when the protocol shares them (assumption level 4, Yin et al.'s prior), otherwise None
    bn_statistics: dict | None = None
    # post-processing applied before sharing, in order: (name, ((parameter, value), ...)) records appended by
    # ``giasok.defenses``; () for the raw update
    defenses: tuple = ()

    @property
    def local_updates(self) -> int:
        """U, the number of SGD steps squeezed into ``delta``."""
        return len(self.batches)

    def as_gradient(self) -> dict:
        """−ΔW/η: the update read as one gradient (what an adversary without the training config matches)."""
        return {name: -d / self.lr for name, d in self.delta.items()}

    def restricted(self, names) -> "ClientUpdate":
        """The same update with ``delta`` kept for the parameters ``names`` only: what an adversary that matches
        part of the update sees (§5.2, Table 3: the gradient of one Inception block). ``invert`` matches the
        parameters present in ``delta``."""
        names = list(names)
        unknown = sorted(set(names) - set(self.delta))
        if not names or unknown:
            raise ValueError("restricted() needs a non-empty subset of the update's parameter names; "
                             f"got {len(names)} names, unknown: {unknown[:5]}")
        return dataclasses.replace(self, delta={name: self.delta[name] for name in names})


def minibatch_schedule(num_samples: int, batch_size: int | None, epochs: int, *, shuffle: bool,
                       generator: torch.Generator | None = None) -> tuple:
    """Index tensors of each local step: E epochs over N samples in mini-batches of B (last may be short)."""
    batch_size = num_samples if batch_size is None else batch_size
    if num_samples < 1 or epochs < 1 or not 1 <= batch_size <= num_samples:
        raise ValueError(f"need N ≥ 1, E ≥ 1 and 1 ≤ B ≤ N; got N={num_samples}, E={epochs}, B={batch_size}")
    steps = []
    for _ in range(epochs):
        order = torch.randperm(num_samples, generator=generator) if shuffle else torch.arange(num_samples)
        steps += list(order.split(batch_size))
    return tuple(steps)


def client_update(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, lr: float, epochs: int = 1,
                  batch_size: int | None = None, shuffle: bool = True, seed: int = 0,
                  device: str | torch.device = "cpu", share_bn_statistics: bool = False,
                  bn_mode: str = "train") -> ClientUpdate:
    """Train a copy of ``model`` (W_0) on the client's data and return W_U − W_0 with its training config.

    ``shuffle`` reshuffles the samples each epoch (with ``seed``); with one full batch it changes nothing.
    ``share_bn_statistics`` makes the client also share its BatchNorm input statistics of the first step.
    ``bn_mode="eval"`` trains with the model in eval mode (BatchNorm normalising with its running statistics,
    dropout off), the setting of much of the GIA literature's code; ``"train"`` is what a real client does.
    The model passed in is left untouched.
    """
    if bn_mode not in ("train", "eval"):
        raise ValueError(f"bn_mode must be 'train' or 'eval', got {bn_mode!r}")
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be N×C×H×W with N labels; got {tuple(images.shape)} and {len(labels)} labels")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    generator = torch.Generator().manual_seed(seed)
    batches = minibatch_schedule(len(images), batch_size, epochs, shuffle=shuffle, generator=generator)
    local = copy.deepcopy(model).to(device).train(bn_mode == "train")
    start = {name: p.detach().clone() for name, p in local.named_parameters()}
    images, labels = images.to(device), labels.to(device)
    optimizer = torch.optim.SGD(local.parameters(), lr=lr)
    statistics = None
    if share_bn_statistics:
        from .priors import batchnorm_input_statistics

        with torch.no_grad():
            statistics = {name: (m.cpu(), v.cpu()) for name, (m, v)
                          in batchnorm_input_statistics(local, images[batches[0]]).items()}
    with torch.random.fork_rng(devices=[]):  # dropout masks: deterministic under the seed
        torch.manual_seed(seed)
        for idx in batches:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(local(images[idx]), labels[idx]).backward()
            optimizer.step()
    delta = {name: (p.detach() - start[name]).cpu() for name, p in local.named_parameters()}
    buffers = {name: b.detach().cpu().clone() for name, b in local.named_buffers()}
    return ClientUpdate(delta=delta, lr=lr, epochs=epochs, batch_size=batch_size or len(images),
                        num_samples=len(images), batches=batches, buffers=buffers,
                        image_shape=tuple(images.shape[1:]), bn_statistics=statistics, bn_mode=bn_mode)


def apply_update(model: nn.Module, delta: dict, buffers: dict | None = None) -> nn.Module:
    """A copy of ``model`` with W ← W + delta (and buffers replaced when given)."""
    new = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in new.named_parameters():
            p.add_(delta[name].to(p.device))
        for name, b in new.named_buffers():
            if buffers is not None and name in buffers:
                b.copy_(buffers[name].to(b.device))
    return new


def sample_clients(num_clients: int, participation: float, seed: int) -> tuple:
    """Indices (ascending) of the clients taking part in a round: max(1, ⌊participation·K + ½⌋) of the K clients
    drawn without replacement with a generator seeded by the round's ``seed`` (Appx B.III: 10 % of 100 clients).
    ``participation == 1`` takes every client, drawing nothing."""
    if isinstance(participation, bool) or not isinstance(participation, numbers.Real) or not 0 < participation <= 1:
        raise ValueError(f"participation must be a fraction in (0, 1], got {participation!r}")
    if participation == 1:
        return tuple(range(num_clients))
    count = max(1, math.floor(participation * num_clients + 0.5))
    order = torch.randperm(num_clients, generator=torch.Generator().manual_seed(seed))
    return tuple(sorted(order[:count].tolist()))


def fedavg_round(global_model: nn.Module, clients, *, lr: float, epochs: int = 1, batch_size: int | None = None,
                 seed: int = 0, device: str | torch.device = "cpu", defense=None, participation: float = 1.0):
    """One FedAvg round: the sampled clients of ``clients`` (a list of (images, labels)) train from the global
    model; the server averages their updates weighted by N (McMahan et al., 2017).

    ``participation``: the fraction of clients sampled this round (``sample_clients`` with this round's ``seed``;
    at least one). Client k (its index in ``clients``) trains with seed ``seed + k`` whether or not others take
    part, so with ``participation=1`` the round is what it always was.
    ``defense``: a callable ``defense(update, seed) -> ClientUpdate`` (e.g. a ``giasok.defenses`` function bound
    to a strength) that every participating client applies to its update, with its seed ``seed + k``, before
    sharing it; the server averages the defended updates. BatchNorm statistics are not post-processed.

    Returns ``(new_global_model, updates)`` — the updates the server received, in client order; BatchNorm running
    statistics are averaged the same way (integer counters such as ``num_batches_tracked`` are taken from the
    first participating client).
    """
    if not clients:
        raise ValueError("fedavg_round needs at least one client")
    chosen = sample_clients(len(clients), participation, seed)
    updates = [client_update(global_model, *clients[k], lr=lr, epochs=epochs, batch_size=batch_size, seed=seed + k,
                             device=device) for k in chosen]
    if defense is not None:
        updates = [defense(u, seed + k) for k, u in zip(chosen, updates)]
    total = sum(u.num_samples for u in updates)
    delta = {name: sum(u.delta[name] * (u.num_samples / total) for u in updates) for name in updates[0].delta}
    buffers = {}
    for name, first in updates[0].buffers.items():
        buffers[name] = (sum(u.buffers[name] * (u.num_samples / total) for u in updates)
                         if first.is_floating_point() else first)
    return apply_update(global_model, delta, buffers), updates


def fedavg_rounds(global_model: nn.Module, clients, *, rounds: int, lr: float, epochs: int = 1,
                  batch_size: int | None = None, seed: int = 0, device: str | torch.device = "cpu",
                  start: int = 0, defense=None, participation: float = 1.0):
    """Run FedAvg rounds ``start + 1 … rounds`` from ``global_model`` (the model after round ``start``),
    yielding ``(t, global model after round t)``; ``defense`` and ``participation`` as in ``fedavg_round``.

    Round t's randomness (which clients take part, each client's shuffling, dropout and defence) depends on
    ``seed`` and t alone, so a run resumed from the model after round ``start`` continues exactly as an
    uninterrupted one would.
    """
    if not 0 <= start <= rounds:
        raise ValueError(f"need 0 ≤ start ≤ rounds, got start={start}, rounds={rounds}")
    model = global_model
    for t in range(start + 1, rounds + 1):
        model, _ = fedavg_round(model, clients, lr=lr, epochs=epochs, batch_size=batch_size,
                                seed=seed * 1_000_003 + t * len(clients), device=device, defense=defense,
                                participation=participation)
        yield t, model
