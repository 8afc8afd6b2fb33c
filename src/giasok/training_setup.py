"""§4.1 — training configurations (Tables 1 and 2, Insight 4.1).

* Table 1: the client trains on one full batch (B = N) for U local updates and shares W_U − W_0; the
  adversary reads it as one gradient. Quality against U.
* Table 2: the client runs one epoch of mini-batch SGD (B < N, U = N/B); the adversary either knows the
  training configuration and simulates the U steps (WST, worst case for the client) or does not (BST).
  Quality against the number of mini-batches.

Each table cell is a ``giasok.runs.GiaExperiment`` (cached). The paper's numbers are kept here as data,
quoted beside ours; the paper reports LPIPS (AlexNet), we report LPIPS when its weights are installed and
PSNR/SSIM always.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .claims import Claim, at_least, difference, generator_gate, trend
from .metrics import TAU_PSNR
from .profiles import TrainingSetupSizes
from .runs import GiaExperiment, default_workers, run_grid, with_generator_seed

__all__ = ["PAPER_TABLE1", "PAPER_TABLE1_EXTENDED", "PAPER_TABLE2", "table1_experiments",
           "table2_experiments", "generator_experiments", "generator_claim", "run_table", "insight_claims", "figure"]

# Table 1 (LPIPS ↓): (data set, attack) -> {U: LPIPS}; conference version, then the extended version.
PAPER_TABLE1 = {
    ("CIFAR10 N=B=4", "GIA-O"): {1: 0.0189, 2: 0.1231, 4: 0.1499, 6: 0.1921, 8: 0.2522},
    ("CIFAR10 N=B=4", "GIA-L"): {1: 0.075, 2: 0.0952, 4: 0.1554, 6: 0.1607, 8: 0.1984},
    ("CIFAR100 N=B=8", "GIA-O"): {1: 0.0049, 2: 0.0404, 4: 0.1165, 6: 0.1653, 8: 0.2268},
    ("CIFAR100 N=B=8", "GIA-L"): {1: 0.0288, 2: 0.063, 4: 0.1205, 6: 0.1514, 8: 0.1852},
}
PAPER_TABLE1_EXTENDED = {
    ("CIFAR10 N=B=4", "GIA-O"): {1: 0.0374, 2: 0.0933, 4: 0.1508, 6: 0.1917, 8: 0.2089},
    ("CIFAR10 N=B=4", "GIA-L"): {1: 0.0608, 2: 0.104, 4: 0.1332, 6: 0.1891, 8: 0.1917},
    ("CIFAR100 N=B=8", "GIA-O"): {1: 0.0061, 2: 0.0455, 4: 0.1248, 6: 0.163, 8: 0.2305},
    ("CIFAR100 N=B=8", "GIA-L"): {1: 0.0382, 2: 0.0578, 4: 0.1222, 6: 0.1712, 8: 0.1886},
}
# Table 2 (LPIPS ↓): (data set, attack, case) -> {number of mini-batches: LPIPS}; WST at 1 equals BST.
PAPER_TABLE2 = {
    ("CIFAR10 B=4", "GIA-O", "WST"): {2: 0.061, 3: 0.1064, 4: 0.1117, 6: 0.1456, 8: 0.1314, 10: 0.1426},
    ("CIFAR10 B=4", "GIA-O", "BST"): {1: 0.0172, 2: 0.0641, 3: 0.1088, 4: 0.1075, 6: 0.1398, 8: 0.1403, 10: 0.1445},
    ("CIFAR10 B=4", "GIA-L", "WST"): {2: 0.0672, 3: 0.0834, 4: 0.1043, 6: 0.1436, 8: 0.1285, 10: 0.1376},
    ("CIFAR10 B=4", "GIA-L", "BST"): {1: 0.0669, 2: 0.0833, 3: 0.0859, 4: 0.1017, 6: 0.1444, 8: 0.1318, 10: 0.1451},
    ("CIFAR100 B=8", "GIA-O", "WST"): {2: 0.0732, 3: 0.0792, 4: 0.1003, 6: 0.1063, 8: 0.1193, 10: 0.1273},
    ("CIFAR100 B=8", "GIA-O", "BST"): {1: 0.0045, 2: 0.0581, 3: 0.0759, 4: 0.0928, 6: 0.1139, 8: 0.1183, 10: 0.1271},
    ("CIFAR100 B=8", "GIA-L", "WST"): {2: 0.0725, 3: 0.0788, 4: 0.0931, 6: 0.1017, 8: 0.1100, 10: 0.1174},
    ("CIFAR100 B=8", "GIA-L", "BST"): {1: 0.0436, 2: 0.0776, 3: 0.0817, 4: 0.093, 6: 0.1016, 8: 0.1076, 10: 0.1178},
}


def _experiment(settings: TrainingSetupSizes, device: str, seed: int, method: str, *, known_training_config=False,
                **fields) -> GiaExperiment:
    attack = {"gia-o": settings.gia_o, "gia-l": settings.gia_l}[method]
    if known_training_config:
        attack = attack.with_(known_training_config=True)
    return GiaExperiment(model=settings.model, model_options=settings.model_options, client_lr=settings.client_lr,
                         bn_mode=settings.bn_mode, device=device, seed=seed, attack=attack, **fields)


def table1_experiments(settings: TrainingSetupSizes, device: str = "cpu", seed: int = 0) -> list[GiaExperiment]:
    """Full batch (B = N), U local updates, adversary without the training config: data × attack × U × seeds."""
    return [_experiment(settings, device, seed + s, method, dataset=data, num_samples=n, epochs=u)
            for data, n in settings.table1_data for method in settings.attacks for u in settings.local_updates
            for s in range(settings.seeds)]


def table2_experiments(settings: TrainingSetupSizes, device: str = "cpu", seed: int = 0) -> list[GiaExperiment]:
    """One epoch of mini-batch SGD with N = k·B; WST and BST adversaries (one run at k = 1, where they agree)."""
    experiments = []
    for data, b in settings.table2_data:
        for method in settings.attacks:
            for k in settings.minibatches:
                for known in ((False,) if k == 1 else (True, False)):
                    experiments += [_experiment(settings, device, seed + s, method, dataset=data, num_samples=k * b,
                                                batch_size=b, known_training_config=known)
                                    for s in range(settings.seeds)]
    return experiments


def generator_experiments(settings: TrainingSetupSizes, device: str = "cpu", seed: int = 0) -> list[GiaExperiment]:
    """GIA-L at Table 1's easiest point (its first data set, the smallest U) with a DCGAN trained from each of
    ``generator_seeds``: how much the attack depends on one training run of its generator. Seed 0 is the
    generator of the tables, so those runs come from the cache."""
    data, n = settings.table1_data[0]
    return [with_generator_seed(_experiment(settings, device, seed + s, "gia-l", dataset=data, num_samples=n,
                                            epochs=min(settings.local_updates)), g)
            for g in settings.generator_seeds for s in range(settings.seeds)]


def generator_claim(frame: pd.DataFrame) -> Claim:
    """The generator gate (``claims.generator_gate``) at Table 1's easiest point."""
    return generator_gate(frame, "4.1", "GIA-L", f"U = {frame.U.min()}")


