"""§6 — post-processing: do the defences FL systems already apply to updates stop the strongest attacks at an
acceptable cost in accuracy? (Fig. 11, Table 6, Insight 6, Appx B.III)

* **Utility.** FedAvg (Appx B.III: 100 clients, 10 % per round, E = 1, B = 10) with the defence applied by
  every participating client to its update before the server averages (``giasok.fl.fedavg_rounds(defense=…)``);
  the test accuracy after R rounds, and its drop relative to the undefended run (``DefendedTraining``).
* **Privacy.** The victim (N = 10 in the paper) computes its update from the initial model W_0 and applies the
  defence; GIA-O, GIA-L and ROG attack the defended update (``GiaExperiment(defense=…)``). A point of Fig. 11 is
  (accuracy, quality of the strongest attack), the strongest attack being the one of the three with the
  highest mean PSNR over the victims at that point (the paper's "strongest GIAs": an attack, not a per-victim
  oracle).
* **Trade-off.** A strength is *acceptable* when the accuracy drops by at most 30 % (the paper's blue line)
  and *protects* when the strongest attack's mean PSNR is below τ1 = 18 dB (our leak line; the paper draws
  LPIPS 0.1). Per defence, the best trade-off is the acceptable strength with the weakest strongest attack.

The defences are ``giasok.defenses``' (Q: QSGD and SignSGD, S: top-k, C: clipping, P: Gaussian noise), with the
conventions stated there. The section's sizes are ``giasok.profiles.PostProcessingSizes``.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import defenses
from .claims import Claim, at_least, below, difference, most
from .data import image_size_option, load_dataset
from .fl import fedavg_rounds
from .metrics import TAU_PSNR
from .profiles import PostProcessingSizes
from .runs import FedAvgTraining, GiaExperiment, cpu_threads, default_workers, run_grid

__all__ = ["PAPER_TABLE6", "PAPER_FINDINGS", "ACCEPTABLE_DROP", "ATTACKS", "DefendedTraining", "defence_points",
           "utility_experiments", "privacy_experiments", "run_utility", "run_privacy", "trade_off", "best_trade_off",
           "table6", "insight_claims", "figure", "explorer_frame", "PAPER_SETUP", "setup_table"]

# Table 6 (Appx C): ROG's LPIPS under each defence (at the strength of Fig. 11's best trade-off)
PAPER_TABLE6 = {
    ("ResNet-18", "CIFAR10"): {"Q": 0.1548, "S": 0.1823, "C": 0.1771, "P": 0.229},
    ("ResNet-18", "CIFAR100"): {"Q": 0.1168, "S": 0.1144, "C": 0.0529, "P": 0.1645},
    ("Swin", "CIFAR10"): {"Q": 0.1680, "S": 0.1242, "C": 0.1117, "P": 0.1900},
    ("Swin", "CIFAR100"): {"Q": 0.1820, "S": 0.0906, "C": 0.045, "P": 0.1856},
}
# §6: what Fig. 11 shows (its points are not tabulated in the paper)
PAPER_FINDINGS = {
    "most": "most post-processings defend against the strongest GIAs with at most a 30 % accuracy drop",
    "quantisation": "quantisation gives the best trade-off: 2-bit quantisation defends with at most a 5 % accuracy "
                    "drop (ResNet-18, CIFAR100)",
    "clipping": "clipping fails the trade-off: even a bound that costs much accuracy barely affects the GIAs",
    "rog": "ROG breaks through gradient obfuscation (Yue et al.); Table 6 lists its LPIPS under each defence",
}
ACCEPTABLE_DROP = 0.30  # Fig. 11's blue line: at most 30 % relative accuracy drop
# the attacks of §6, as the profile names them
ATTACKS = {"GIA-O": "gia_o", "GIA-L": "gia_l", "ROG": "rog"}
NONE = ("none", None)


@dataclass(frozen=True)
class DefendedTraining:
    """FedAvg over ``training``'s clients for ``rounds`` rounds, ``participation`` of them per round, each
    applying ``defense`` ((name, strength) for ``giasok.defenses.apply``; ``("none", None)`` = undefended) to
    its update; the test accuracy of the global model after the last round."""

    training: FedAvgTraining
    rounds: int = 10
    participation: float = 1.0
    defense: tuple = NONE

    def compute(self):
        with cpu_threads(1, self.training.device):  # the same numbers in the main process and in workers
            start = time.perf_counter()
            defend = None if self.defense[0] == "none" else functools.partial(_defend, self.defense)
            model = self.training.initial_model()
            for _, model in fedavg_rounds(model, self.training.client_data(), rounds=self.rounds,
                                          lr=self.training.lr, epochs=self.training.epochs,
                                          batch_size=self.training.batch_size, seed=self.training.seed,
                                          device=self.training.device, defense=defend,
                                          participation=self.participation):
                pass
            accuracy = self.training.test_accuracy(model)
        return {"accuracy": accuracy, "seconds": time.perf_counter() - start}, {}


def _defend(defense, update, seed):
    return defenses.apply(update, defense[0], defense[1], seed=seed)


def defence_points(settings: PostProcessingSizes) -> list[tuple]:
    """``("none", None)`` and every (defence, strength) of the section's grid, weakest to strongest."""
    return [NONE] + [(name, strength) for name, strengths in settings.defences for strength in strengths]


