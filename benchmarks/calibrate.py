"""Calibrate the ``cpu`` profile: does the attack leak at each section's easiest point, and at what cost?

The rule (``giasok.profiles``): at a section's easiest point (U = 1, one mini-batch, B = 1, the smallest
resolution, the earliest round) the ``cpu`` attack must leak — mean PSNR over the cell's victims ≥ τ1 =
18 dB — or the section's trend says nothing about the paper. This script attacks that point for several
candidate models/widths/iteration counts, three victims each, and prints the mean PSNR and the seconds per
attack (one torch thread per worker, two workers: what the book does on 2 cores). The chosen candidates
and their numbers are quoted in ``giasok/profiles.py``.

    .venv/bin/python benchmarks/calibrate.py [section ...]      # sections: 4.1 4.2.1 5.1
"""
from __future__ import annotations

import sys
import time

import numpy as np

from giasok.attacks import AttackConfig
from giasok.runs import FedAvgTraining, GiaExperiment, run_grid
from giasok.training_stage import RoundEvaluation

VICTIMS = 3


def _gia(name, attack: AttackConfig, **fields):
    return [(name, GiaExperiment(seed=s, attack=attack, **fields)) for s in range(VICTIMS)]


def candidates(section: str) -> list:
    gia_o = AttackConfig(priors=(("tv", 1e-4),))  # Geiping et al.: cosine + TV
    if section == "4.1":  # U = 1, N = B = 1, the ConvNet of Geiping et al.; GIA-L with the cpu DCGAN
        gia_l = AttackConfig(method="gia-l", generator_options=(("iterations", 2000), ("width", 32)), lr=0.05,
                             iterations=150)
        w16 = dict(model="convnet", model_options=(("width", 16),))
        return (_gia("convnet w32, GIA-O 300 it", gia_o.with_(iterations=300), model="convnet",
                     model_options=(("width", 32),))
                + _gia("convnet w16, GIA-O 600 it", gia_o.with_(iterations=600), **w16)
                + _gia("convnet w16, GIA-L 150+150 it, 1e-4",
                       gia_l.with_(generator_iterations=150, generator_lr=1e-4), **w16)
                + _gia("convnet w16, GIA-L 150+300 it, 1e-3",
                       gia_l.with_(generator_iterations=300, generator_lr=1e-3), **w16))
    if section == "4.2.1":  # G_O+TV at B = 1, eval-mode BatchNorm ResNet-18 (PyTorch default init)
        common = dict(model="resnet18", bn_mode="eval")
        return (_gia("resnet18 w1/8, 32², 1500 it", gia_o.with_(iterations=1500), model_options=(("width", 0.125),),
                     **common)
                + _gia("resnet18 w1/4, 16², 500 it", gia_o.with_(iterations=500), model_options=(("width", 0.25),),
                       image_size=16, **common)
                + _gia("resnet18 w1/4, 32², 500 it", gia_o.with_(iterations=500), model_options=(("width", 0.25),),
                       **common)
                + _gia("resnet18 w1/4, 32², 1500 it", gia_o.with_(iterations=1500), model_options=(("width", 0.25),),
                       **common)
                + _gia("resnet18 w1/2, 32², 1000 it", gia_o.with_(iterations=1000), model_options=(("width", 0.5),),
                       **common))
    if section == "5.1":  # round 0 of FedAvg: GIA-O (cosine + TV) on one-step updates of W_0
        out = []
        for model, width, size, iterations in (("resnet18", 0.25, 32, 500), ("resnet18", 0.25, 32, 1000),
                                               ("resnet18", 0.25, 16, 500), ("densenet121", 0.25, 16, 500),
                                               ("googlenet", 0.25, 16, 500)):
            training = FedAvgTraining(model=model, model_options=(("width", width),), image_size=size, clients=5,
                                      samples_per_client=100, batch_size=32, epochs=2, lr=0.01)
            out.append((f"{model} w{width}, {size}², round 0, {iterations} it",
                        RoundEvaluation(training=training, round=0, victims=VICTIMS,
                                        attack=gia_o.with_(iterations=iterations), igsa_samples=4)))
        return out
    raise SystemExit(f"unknown section {section!r}; choose from 4.1 4.2.1 5.1")


def main(sections):
    for section in sections:
        labelled = candidates(section)
        start = time.perf_counter()
        results = run_grid([c for _, c in labelled], desc=f"calibrate §{section}", workers=2)
        wall = time.perf_counter() - start
        print(f"\n§{section} (wall {wall:.0f} s, 2 workers)")
        print(f"{'candidate':34s} {'mean PSNR':>9s}  per victim (dB)          s/attack")
        by_name = {}
        for (name, _), r in zip(labelled, results):
            by_name.setdefault(name, []).append(r)
        for name, runs in by_name.items():
            psnr = np.concatenate([np.atleast_1d(r["psnr_per_sample"]) for r in runs])
            seconds = np.mean([r["seconds"] / (len(r["psnr_per_sample"]) if "igsa" in r else 1) for r in runs])
            verdict = "leaks" if psnr.mean() >= 18 else "does not leak"
            print(f"{name:34s} {psnr.mean():9.1f}  {', '.join(f'{p:.1f}' for p in psnr):24s} {seconds:7.1f}  {verdict}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["4.1", "4.2.1", "5.1"])