def run_table(experiments, *, progress: bool = True, desc: str = "runs", workers: int | None = None
              ) -> tuple[pd.DataFrame, list]:
    """Run (or load) a table's experiments in ``workers`` processes (default: one per CPU core on the CPU);
    return a tidy frame (one row per run) and the raw results."""
    experiments = list(experiments)
    workers = workers or default_workers(experiments[0].device)
    results = run_grid(experiments, progress=progress, desc=desc, workers=workers)
    rows = []
    for e, r in zip(experiments, results):
        b = e.batch_size or e.num_samples
        rows.append(dict(dataset=f"{e.dataset} N={e.num_samples}" if e.batch_size is None else f"{e.dataset} B={b}",
                         attack=e.attack.method.upper(), N=e.num_samples, B=b, U=r["local_updates"],
                         minibatches=e.num_samples // b,
                         case="WST" if e.attack.known_training_config else "BST", seed=e.seed,
                         generator_seed=(dict(e.attack.generator_options).get("seed", 0)
                                         if e.attack.method == "gia-l" else None),
                         psnr=r["psnr"], ssim=r["ssim"], lpips=r["lpips"], seconds=r["seconds"], hash=r["hash"]))
    return pd.DataFrame(rows), results


def _paper_data_sets(table: dict) -> list[str]:
    return list(dict.fromkeys(key[0] for key in table))


def _paper_table1(attack: str) -> str:
    """The paper's Table 1 for ``attack``, per data set, read with the book's rule (LPIPS rising with U)."""
    parts = []
    for data in _paper_data_sets(PAPER_TABLE1):
        row = PAPER_TABLE1[(data, attack)]
        evidence = trend(list(row), list(row.values()), "increasing")
        parts.append(f"{data.split()[0]}: LPIPS {row[min(row)]} at U={min(row)} → {row[max(row)]} at U={max(row)}, "
                     f"{evidence.text}")
    return "; ".join(parts)


def _paper_table2_row(data: str, attack: str, case: str) -> dict:
    """Mini-batches → LPIPS of one Table 2 row; WST starts at the shared one-mini-batch point of BST."""
    row = dict(PAPER_TABLE2[(data, attack, case)])
    row.setdefault(1, PAPER_TABLE2[(data, attack, "BST")][1])
    return dict(sorted(row.items()))


def _paper_table2(attack: str, case: str) -> str:
    parts = []
    for data in _paper_data_sets(PAPER_TABLE2):
        row = _paper_table2_row(data, attack, case)
        crossing = next((k for k, v in row.items() if v >= 0.1), None)
        evidence = trend(list(row), list(row.values()), "increasing")
        parts.append(f"{data.split()[0]}: LPIPS {row[1]} → {row[max(row)]}, first ≥ 0.1 at "
                     f"{crossing if crossing else 'no'} mini-batches, {evidence.text}")
    return "; ".join(parts)


