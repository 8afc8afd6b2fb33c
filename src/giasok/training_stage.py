"""§5.1 — the training stage: how vulnerable the global model is to GIA over FedAvg rounds (Fig. 7,
Insight 5.1, Appx B.II).

Each model of the zoo is trained with FedAvg (``giasok.runs.FedAvgTraining``, checkpointed per round). At
every round t we take the global model W_t and measure

* its **test accuracy** on the data set's test split;
* its **IGSA** (``giasok.igsa``, Eq. 10) at fixed probe inputs — the victim samples below, the same in every
  round — with the paper's finite-difference estimator and, beside it, the exact JVP one;
* the **GIA-O PSNR**: each victim sample, alone, is the batch of a client that takes one SGD step from W_t
  (FedSGD, U = 1, so only the model's stage varies); Geiping et al.'s attack (cosine distance + TV, labels
  given) reconstructs it from that update.

Victims are samples of client 0's training data (distinct labels where possible): the server attacks a
participant's update on its own data. BatchNorm: clients train in train mode, and the victim's update and
the attack use eval mode (the global model's aggregated running statistics), as in §4.2.1 and much of the
literature's code — train-mode BatchNorm on a one-image batch cripples GIA-O on its own (see models).

Each (model, round) evaluation is a cached ``RoundEvaluation``; an interrupted notebook resumes where it
stopped, both in training and in evaluation.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .attacks import AttackConfig, invert_many
from .claims import Claim, at_least, partial_trend, trend
from .fl import client_update
from .igsa import igsa
from .metrics import TAU_PSNR
from .profiles import TrainingStageSizes
from .runs import FedAvgTraining, config_hash, cpu_threads, default_workers, parallel_map, reconstruction_scores, run_grid

__all__ = ["PAPER_SETUP", "PAPER_FINDINGS", "HIGH_RISK_PSNR", "RoundEvaluation",
           "stage_experiments", "run_stages", "per_victim", "windowed", "peak_rounds", "insight_claims", "figure",
           "EXPLORER_METRICS",
           "paper_setup_table"]

# Appx B.II, quoted beside our configuration
PAPER_SETUP = {
    "models": "VGG-11/16/19, ResNet-18/50/152, DenseNet-121, GoogLeNet, Inception-v3",
    "data": "CIFAR10 at 32²", "clients": 5, "rounds": 100, "batch size": 128, "learning rate": 0.01,
    "local epochs": 10, "victim samples per round": 10, "IGSA K": 10000, "IGSA r": 1e-3,
    "window (rounds averaged in Fig. 7)": 5, "attack": "Geiping et al. (cosine + TV)",
}
# §5.1.2: what Fig. 7 shows (the figure's values are not tabulated in the paper)
PAPER_FINDINGS = {
    "early vs late": "GIA works only in early rounds; VGG-11's PSNR stays below 10 dB after about 15 rounds",
    "IGSA": "reconstruction succeeds while IGSA is high, fails once it drops and fluctuates low",
    "accuracy": "high-risk rounds are the under-fitting ones; resistance grows once accuracy stabilises",
}
# the round's metrics shown beside its reconstructions (notebook.explorer_panels' ``extra``), with PSNR
EXPLORER_METRICS = {"accuracy": "test accuracy {:.2f}", "igsa": "IGSA {:.3g}",
                    "igsa_normalised": "log-IGSA normalised {:.2f}"}
# §5.1.2 reads PSNR below 10 dB as "no privacy leakage"; Fig. 7 shades the rounds above it
HIGH_RISK_PSNR = 10.0


@dataclass(frozen=True)
class RoundEvaluation:
    """Accuracy, IGSA and GIA-O PSNR of a FedAvg run's global model after round ``round``; ``attack`` is the
    GIA-O run on each victim's update."""

    training: FedAvgTraining
    round: int
    victims: int = 2
    attack: AttackConfig = AttackConfig(iterations=300, priors=(("tv", 1e-4),))
    igsa_samples: int = 32
    igsa_radius: float = 1e-3
    bn_mode: str = "eval"
    seed: int = 0

    def victim_samples(self):
        """Client 0's first samples with distinct labels (then any), the same in every round."""
        images, labels = self.training.client_data()[0]
        first = list(dict.fromkeys(labels.tolist()))
        order = [int((labels == c).nonzero()[0]) for c in first]
        order += [i for i in range(len(labels)) if i not in order]
        if self.victims > len(order):
            raise ValueError(f"victims={self.victims} exceeds client 0's {len(order)} samples")
        idx = torch.tensor(order[:self.victims])
        return images[idx], labels[idx]

    @property
    def device(self) -> str:
        return self.training.device

    def kind(self):
        """Evaluations that cost the same (``giasok.runs.estimate``): every round of one run and attack."""
        return type(self).__name__, config_hash(dataclasses.replace(self, round=0))

    def compute(self):
        with cpu_threads(1, self.training.device):  # identical numbers in the main process and in workers
            return self._compute()

    def _compute(self):
        start = time.perf_counter()
        model = self.training.global_model(self.round)
        accuracy = self.training.test_accuracy(model)
        images, labels = self.victim_samples()
        device = self.training.device
        smooth = {estimator: igsa(model, images, labels, samples=self.igsa_samples, radius=self.igsa_radius,
                                  estimator=estimator, seed=self.seed, mode=self.bn_mode, device=device)
                  for estimator in ("finite-difference", "jvp")}
        updates = [client_update(model, images[i:i + 1], labels[i:i + 1], lr=self.training.lr, bn_mode=self.bn_mode,
                                 seed=self.seed, device=device) for i in range(len(images))]
        recs = invert_many(model, updates, self.attack, labels=[labels[i:i + 1] for i in range(len(images))],
                           seeds=[self.seed + i for i in range(len(images))], device=device)  # one pass on CUDA
        reconstruction = torch.cat([rec.images for rec in recs])
        result = dict(reconstruction_scores(reconstruction, images), accuracy=accuracy,
                      igsa=smooth["finite-difference"].value, igsa_exact=smooth["jvp"].value,
                      seconds=time.perf_counter() - start)
        arrays = {"truth": images.numpy(), "reconstruction": reconstruction.numpy(), "labels": labels.numpy(),
                  "sensitivities": smooth["finite-difference"].sensitivities,
                  "sensitivities_exact": smooth["jvp"].sensitivities}
        return result, arrays