def _training(settings: PostProcessingSizes, device: str, seed: int) -> FedAvgTraining:
    return FedAvgTraining(dataset=settings.data, image_size=settings.image_size, model=settings.model,
                          model_options=settings.model_options, model_seed=seed, clients=settings.clients,
                          samples_per_client=settings.samples_per_client, batch_size=settings.batch_size,
                          epochs=settings.epochs, lr=settings.client_lr, seed=seed, device=device)


def utility_experiments(settings: PostProcessingSizes, device: str = "cpu", seed: int = 0) -> list[DefendedTraining]:
    """One FedAvg run per defence point (the undefended run first)."""
    training = _training(settings, device, seed)
    return [DefendedTraining(training=training, rounds=settings.rounds, participation=settings.participation,
                             defense=point) for point in defence_points(settings)]


def privacy_experiments(settings: PostProcessingSizes, device: str = "cpu", seed: int = 0) -> list[tuple]:
    """(attack, defence point, experiment): every attack on every victim's defended update, per point."""
    out = []
    for point in defence_points(settings):
        for attack, field in ATTACKS.items():
            if attack not in settings.attacks:
                continue
            config = getattr(settings, field)
            out += [(attack, point, GiaExperiment(
                dataset=settings.data, image_size=settings.image_size, model=settings.model,
                model_options=settings.model_options, model_seed=seed, num_samples=settings.victim_samples,
                batch_size=settings.victim_batch_size, client_lr=settings.client_lr, bn_mode=settings.bn_mode,
                attack=config, defense=point, seed=seed + s, device=device))
                for s in range(settings.victims)]
    return out


def _label(point) -> str:
    return "none" if point[0] == "none" else f"{point[0]} {point[1]}"


def run_utility(experiments, *, progress=True, workers: int | None = None) -> pd.DataFrame:
    """Run (or load) the FedAvg runs; one row per defence point with accuracy and relative drop."""
    experiments = list(experiments)
    workers = workers or default_workers(experiments[0].training.device)
    results = run_grid(experiments, progress=progress, desc="§6 utility (FedAvg)", workers=workers)
    frame = pd.DataFrame([dict(defence=e.defense[0], strength=e.defense[1], point=_label(e.defense),
                               accuracy=r["accuracy"], seconds=r["seconds"]) for e, r in zip(experiments, results)])
    undefended = frame.loc[frame.defence == "none", "accuracy"].iloc[0]
    frame["drop"] = (undefended - frame.accuracy) / undefended if undefended > 0 else np.nan
    return frame