def _paper_wst_vs_bst(attack: str) -> str:
    """Does the paper's Table 2 show WST beating BST (lower LPIPS) over ≥ 2 mini-batches? Per data set."""
    parts = []
    for data in _paper_data_sets(PAPER_TABLE2):
        wst, bst = PAPER_TABLE2[(data, attack, "WST")], PAPER_TABLE2[(data, attack, "BST")]
        ks = sorted(wst)
        evidence = difference([bst[k] for k in ks], [wst[k] for k in ks], paired=True, label="BST − WST LPIPS", digits=4)
        verdict = "supports" if evidence.holds else "does not support"
        parts.append(f"{data.split()[0]}: mean LPIPS WST {np.mean([wst[k] for k in ks]):.4f}, BST "
                     f"{np.mean([bst[k] for k in ks]):.4f} ({evidence.text}: {verdict} the claim)")
    return "; ".join(parts)


def insight_claims(table1: pd.DataFrame, table2: pd.DataFrame) -> list[Claim]:
    """Insight 4.1 checked on our numbers with the book's rule (``giasok.claims``): the attack leaks at the
    easiest point (U = 1), quality falls with U and with the number of mini-batches over all victims × grid
    points, and WST beats BST on the same victims. The paper's side of each claim is computed from its
    tables, per data set, with the same rule."""
    claims = []
    for (data, attack), frame in table1.groupby(["dataset", "attack"], sort=False):
        easiest = frame[frame.U == frame.U.min()]
        claims.append(Claim.of("4.1", f"Table 1 ({data}, {attack}): at U = {frame.U.min()} the attack leaks "
                                      f"(mean PSNR ≥ τ1 = {TAU_PSNR:g} dB) — without it the trend says nothing",
                               at_least(easiest.psnr, TAU_PSNR),
                               "LPIPS at U=1: " + ", ".join(f"{d.split()[0]} {PAPER_TABLE1[(d, attack)][1]}"
                                                             for d in _paper_data_sets(PAPER_TABLE1))))
        evidence = trend(frame.U, frame.psnr, "decreasing", label="ρ(U, PSNR)")
        means = frame.groupby("U").psnr.mean()
        claims.append(Claim.of("4.1", f"Table 1 ({data}, {attack}): reconstruction quality falls as U grows",
                               evidence, _paper_table1(attack),
                               ours=f"{evidence.text}; mean PSNR {means.iloc[0]:.1f} dB at U={means.index[0]} → "
                                    f"{means.iloc[-1]:.1f} dB at U={means.index[-1]}"))
    for (data, attack), frame in table2.groupby(["dataset", "attack"], sort=False):
        single = frame[frame.minibatches == 1]
        for case in ("WST", "BST"):
            sub = pd.concat([single, frame[(frame.case == case) & (frame.minibatches > 1)]])
            evidence = trend(sub.minibatches, sub.psnr, "decreasing", label="ρ(mini-batches, PSNR)")
            means = sub.groupby("minibatches").psnr.mean()
            claims.append(Claim.of("4.1", f"Table 2 ({data}, {attack}, {case}): quality falls with more mini-batches",
                                   evidence, _paper_table2(attack, case),
                                   ours=f"{evidence.text}; mean PSNR {means.iloc[0]:.1f} → {means.iloc[-1]:.1f} dB"))
        several = frame[frame.minibatches > 1]
        if several.case.nunique() == 2:
            paired = several.pivot_table(index=["seed", "minibatches"], columns="case", values="psnr").dropna()
            claims.append(Claim.of("4.1", f"Table 2 ({data}, {attack}): knowing the training configuration (WST) "
                                          "helps the adversary: WST reconstructs better than BST",
                                   difference(paired.WST, paired.BST, paired=True, label="WST − BST PSNR", unit=" dB"),
                                   _paper_wst_vs_bst(attack)))
    return claims


def figure(table1: pd.DataFrame, table2: pd.DataFrame):
    """PSNR against U (Table 1) and against the number of mini-batches (Table 2)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    sns.lineplot(table1, x="U", y="psnr", hue="dataset", style="attack", marker="o", errorbar="sd", err_style="bars",
                 ax=axes[0])
    axes[0].set(title="Table 1: full batch, U local updates", xlabel="local updates U", ylabel="PSNR (dB) ↑")
    sns.lineplot(table2.assign(run=table2.attack + " " + table2.case), x="minibatches", y="psnr", hue="run",
                 style="dataset", marker="o", errorbar="sd", err_style="bars", ax=axes[1])
    axes[1].set(title="Table 2: mini-batch SGD, one epoch", xlabel="mini-batches N/B", ylabel="PSNR (dB) ↑")
    for ax in axes:
        ax.axhline(TAU_PSNR, color="red", lw=0.8, ls="--")  # τ1 of Appx C.II: below it a sample does not leak
    return fig