def stage_experiments(settings: TrainingStageSizes, device: str = "cpu", seed: int = 0) -> list[RoundEvaluation]:
    """One ``RoundEvaluation`` per model of the section and round 0 … ``rounds``, model by model."""
    experiments = []
    for name, options in settings.models:
        training = FedAvgTraining(dataset=settings.data, image_size=settings.image_size, model=name,
                                  model_options=tuple(options), model_seed=seed, clients=settings.clients,
                                  samples_per_client=settings.samples_per_client, batch_size=settings.batch_size,
                                  epochs=settings.epochs, lr=settings.lr, seed=seed, device=device)
        experiments += [RoundEvaluation(training=training, round=t, victims=settings.victims, attack=settings.gia_o,
                                        igsa_samples=settings.igsa_samples, igsa_radius=settings.igsa_radius,
                                        bn_mode=settings.bn_mode, seed=seed)
                        for t in range(settings.rounds + 1)]
    return experiments


def run_stages(experiments, *, progress: bool = True, workers: int | None = None) -> tuple[pd.DataFrame, list]:
    """Run (or load) the evaluations; a tidy frame with one row per (model, round), and the raw results.

    First every model's FedAvg run is trained up to its last evaluated round (checkpointed), then the
    rounds are evaluated; ``workers`` processes share both phases (default: one per CPU core on the CPU,
    one on a GPU). Numbers do not depend on ``workers``.
    """
    experiments = list(experiments)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    if workers is None:
        workers = default_workers(experiments[0].training.device)
    last = {}
    for e in experiments:
        last[e.training] = max(last.get(e.training, 0), e.round)
    jobs = [(training, round_) for training, round_ in last.items() if training.last_checkpoint(round_) < round_]
    if workers > 1 and len(jobs) > 1:
        parallel_map(_train, jobs, workers=workers, progress=progress, desc="§5.1 FedAvg training")
    else:
        for job in jobs:
            _train(job, progress=progress)
    results = run_grid(experiments, progress=progress, desc="§5.1 rounds", workers=workers)
    rows = [dict(model=e.training.model, round=e.round, accuracy=r["accuracy"], psnr=r["psnr"], ssim=r["ssim"],
                 lpips=r["lpips"], igsa=r["igsa"], igsa_exact=r["igsa_exact"], seconds=r["seconds"],
                 seed=e.seed, hash=r["hash"])
            for e, r in zip(experiments, results)]
    frame = pd.DataFrame(rows)
    # Fig. 7 normalises IGSA per model. Ours spans many orders of magnitude over training (up to 10¹⁷ for
    # the exact estimator on GoogLeNet), so we normalise its logarithm to [0, 1] per model (min–max)
    for column in ("igsa", "igsa_exact"):
        log = np.log10(frame[column])
        low, high = log.groupby(frame.model).transform("min"), log.groupby(frame.model).transform("max")
        frame[f"{column}_normalised"] = ((log - low) / (high - low)).where(high > low, 1.0)
    return frame, results