def run_privacy(labelled, *, progress=True, workers: int | None = None) -> tuple[pd.DataFrame, list]:
    """Run (or load) the attacks; one row per (attack, point, victim) with its scores, and the raw results."""
    labelled = list(labelled)
    workers = workers or default_workers(labelled[0][2].device)
    results = run_grid([e for _, _, e in labelled], progress=progress, desc="§6 attacks", workers=workers)
    rows = [dict(attack=a, defence=p[0], strength=p[1], point=_label(p), seed=e.seed, psnr=min(r["psnr"], 100.0),
                 ssim=r["ssim"], lpips=r["lpips"], seconds=r["seconds"], hash=r["hash"])
            for (a, p, e), r in zip(labelled, results)]
    return pd.DataFrame(rows), results


def trade_off(utility: pd.DataFrame, privacy: pd.DataFrame) -> pd.DataFrame:
    """Per defence point: accuracy, relative drop, mean PSNR of each attack, the strongest attack (highest mean
    PSNR) and its mean, and whether the point is acceptable (drop ≤ 30 %) and protects (the strongest attack's
    mean PSNR < τ1)."""
    per_attack = privacy.pivot_table(index="point", columns="attack", values="psnr", aggfunc="mean")
    table = utility.set_index("point")[["defence", "strength", "accuracy", "drop"]].join(per_attack)
    table["strongest attack"] = per_attack.idxmax(axis=1)
    table["strongest"] = per_attack.max(axis=1)
    table["acceptable"] = table["drop"] <= ACCEPTABLE_DROP
    table["protects"] = table["strongest"] < TAU_PSNR
    order = {p: i for i, p in enumerate(utility.point)}
    return table.sort_index(key=lambda idx: idx.map(order))


def best_trade_off(table: pd.DataFrame) -> dict:
    """Per defence: the acceptable point with the weakest strongest attack (None where no point is acceptable)."""
    best = {}
    for defence, rows in table[table.defence != "none"].groupby("defence", sort=False):
        fine = rows[rows.acceptable]
        best[defence] = None if fine.empty else fine.strongest.idxmin()
    return best


def _strongest_per_victim(privacy: pd.DataFrame, point: str) -> pd.Series:
    """The per-victim PSNR of the strongest attack at ``point`` (the attack with the highest mean there)."""
    here = privacy[privacy.point == point]
    attack = here.groupby("attack").psnr.mean().idxmax()
    return here[here.attack == attack].set_index("seed").psnr


