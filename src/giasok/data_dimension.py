"""§4.2.1 — data dimension (Theorem 4.3, Fig. 4, Table 5, Insight 4.2.1).

* Theorem 4.3: when the gradient has fewer entries p than the batch has values B·D, the map x ↦ Φ(x) from
  inputs to gradients has a non-trivial null space, so different batches share a gradient.
  ``non_unique_inverse`` constructs such a pair on a small network.
* Fig. 4a: quality against resolution at B = 1; Fig. 4b: against batch size. Four attacks: G_O (gradient
  matching alone), G_O+TV, G_O+BN (Yin et al.'s BatchNorm-statistics prior, assumption level 4) and G_L
  (GIA-L with a DCGAN trained on the client's data distribution). FedSGD, a ResNet-18 with PyTorch's default
  initialisation.
* Table 5: mean LPIPS, BRR and WSRR against batch size for GIA-O and GIA-L; WSRR over several attack
  initialisations of the same batch (``GiaExperiment.attack_seed``).

The section's sizes are ``giasok.profiles.DataDimensionSizes`` (``profile.data_dimension``). BatchNorm: its
``bn_mode`` says whether the client trains its ResNet in eval mode (the
frozen-statistics setting of the GIA codebases the paper builds on) or in train mode; the notebook states
which and measures the other at one point.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev

from . import metrics
from .attacks import AttackConfig
from .claims import Claim, Evidence, at_least, generator_gate, trend
from .profiles import DataDimensionSizes
from .runs import GiaExperiment, default_workers, run_grid, with_generator_seed

__all__ = ["ATTACKS", "attack_config", "PAPER_TABLE5", "paper_table5", "non_unique_inverse", "resolution_experiments",
           "batch_experiments", "table5_experiments", "resolution_data", "generator_experiments", "generator_claim",
           "run_frame", "table5", "table5_claims", "insight_claims", "figure"]

# the four attacks of Fig. 4
ATTACKS = ("G_O", "G_O+TV", "G_O+BN", "G_L")

# Table 5 (CIFAR10; 10 seeds; WSRR over 10 initialisations; τ1 = 18 dB, τ2 = 0.1): batch -> (LPIPS, BRR %, WSRR %)
PAPER_TABLE5 = {
    "GIA-O": {5: (0.0338, 67, 95), 10: (0.0653, 34.75, 98.75), 15: (0.0789, 15.42, 83.75), 20: (0.0932, 4.06, 47.5),
              50: (0.1167, 0, 0), 80: (0.1217, 0, 0), 100: (0.1225, 0, 0)},
    "GIA-L": {5: (0.0446, 48.25, 82.5), 10: (0.0706, 25.63, 87.5), 15: (0.0875, 11.67, 63.75),
              20: (0.0973, 5.13, 55), 50: (0.1238, 0.27, 7.5), 80: (0.1295, 0.11, 6.25), 100: (0.1321, 0.10, 8.75)},
}


# -- Theorem 4.3 ----------------------------------------------------------------------------------------------

class _TinyNet(nn.Module):
    """A smooth convolutional classifier with few parameters (p < D for an 8×8 colour image)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(torch.sigmoid(self.conv(x)).mean((2, 3)))