def peak_rounds(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model: the round where the attack did best, its PSNR and the model's accuracy then, against the
    accuracy and PSNR of the last round — where in training each model was most exposed."""
    rows = []
    for model, runs in frame.groupby("model", sort=False):
        best, last = runs.loc[runs.psnr.idxmax()], runs.loc[runs["round"].idxmax()]
        rows.append({"model": model, "most exposed round": int(best["round"]), "PSNR there (dB)": best.psnr,
                     "accuracy there": best.accuracy, "last round": int(last["round"]),
                     "PSNR at the last round (dB)": last.psnr, "accuracy at the last round": last.accuracy,
                     "rounds ≥ 10 dB": int((runs.psnr >= HIGH_RISK_PSNR).sum())})
    return pd.DataFrame(rows).set_index("model")


def _train(job, progress: bool = False):
    training, round_ = job
    training.global_model(round_, progress=progress)


def windowed(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    """Means over consecutive windows of ``window`` rounds (Fig. 7 averages every 5 rounds)."""
    numeric = ["accuracy", "psnr", "ssim", "igsa_normalised", "igsa_exact_normalised"]
    out = frame.assign(window=frame["round"] // window).groupby(["model", "window"], sort=False)
    table = out[numeric].mean()
    table["round"] = out["round"].mean()  # the window's centre, where the figure plots it
    table["rounds"] = out["round"].agg(lambda r: f"{r.min()}–{r.max()}")
    return table.reset_index()


def per_victim(frame: pd.DataFrame, results: list) -> pd.DataFrame:
    """One row per (model, round, victim): the victim's PSNR and its own IGSA (Eq. 10 at that input, from the
    stored sensitivities), with the round's accuracy — the points the claims are tested over."""
    rows = []
    for (_, row), result in zip(frame.iterrows(), results):
        igsa_fd = 1.0 / np.asarray(result["arrays"]["sensitivities"]).mean(axis=1)
        igsa_jvp = 1.0 / np.asarray(result["arrays"]["sensitivities_exact"]).mean(axis=1)
        for victim, (psnr, a, b) in enumerate(zip(result["psnr_per_sample"], igsa_fd, igsa_jvp)):
            rows.append(dict(model=row.model, round=row["round"], victim=victim, accuracy=row.accuracy,
                             psnr=min(psnr, 100.0), igsa=a, igsa_exact=b))
    return pd.DataFrame(rows)


def insight_claims(victims: pd.DataFrame, window: int) -> list[Claim]:
    """Insight 5.1 on our numbers with the book's rule (``giasok.claims``), per model, over every victim ×
    round (``per_victim``): the attack leaks at the first round (else nothing can fall); PSNR falls
    over the rounds; IGSA and PSNR move together once their common drift with the round is removed (partial
    Spearman, control = round); PSNR falls as accuracy rises."""
    claims = []
    for model, runs in victims.groupby("model", sort=False):
        first = sorted(runs["round"].unique())[:window]
        early = runs[runs["round"].isin(first)]
        start = runs[runs["round"] == first[0]]
        claims.append(Claim.of("5.1", f"{model}: at round {first[0]}, the easiest point, the attack leaks "
                                      f"(mean PSNR ≥ τ1 = {TAU_PSNR:g} dB) — without it nothing can fall",
                               at_least(start.psnr, TAU_PSNR), PAPER_FINDINGS["early vs late"]))
        evidence = trend(runs["round"], runs.psnr, "decreasing", label="ρ(round, PSNR)")
        late = runs[runs["round"].isin(sorted(runs["round"].unique())[-window:])]
        claims.append(Claim.of("5.1", f"{model}: reconstruction quality falls over the rounds", evidence,
                               PAPER_FINDINGS["early vs late"],
                               ours=f"{evidence.text}; mean PSNR {early.psnr.mean():.1f} dB in rounds "
                                    f"{first[0]}–{first[-1]} → {late.psnr.mean():.1f} dB in rounds "
                                    f"{late['round'].min()}–{late['round'].max()}"))
        evidence = partial_trend(runs.igsa, runs.psnr, runs["round"], "increasing", label="partial ρ(IGSA, PSNR | round)")
        exact = partial_trend(runs.igsa_exact, runs.psnr, runs["round"], "increasing", label="exact JVP IGSA")
        claims.append(Claim.of("5.1", f"{model}: IGSA and PSNR move together beyond their common drift over the rounds",
                               evidence, PAPER_FINDINGS["IGSA"],
                               ours=f"{evidence.text} (finite differences, the paper's r); {exact.text}"))
        evidence = trend(runs.accuracy, runs.psnr, "decreasing", label="ρ(accuracy, PSNR)")
        claims.append(Claim.of("5.1", f"{model}: vulnerability falls as accuracy rises", evidence,
                               PAPER_FINDINGS["accuracy"],
                               ours=f"{evidence.text}; accuracy {runs.accuracy.min():.2f} → {runs.accuracy.max():.2f}"))
    return claims