def table6(privacy: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """ROG (and GIA-O beside it) at each defence's best trade-off point: mean PSNR/SSIM (LPIPS when available)."""
    rows = []
    for defence, point in best_trade_off(table).items():
        if point is None:
            continue
        here = privacy[privacy.point == point]
        for attack in ("ROG", "GIA-O"):
            runs = here[here.attack == attack]
            if len(runs):
                rows.append(dict(defence=defence, point=point, attack=attack, psnr=runs.psnr.mean(),
                                 ssim=runs.ssim.mean(), lpips=runs.lpips.mean() if runs.lpips.notna().all() else None))
    return pd.DataFrame(rows)


def insight_claims(utility: pd.DataFrame, privacy: pd.DataFrame, settings: PostProcessingSizes) -> list[Claim]:
    """Insight 6 on our numbers with the book's rule (``giasok.claims``)."""
    table = trade_off(utility, privacy)
    claims = []
    undefended = privacy[privacy.point == "none"]
    gia_o = undefended[undefended.attack == "GIA-O"].psnr
    others = ", ".join(f"{a} {undefended[undefended.attack == a].psnr.mean():.1f} dB"
                       for a in ATTACKS if a != "GIA-O" and a in set(undefended.attack))
    leak = at_least(gia_o, TAU_PSNR)
    claims.append(Claim.of("6", "without a defence, the easiest point, GIA-O leaks (mean PSNR ≥ τ1 = 18 dB) — "
                                "without it no defence can be seen to work", leak, PAPER_FINDINGS["most"],
                           ours=f"{leak.text}; {others}"))
    accuracy = table.loc["none", "accuracy"]
    chance = 1.0 / len(load_dataset(settings.data, "test", download=True,
                                    **image_size_option(settings.data, settings.image_size)).classes)
    claims.append(Claim.of("6", f"without a defence FedAvg learns: test accuracy at least twice chance "
                                f"({2 * chance:.2f})", at_least([accuracy], 2 * chance, label="accuracy", unit=""),
                           PAPER_FINDINGS["most"], ours=f"accuracy {accuracy:.2f} after {settings.rounds} rounds "
                                                        f"(chance {chance:.2f})"))
    best = best_trade_off(table)
    stops = {}
    for defence, point in best.items():
        if point is None:
            stops[defence] = below([], TAU_PSNR)  # no acceptable strength: cannot count as stopping the attack
        else:
            evidence = below(_strongest_per_victim(privacy, point), TAU_PSNR, label=f"strongest attack at {point}")
            stops[defence] = dataclasses.replace(evidence, text=f"{evidence.text}, accuracy drop "
                                                                f"{table.loc[point, 'drop']:.0%}")
    claims.append(Claim.of("6", "most defences stop the strongest attack (mean PSNR < τ1) at an acceptable cost "
                                "(accuracy drop ≤ 30 %)", most(stops), PAPER_FINDINGS["most"]))
    if best.get("Q") is not None:
        q = _strongest_per_victim(privacy, best["Q"])
        rest = pd.concat([_strongest_per_victim(privacy, p) for d, p in best.items() if d != "Q" and p is not None]
                         or [pd.Series(dtype=float)])
        evidence = difference(rest, q, paired=False, label="others' best − Q's best strongest-attack PSNR", unit=" dB")
    else:
        evidence = below([], TAU_PSNR)
    claims.append(Claim.of("6", "quantisation gives the best trade-off: at its best acceptable strength the strongest "
                                "attack does worse than at the other defences' best", evidence,
                           PAPER_FINDINGS["quantisation"]))
    clip_points = table[table.defence == "C"]
    if len(clip_points):
        strongest_clip = clip_points.index[-1]
        evidence = at_least(_strongest_per_victim(privacy, strongest_clip), TAU_PSNR,
                            label=f"strongest attack at {strongest_clip}")
        claims.append(Claim.of("6", "clipping barely affects the attack: at the tightest bound the strongest attack "
                                    "still leaks", evidence, PAPER_FINDINGS["clipping"],
                               ours=f"{evidence.text}; accuracy drop there {table.loc[strongest_clip, 'drop']:.0%}"))
    strongest_points = [table[table.defence == d].index[-1] for d in best]
    pairs = privacy[privacy.point.isin(strongest_points)].pivot_table(index=["point", "seed"], columns="attack",
                                                                       values="psnr")
    if {"ROG", "GIA-O"} <= set(pairs.columns):
        evidence = difference(pairs["ROG"], pairs["GIA-O"], paired=True, label="ROG − GIA-O PSNR", unit=" dB")
        claims.append(Claim.of("6", "under each defence's strongest setting ROG recovers more than GIA-O",
                               evidence, PAPER_FINDINGS["rog"]))
    return claims


def figure(table: pd.DataFrame):
    """Fig. 11 style: per defence point, test accuracy against the strongest attack's mean PSNR; the τ1 line
    (privacy), the 30 %-drop line (utility), and each defence's best trade-off starred."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    best = set(p for p in best_trade_off(table).values() if p is not None)
    colours = dict(zip(["none", "Q", "S", "C", "P"], ["black", "tab:blue", "tab:orange", "tab:green", "tab:red"]))
    for defence, rows in table.groupby("defence", sort=False):
        ax.plot(rows.strongest, rows.accuracy, "o-" if len(rows) > 1 else "o", color=colours.get(defence, "grey"),
                label=defence, alpha=0.8)
        for point, row in rows.iterrows():
            ax.annotate(str(row.strength) if defence != "none" else "none", (row.strongest, row.accuracy),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
            if point in best:
                ax.plot(row.strongest, row.accuracy, "*", ms=16, mfc="none", color=colours.get(defence, "grey"))
    undefended = table.loc["none", "accuracy"]
    ax.axhline(undefended * (1 - ACCEPTABLE_DROP), color="tab:blue", ls="--", lw=1,
               label=f"{ACCEPTABLE_DROP:.0%} accuracy drop")
    ax.axvline(TAU_PSNR, color="tab:red", ls="--", lw=1, label="τ1 = 18 dB (leak)")
    ax.set(xlabel="strongest attack, mean PSNR (dB) ← more private", ylabel="test accuracy ↑",
           title="privacy vs utility per defence (★ best trade-off)")
    ax.legend(fontsize=7, loc="best")
    return fig


def explorer_frame(privacy: pd.DataFrame, results: list, utility: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """What ``notebook.explorer_panels`` needs, one victim (the first): rows with a numeric ``level`` per defence
    (0 = none, then weakest → strongest), a ``view`` (defence · attack) whose level 0 is the undefended run,
    and the point's accuracy and strength; returned with the matching results."""
    accuracy = utility.set_index("point").accuracy
    levels = {}
    for defence, rows in utility.groupby("defence", sort=False):
        for i, point in enumerate(rows.point):
            levels[point] = 0 if defence == "none" else i + 1
    frame = privacy.assign(level=privacy.point.map(levels), accuracy=privacy.point.map(accuracy),
                           result=range(len(privacy)))
    frame = frame[frame.seed == frame.seed.min()]
    parts = []
    for defence in [d for d in dict.fromkeys(utility.defence) if d != "none"]:
        for attack in dict.fromkeys(privacy.attack):
            mine = frame[(frame.attack == attack) & frame.defence.isin([defence, "none"])]
            parts.append(mine.assign(view=f"{defence} · {attack}"))
    table = pd.concat(parts, ignore_index=True)
    table["strength"] = table.strength.astype(str)
    return table, [results[i] for i in table.result]


PAPER_SETUP = {
    "models": "ResNet-18 and Swin (extended version: ResNet-34)", "data": "CIFAR10 and CIFAR100 at 32²",
    "clients": "100 (99 with N = 500, the victim with N = 10)", "participation": "10 % per round",
    "local training": "E = 1, B = 10", "victim's update": "N = 10, B = 10",
    "attacks": "GIA-O, GIA-L, ROG", "defences": "Q: 1–4 bits, SignSGD; S: keep 0.6–0.95; C: 0.5–0.01; P: 0.05–0.25",
}


def setup_table(settings: PostProcessingSizes, profile: str) -> pd.DataFrame:
    """The paper's setup (Appx B.III) beside the section's sizes at ``profile``."""
    options = ", ".join(f"{k}={v}" for k, v in settings.model_options)
    ours = {
        "models": f"{settings.model}{f' ({options})' if options else ''}",
        "data": f"{settings.data} at {settings.image_size}²",
        "clients": f"{settings.clients} with N = {settings.samples_per_client}",
        "participation": f"{settings.participation:.0%} per round, {settings.rounds} rounds",
        "local training": f"E = {settings.epochs}, B = {settings.batch_size}, η = {settings.client_lr}",
        "victim's update": f"N = {settings.victim_samples}, B = {settings.victim_batch_size}, from W_0; "
                           f"{settings.victims} victims per cell",
        "attacks": ", ".join(settings.attacks),
        "defences": "; ".join(f"{d}: {', '.join(map(str, s))}" for d, s in settings.defences),
    }
    return pd.DataFrame({"paper": pd.Series(PAPER_SETUP), f"ours ({profile})": pd.Series(ours)}).astype(str)