def non_unique_inverse(image: torch.Tensor, label: int = 0, *, seed: int = 0, size: float = 0.15,
                       steps: int = 30) -> dict:
    """Two different inputs with the same gradient (Theorem 4.3), on a tiny network with p < D.

    Take a unit vector v from the null space of the Jacobian J = ∂Φ/∂x at x (it exists because J is p × D with
    p < D), step to x + size·‖x‖·v, then remove the remaining second-order mismatch with Gauss–Newton steps
    Δ ← Δ − J⁺(x+Δ)·(Φ(x+Δ) − Φ(x)), which move only within J's row space and so keep the null-space step.
    Returns both inputs, the parameter count p, D, and the relative distances of inputs and gradients.
    """
    x = nn.functional.interpolate(image[None].double(), size=(8, 8), mode="area")  # 1×3×8×8, D = 192
    torch.manual_seed(seed)
    net = _TinyNet().double()
    params = {k: v.detach() for k, v in net.named_parameters()}
    y = torch.tensor([label])

    def phi(inputs):
        g = grad(lambda p: nn.functional.cross_entropy(functional_call(net, p, (inputs,)), y))(params)
        return torch.cat([t.flatten() for t in g.values()])

    target = phi(x)
    p, d = target.numel(), x.numel()
    jac_at_x = jacrev(phi)(x).reshape(p, d)
    _, _, vh = torch.linalg.svd(jac_at_x)
    direction = vh[-1].reshape(x.shape)  # a right singular vector with singular value 0: the null space
    delta = size * x.norm() * direction / direction.norm()
    for _ in range(steps):
        residual = phi(x + delta) - target
        jac = jacrev(phi)(x + delta).reshape(p, d)
        delta = delta - (torch.linalg.pinv(jac) @ residual).reshape(x.shape)
    other = x + delta
    return dict(x=x[0].float(), x_other=other[0].float(), parameters=p, input_size=d,
                input_distance=float((other - x).norm() / x.norm()),
                gradient_distance=float((phi(other) - target).norm() / target.norm()),
                jacobian_rank=int(torch.linalg.matrix_rank(jac_at_x)))


# -- Fig. 4 and Table 5 experiments ---------------------------------------------------------------------------

def paper_table5() -> pd.DataFrame:
    """The paper's Table 5 as a frame: rows (attack, metric), columns batch sizes."""
    rows = {(attack, metric): {b: values[i] for b, values in by_batch.items()}
            for attack, by_batch in PAPER_TABLE5.items()
            for i, metric in enumerate(("LPIPS", "BRR %", "WSRR %"))}
    return pd.DataFrame(rows).T


def attack_config(settings: DataDimensionSizes, name: str, **changes) -> AttackConfig:
    """One of the four attacks of Fig. 4: ``gia_o`` alone (G_O), with TV or BN at ``prior_weight`` (the paper:
    1e-5), or ``gia_l`` (G_L); ``changes`` replace settings (e.g. BigGAN on Fig. 4a's ImageNet rungs)."""
    if name == "G_L":
        return settings.gia_l.with_(**changes)
    priors = {"G_O": (), "G_O+TV": (("tv", settings.prior_weight),), "G_O+BN": (("bn", settings.prior_weight),)}
    return settings.gia_o.with_(priors=priors[name], **changes)


def _experiment(settings: DataDimensionSizes, device: str, seed: int, attack: str, dataset: str, *,
                generator_options=None, **fields) -> GiaExperiment:
    changes = {} if generator_options is None else {"generator_options": generator_options}
    # G_O+BN attacks a protocol at assumption level 4, in which the client shares its BatchNorm statistics
    return GiaExperiment(dataset=dataset, model=settings.model, model_options=settings.model_options,
                         bn_mode=settings.bn_mode, client_lr=settings.client_lr, device=device, seed=seed,
                         attack=attack_config(settings, attack, **changes),
                         share_bn_statistics=attack == "G_O+BN", **fields)


def resolution_data(settings: DataDimensionSizes, resolution: int) -> tuple[str, dict]:
    """The data set of Fig. 4a at ``resolution`` and any generator override: the section's ``data`` up to
    ``highres_from`` pixels, then ``highres_data`` (ImageNet in the paper) with BigGAN as G_L's generator, as
    the paper does."""
    if settings.highres_data and resolution >= settings.highres_from:
        return settings.highres_data, {"generator_options": (("biggan", "biggan-deep-256"),)}
    return settings.data, {}


def resolution_experiments(settings: DataDimensionSizes, device="cpu", seed=0) -> list[tuple[str, GiaExperiment]]:
    """Fig. 4a: B = 1, every attack at every resolution (and victim)."""
    out = []
    for r in settings.resolutions:
        dataset, generator = resolution_data(settings, r)
        for a in ATTACKS:
            fields = dict(generator) if a == "G_L" else {}
            out += [(a, _experiment(settings, device, seed + s, a, dataset, image_size=r, **fields))
                    for s in range(settings.seeds)]
    return out


def batch_experiments(settings: DataDimensionSizes, device="cpu", seed=0) -> list[tuple[str, GiaExperiment]]:
    """Fig. 4b: ``batch_resolution``² images of ``batch_data`` (CIFAR100 at 32² in the paper), every attack at
    every batch size (and victim batch)."""
    return [(a, _experiment(settings, device, seed + s, a, settings.batch_data, num_samples=b,
                            image_size=settings.batch_resolution))
            for b in settings.batch_sizes for a in ATTACKS for s in range(settings.seeds)]