def figure(frame: pd.DataFrame, window: int, victims: pd.DataFrame | None = None):
    """Fig. 7 style: per model, test accuracy, PSNR and normalised IGSA against the round, each averaged
    over windows of ``window`` rounds; windows whose mean PSNR is above ``HIGH_RISK_PSNR`` shaded. With
    ``victims`` (``per_victim``), PSNR carries error bars: the sd over the window's victims × rounds."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(frame.model))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False,
                             constrained_layout=True)
    for ax, model in zip(axes[0], models):
        w = windowed(frame[frame.model == model], window)
        x = w["round"].to_numpy()
        risky = (w.psnr >= HIGH_RISK_PSNR).to_numpy()
        for xi in x[risky]:
            ax.axvspan(xi - window / 2, xi + window / 2, color="0.88", lw=0)
        if not risky.any():  # say so rather than leave the reader looking for grey
            ax.text(0.98, 0.02, f"no window reaches {HIGH_RISK_PSNR:.0f} dB", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="0.4")
        ax.plot(x, w.accuracy, "o-", color="tab:green", label="test accuracy ↑")
        ax.plot(x, w.igsa_normalised, "s-", color="tab:purple", label="log IGSA, min–max per model")
        ax.plot(x, w.igsa_exact_normalised, "s:", color="tab:purple", alpha=0.5, label="same, exact JVP IGSA")
        ax.set(ylim=(0, 1.05), xlabel="round", title=model)
        right = ax.twinx()
        spread = None
        if victims is not None:
            mine = victims[victims.model == model]
            spread = mine.groupby(mine["round"] // window, sort=True).psnr.std().to_numpy()
        right.errorbar(x, w.psnr, yerr=spread, fmt="^-", color="tab:blue", capsize=2, label="PSNR (dB) ↑")
        right.axhline(HIGH_RISK_PSNR, color="tab:blue", lw=0.8, ls="--")
        right.set_ylabel("PSNR (dB)", color="tab:blue")
    fig.suptitle(f"means over windows of {window} rounds; grey: windows with mean PSNR ≥ {HIGH_RISK_PSNR:.0f} dB "
                 "(below it §5.1 sees no leakage)", fontsize=9)
    handles = axes[0][0].get_legend_handles_labels()
    right_handles = right.get_legend_handles_labels()
    fig.legend(handles[0] + right_handles[0], handles[1] + right_handles[1], loc="outside lower center",
               ncol=4, fontsize=8)
    return fig


def paper_setup_table(settings: TrainingStageSizes, profile: str) -> pd.DataFrame:
    """The paper's setup (Appx B.II) beside the section's sizes at ``profile``."""
    priors = " + ".join(f"{name.upper()} {weight:g}" for name, weight in settings.gia_o.priors)
    ours = {
        "models": ", ".join(f"{m} ({', '.join(f'{k}={v}' for k, v in o) or 'full'})" for m, o in settings.models),
        "data": f"{settings.data} at {settings.image_size}²", "clients": settings.clients,
        "rounds": settings.rounds, "batch size": settings.batch_size, "learning rate": settings.lr,
        "local epochs": settings.epochs, "victim samples per round": settings.victims,
        "IGSA K": settings.igsa_samples, "IGSA r": settings.igsa_radius,
        "window (rounds averaged in Fig. 7)": settings.window,
        "attack": f"GIA-O, {settings.gia_o.objective}{' + ' + priors if priors else ''}, "
                  f"{settings.gia_o.iterations} iterations",
    }
    return pd.DataFrame({"paper": pd.Series(PAPER_SETUP), f"ours ({profile})": pd.Series(ours)}).astype(str)