def table5_experiments(settings: DataDimensionSizes, device="cpu", seed=0) -> list[tuple[str, GiaExperiment]]:
    """Table 5: GIA-O (TV) and GIA-L at each batch size over ``table5_seeds`` victim batches of
    ``batch_resolution``² images, each attacked from ``wsrr_initialisations`` initialisations."""
    # initialisation 0 is the batch's own seed (attack_seed=None): where Fig. 4b ran the same batch, the
    # cache hands that run over instead of recomputing it
    return [(a, _experiment(settings, device, seed + s, a, settings.data, num_samples=b,
                            image_size=settings.batch_resolution,
                            attack_seed=None if i == 0 else 1000 * (seed + s) + i))
            for b in settings.table5_batch_sizes for a in ("G_O+TV", "G_L") for s in range(settings.table5_seeds)
            for i in range(settings.wsrr_initialisations)]


def generator_experiments(settings: DataDimensionSizes, device="cpu", seed=0) -> list[tuple[str, GiaExperiment]]:
    """G_L at Fig. 4b's easiest point (B = 1) with a DCGAN trained from each of ``generator_seeds``; seed 0 is
    the figure's own generator (cached runs)."""
    return [("G_L", with_generator_seed(e, g)) for g in settings.generator_seeds
            for a, e in batch_experiments(settings, device, seed)
            if a == "G_L" and e.num_samples == min(settings.batch_sizes)]


def generator_claim(frame: pd.DataFrame) -> Claim:
    """The generator gate (``claims.generator_gate``) at Fig. 4b's easiest point."""
    return generator_gate(frame, "4.2.1", "G_L", f"B = {frame.batch.min()}")


def run_frame(labelled, *, progress=True, desc="runs", workers: int | None = None) -> tuple[pd.DataFrame, list]:
    """Run (or load) labelled experiments in ``workers`` processes (default: one per CPU core on the CPU); one
    row per run with its per-sample scores."""
    labelled = list(labelled)
    workers = workers or default_workers(labelled[0][1].device)
    results = run_grid([e for _, e in labelled], progress=progress, desc=desc, workers=workers)
    rows = [dict(attack=a, resolution=e.image_size, batch=e.num_samples, seed=e.seed,
                 init=e.seed if e.attack_seed is None else e.attack_seed, psnr=r["psnr"], ssim=r["ssim"],
                 generator_seed=(dict(e.attack.generator_options).get("seed", 0)
                                         if e.attack.method == "gia-l" else None),
                 lpips=r["lpips"], psnr_per_sample=r["psnr_per_sample"], lpips_per_sample=r["lpips_per_sample"],
                 seconds=r["seconds"]) for (a, e), r in zip(labelled, results)]
    return pd.DataFrame(rows), results


def table5(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR/LPIPS, BRR and WSRR per (attack, batch size): BRR over every sample of every run, WSRR per
    batch over its initialisations, then averaged over batches (seeds)."""
    rows = []
    for (attack, batch), runs in frame.groupby(["attack", "batch"]):
        has_lpips = runs.lpips.notna().all()
        brr_values, wsrr_values = [], []
        for _, batch_runs in runs.groupby("seed"):
            psnr = np.array(batch_runs.psnr_per_sample.tolist())
            lpips = np.array(batch_runs.lpips_per_sample.tolist()) if has_lpips else None
            brr_values.append(metrics.brr(psnr, lpips))
            wsrr_values.append(metrics.wsrr(psnr, lpips))
        rows.append(dict(attack="GIA-O" if attack == "G_O+TV" else "GIA-L", batch=batch,
                         psnr=runs.psnr.mean(), lpips=runs.lpips.mean() if has_lpips else None,
                         brr=100 * np.mean([r.value for r in brr_values]),
                         wsrr=100 * np.mean([r.value for r in wsrr_values]), criterion=brr_values[0].criterion))
    return pd.DataFrame(rows)


# Table 5's reading of "BRR ≈ 0": below this share of leaking samples (the paper's rows at LPIPS ≥ 0.1 have
# BRR ≤ 0.27 %, the row just under 0.1 has 4.06 %)
BRR_NEAR_ZERO = 5.0
# "WSRR high": the most vulnerable sample is recovered by at least half of the initialisations
WSRR_HIGH = 50.0


def _paper_table5_implications() -> tuple[str, str]:
    """How often the paper's own Table 5 obeys its two statements (LPIPS ≥ 0.1 ⇒ BRR ≈ 0; LPIPS < 0.1 ⇒
    WSRR ≥ 50 %), with the rows that break them."""
    failing_quality, succeeding = [], []
    for attack, rows in PAPER_TABLE5.items():
        for batch, (lpips, brr, wsrr) in rows.items():
            (failing_quality if lpips >= metrics.TAU_LPIPS else succeeding).append((attack, batch, lpips, brr, wsrr))
    bad_brr = [r for r in failing_quality if r[3] >= BRR_NEAR_ZERO]
    bad_wsrr = [r for r in succeeding if r[4] < WSRR_HIGH]

    def text(rows, broken, what):
        exceptions = "; ".join(f"{a} B={b}: LPIPS {lp}, BRR {br} %, WSRR {ws} %" for a, b, lp, br, ws in broken)
        return f"Table 5: holds in {len(rows) - len(broken)} of {len(rows)} rows {what}" + (
            f" (not in {exceptions})" if broken else "")

    return (text(failing_quality, bad_brr, "with LPIPS ≥ 0.1"), text(succeeding, bad_wsrr, "with LPIPS < 0.1"))


def table5_claims(table: pd.DataFrame) -> list[Claim]:
    """The paper's two statements about Table 5, on our (attack, batch) rows: where mean quality fails, BRR ≈ 0
    (< ``BRR_NEAR_ZERO`` %); where it succeeds, WSRR ≥ ``WSRR_HIGH`` %. Quality is LPIPS against τ2 = 0.1
    when LPIPS is available, else mean PSNR against τ1 = 18 dB (the PSNR-only form, said so). A statement
    that no row can test fails as "not testable"."""
    use_lpips = table.lpips.notna().all()
    fails = (table.lpips >= metrics.TAU_LPIPS) if use_lpips else (table.psnr < metrics.TAU_PSNR)
    quality = "LPIPS ≥ 0.1" if use_lpips else f"mean PSNR < {metrics.TAU_PSNR:g} dB (PSNR-only form: LPIPS n/a)"
    good = "LPIPS < 0.1" if use_lpips else f"mean PSNR ≥ {metrics.TAU_PSNR:g} dB (PSNR-only form: LPIPS n/a)"
    paper_brr, paper_wsrr = _paper_table5_implications()
    claims = []
    for rows, column, ok, statement, quality_text, paper in [
            (table[fails], "brr", lambda v: v < BRR_NEAR_ZERO, f"BRR ≈ 0 (< {BRR_NEAR_ZERO:g} %)", quality, paper_brr),
            (table[~fails], "wsrr", lambda v: v >= WSRR_HIGH, f"WSRR ≥ {WSRR_HIGH:g} %", good, paper_wsrr)]:
        broken = rows[~rows[column].map(ok)]
        listed = "; ".join(f"{r.attack} B={r.batch}: PSNR {r.psnr:.1f}, BRR {r.brr:.0f} %, WSRR {r.wsrr:.0f} %"
                           for r in rows.itertuples())
        if rows.empty:
            evidence = Evidence(False, float("nan"), None, 0, f"not testable: no row with {quality_text}")
        else:
            evidence = Evidence(broken.empty, float(len(rows) - len(broken)), None, len(rows),
                                f"holds in {len(rows) - len(broken)} of {len(rows)} rows: {listed}")
        claims.append(Claim.of("4.2.1", f"Table 5: where {quality_text}, {statement}", evidence, paper))
    return claims


def _paper_gap_trend() -> str:
    gap = {b: PAPER_TABLE5["GIA-O"][b][0] - PAPER_TABLE5["GIA-L"][b][0] for b in PAPER_TABLE5["GIA-O"]}
    evidence = trend(list(gap), list(gap.values()), "increasing", label="ρ(B, LPIPS_O − LPIPS_L)")
    return (f"Fig. 4 (read by eye): GIA-L's LPIPS rises less steeply at large batches. Table 5 does not show it: "
            f"GIA-L's LPIPS is above GIA-O's at every batch size, {evidence.text}")


def insight_claims(fig4a: pd.DataFrame, fig4b: pd.DataFrame, table: pd.DataFrame) -> list[Claim]:
    """Insight 4.2.1 on our numbers with the book's rule (``giasok.claims``): the attack leaks at each ladder's
    easiest point (else the ladder says nothing); G_O+TV quality falls with resolution and with batch size
    (over all victims × grid points); GIA-L's advantage over GIA-O grows with the batch (paired by victim
    batch); and Table 5's two statements hold on our rows."""
    claims = []
    tv4a, tv4b = fig4a[fig4a.attack == "G_O+TV"], fig4b[fig4b.attack == "G_O+TV"]
    for frame, x, where in [(tv4a, "resolution", f"{fig4a.resolution.min()}², B = 1"),
                            (tv4b, "batch", f"B = {fig4b.batch.min()}, {fig4b.resolution.iloc[0]}²")]:
        easiest = frame[frame[x] == frame[x].min()]
        claims.append(Claim.of("4.2.1", f"G_O+TV leaks at the easiest point of Fig. 4{'a' if x == 'resolution' else 'b'} "
                                        f"({where}; mean PSNR ≥ τ1 = {metrics.TAU_PSNR:g} dB)",
                               at_least(easiest.psnr, metrics.TAU_PSNR),
                               "GIA works below ~64² and batches below ~30 (Fig. 4)"))
    for x, frame, label, paper in [
            ("resolution", tv4a, "resolution", "all attacks LPIPS > 0.3 at high resolution (Fig. 4a)"),
            ("batch", tv4b, "batch size", "GIA works below batch ~30, fails beyond (Fig. 4b)")]:
        evidence = trend(frame[x], frame.psnr, "decreasing", label=f"ρ({label}, PSNR)")
        means = frame.groupby(x).psnr.mean()
        claims.append(Claim.of("4.2.1", f"G_O+TV: quality falls with {label}", evidence, paper,
                               ours=f"{evidence.text}; mean PSNR {means.iloc[0]:.1f} → {means.iloc[-1]:.1f} dB"))
    paired = fig4b[fig4b.attack.isin(["G_L", "G_O+TV"])].pivot_table(index=["seed", "batch"], columns="attack",
                                                                     values="psnr").dropna().reset_index()
    gap = paired["G_L"] - paired["G_O+TV"]
    smallest, largest = paired.batch.min(), paired.batch.max()
    evidence = trend(paired.batch, gap, "increasing", label="ρ(B, PSNR_L − PSNR_O)")
    claims.append(Claim.of("4.2.1", "GIA-L degrades more gracefully than GIA-O: its advantage grows with the batch",
                           evidence, _paper_gap_trend(),
                           ours=f"{evidence.text}; GIA-L − GIA-O PSNR {gap[paired.batch == smallest].mean():+.1f} dB "
                                f"at B={smallest} → {gap[paired.batch == largest].mean():+.1f} dB at B={largest}"))
    return claims + table5_claims(table)


def figure(fig4a: pd.DataFrame, fig4b: pd.DataFrame):
    """PSNR against resolution (Fig. 4a) and against batch size (Fig. 4b) for the four attacks."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    sns.lineplot(fig4a, x="resolution", y="psnr", hue="attack", marker="o", errorbar="sd", err_style="bars", ax=axes[0])
    axes[0].set(xscale="log", title="Fig. 4a: resolution (B = 1)", xlabel="resolution (px)", ylabel="PSNR (dB) ↑")
    sns.lineplot(fig4b, x="batch", y="psnr", hue="attack", marker="o", errorbar="sd", err_style="bars", ax=axes[1])
    axes[1].set(xscale="log", title="Fig. 4b: batch size", xlabel="batch size B", ylabel="PSNR (dB) ↑")
    for ax, values in zip(axes, (fig4a.resolution, fig4b.batch)):
        ax.axhline(metrics.TAU_PSNR, color="red", lw=0.8, ls="--")  # τ1: below it a sample does not leak
        ticks = sorted(values.unique())  # the grid's own values, not powers of ten
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    return fig
