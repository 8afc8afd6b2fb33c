"""§5.2 — architecture: how a network is built decides how much its gradient leaks (Fig. 9–10, Tables 3–4,
Insights 5.2.1–5.2.2, Appx B.II).

Every cell attacks the one-step update of an untrained network (W_0) on one image with Geiping's GIA-O (cosine
matching, TV prior), the paper's §5 baseline, on several victims. The studies:

* **Skip connections (Fig. 9).** ResNet-18 and ResNet-34 with the shortcut of residual block #i removed
  (``cut_skips=[i]``; ``giasok.models``), one block at a time, beside the original ("N"). Eq. 11–12: with a skip,
  ∂ℓ/∂I = ∂ℓ/∂O · (∂F/∂I + 1) — the gradient reaching the layers before a block carries a *residual term*
  ∂ℓ/∂O besides the branch's term. ``backprop_paths`` measures both terms per block, and how much gradient
  reaches the first convolution and the input once a skip is cut.
* **Dense connections (Fig. 10).** DenseNet-43/53 (Ju et al.'s baseline) and their connection-reduced variants
  ShortNet1/ShortNet2 (the paper's variants-1/-2), with ``giasok.models.skip_connections`` counting the
  connections that are not the plain sequential ones.
* **Net-in-net (Table 3).** GoogLeNet and Inception-v3 attacked with the full update and with the update of
  one Inception block only (#1 … #``nin_blocks`` in forward order, ``giasok.models.inception_blocks``;
  ``giasok.runs.ModuleGradientExperiment``), with that block's share of the parameters.
* **Micro designs (Table 4).** The standard ConvNet (bias, ReLU, two max-pools, one dropout layer, 3×3 kernels,
  padding 1) and each modification of ``giasok.models.CONVNET_MODIFICATIONS``; the paper's sign (+: the
  modification helps the attack, −: it resists) beside the sign of our PSNR change.
* **Beyond the paper (Valadi et al.).** Post- and pre-activation ResNet-18 with the client in eval and in train
  mode: in train mode a one-image batch is normalised by its own statistics, which the attacker's simulation
  cannot undo as it can frozen ones.

A note on dropout: the paper's GIA code runs the model in eval mode, where dropout is the identity, so "remove
dropout" cannot change the attack there; the client's train mode — fresh masks the attacker does not know — is
what the beyond table measures. The section's sizes are ``giasok.profiles.ArchitectureSizes``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from .claims import Claim, Evidence, at_least, difference, most, trend
from .metrics import TAU_PSNR
from .models import CONVNET_MODIFICATIONS, BasicBlock, build_model, inception_blocks, parameter_share, skip_connections
from .profiles import ArchitectureSizes
from .runs import GiaExperiment, ModuleGradientExperiment, default_workers, run_grid

__all__ = ["PAPER_TABLE3", "PAPER_TABLE4", "PAPER_FINDINGS", "LABELS", "architecture_experiments",
           "run_architecture", "skip_table", "dense_table", "nin_table", "micro_table", "beyond_table",
           "backprop_paths", "residual_gradients", "insight_claims", "figure", "explorer_frame", "setup_table",
           "PAPER_SETUP"]

# Table 3: LPIPS ↓ with the full update and with one Inception block's; the blocks' parameter shares (%)
PAPER_TABLE3 = {
    "googlenet": {"lpips": {"full": 0.2047, 1: 0.0879, 2: 0.0776, 3: 0.0859, 4: 0.0756},
                  "share": {1: 2.72, 2: 11.68, 3: 6.58, 4: 9.25}},
    "inception_v3": {"lpips": {"full": 0.2672, 1: 0.0858, 2: 0.0897, 3: 0.0875, 4: 0.0804},
                     "share": {1: 1.14, 2: 1.56, 3: 1.76, 4: 5.26}},
}
# Table 4: LPIPS ↓ of GIA on the ConvNet and each modification; sign + = helps the attack, − = resists it
PAPER_TABLE4 = {
    "none": (0.0044, "+"), "remove ReLU": (0.0011, "+"), "remove dropout": (0.0043, "+"),
    "remove max-pool": (0.0000, "+"), "kernel 4": (0.0012, "+"), "remove bias": (0.0327, "−"),
    "kernel 2": (0.0299, "−"), "kernel 1": (0.1507, "−"), "padding 2": (0.0071, "−"), "padding 3": (0.0506, "−"),
}
PAPER_FINDINGS = {
    "skip": "cutting any skip connection of ResNet-18/34 worsens the GIA, often to failure (LPIPS > 0.1)",
    "shallow": "cuts near shallow layers (#0, 1, 2, 4, 5) hurt most (the extended version: deep cuts too)",
    "dense": "fewer dense connections → failed GIA: variants-1 largely unrecognisable, variants-2 nothing",
    "nin": "one Inception block's gradient suffices: every block #1–#4 beats the full gradient (Table 3)",
    "micro": "removing ReLU, dropout or max-pool, or a 4×4 kernel, helps the attack; removing bias, smaller "
             "kernels or more padding resist it (Table 4)",
    "beyond": "Valadi et al.: with train-mode BatchNorm, post-activation ResNet-18 gives no meaningful "
              "reconstruction; pre-activation fares better",
}
LABELS = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "densenet43": "DenseNet-43", "densenet53": "DenseNet-53",
          "googlenet": "GoogLeNet", "inception_v3": "Inception-v3", "convnet": "ConvNet",
          "preact_resnet18": "pre-act ResNet-18"}
DENSE_VARIANTS = ("dense", "shortnet1", "shortnet2")  # the paper's baseline, variant-1, variant-2


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _experiment(settings: ArchitectureSizes, model: str, options: tuple, device: str, seed: int, victim: int,
                cls=GiaExperiment, **changes) -> GiaExperiment:
    fields = dict(dataset=settings.data, image_size=settings.image_size, model=model,
                  model_options=tuple(sorted(options)), model_seed=seed, num_samples=1, client_lr=settings.client_lr,
                  bn_mode=settings.bn_mode, attack=settings.gia_o, seed=seed + victim, device=device)
    return cls(**{**fields, **changes})


def _with(options: tuple, **changes) -> tuple:
    return tuple(sorted({**dict(options), **changes}.items()))


def _convnet_options(settings: ArchitectureSizes, modification: str) -> tuple:
    return _with(settings.convnet_options, image_size=settings.image_size, **dict(CONVNET_MODIFICATIONS[modification]))


def architecture_experiments(settings: ArchitectureSizes, device: str = "cpu", seed: int = 0) -> list[dict]:
    """Every cell of the five studies × ``settings.victims`` victims, as rows: ``study``, ``model``, ``variant``
    (a label), ``position`` (the variant's index in its study: 0 = the unmodified network; for skips, cut id + 1),
    ``victim`` and ``experiment``. Victim v attacks data seed ``seed + v`` on the network drawn with ``seed``,
    the same in every cell, so cells compare paired."""
    rows = []

    def add(study, model, variant, position, make):
        rows.extend(dict(study=study, model=_label(model), variant=variant, position=position, victim=v,
                         experiment=make(v)) for v in range(settings.victims))

    for name, options in settings.skip_models:
        blocks = len(build_model(name, 10, seed=seed, **dict(options)).blocks())
        add("skip", name, "N", 0, lambda v, n=name, o=options: _experiment(settings, n, o, device, seed, v))
        for cut in range(blocks):
            add("skip", name, f"#{cut}", cut + 1,
                lambda v, n=name, o=options, c=cut: _experiment(settings, n, _with(o, cut_skips=(c,)), device, seed, v))
    for name, options in settings.dense_models:
        for i, connections in enumerate(DENSE_VARIANTS):
            opts = _with(options, connections=connections, image_size=settings.image_size)
            add("dense", name, connections, i, lambda v, n=name, o=opts: _experiment(settings, n, o, device, seed, v))
    for name, options in settings.nin_models:
        blocks = inception_blocks(build_model(name, 10, seed=seed, **dict(options)))[:settings.nin_blocks]
        add("nin", name, "full", 0, lambda v, n=name, o=options: _experiment(settings, n, o, device, seed, v))
        for i, block in enumerate(blocks, 1):
            add("nin", name, f"#{i} {block.rsplit('.', 1)[-1]}", i,
                lambda v, n=name, o=options, b=block: _experiment(settings, n, o, device, seed, v,
                                                                  cls=ModuleGradientExperiment, observed_module=b))
    for i, modification in enumerate(("none",) + settings.micro_designs):
        opts = _convnet_options(settings, modification)
        try:  # fail here, not in a worker, when a modification does not fit the image
            build_model("convnet", 10, seed=seed, **dict(opts))
        except ValueError as error:
            raise ValueError(f"Table 4's {modification!r} cannot run at image_size={settings.image_size}: {error}; "
                             "drop it from micro_designs or use a larger image_size") from error
        add("micro", "convnet", modification, i, lambda v, o=opts: _experiment(settings, "convnet", o, device, seed, v))
    beyond = list(settings.beyond_models) + [("convnet", _convnet_options(settings, "none"))]
    for name, options in beyond:
        for i, mode in enumerate(("eval", "train")):
            add("beyond", name, f"{mode} mode", i,
                lambda v, n=name, o=options, m=mode: _experiment(settings, n, o, device, seed, v, bn_mode=m))
    return rows


def run_architecture(rows: list[dict], *, progress=True, workers: int | None = None) -> tuple[pd.DataFrame, list]:
    """Run (or load) every experiment in one grid; one row per (study, model, variant, victim) with its scores
    (PSNR capped at 100 dB for a perfect reconstruction), and the raw results in the same order."""
    experiments = [r["experiment"] for r in rows]
    workers = workers or default_workers(experiments[0].device)
    results = run_grid(experiments, progress=progress, desc="§5.2 attacks", workers=workers)
    frame = pd.DataFrame([dict({k: v for k, v in r.items() if k != "experiment"}, psnr=min(res["psnr"], 100.0),
                               ssim=res["ssim"], lpips=res["lpips"], seconds=res["seconds"], hash=res["hash"])
                          for r, res in zip(rows, results)])
    return frame, results


def _cells(frame: pd.DataFrame, study: str) -> pd.DataFrame:
    """Mean ± sd of PSNR (and mean SSIM, LPIPS) per (model, variant) of one study, in the study's order."""
    here = frame[frame.study == study]
    table = here.groupby(["model", "position", "variant"], sort=False).agg(
        psnr=("psnr", "mean"), sd=("psnr", "std"), ssim=("ssim", "mean"), lpips=("lpips", "mean"),
        victims=("psnr", "size")).reset_index()
    return table.sort_values(["model", "position"], kind="stable").reset_index(drop=True)


def skip_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Fig. 9 as numbers: mean PSNR per model (rows) and cut (columns: N, #0, #1, …)."""
    cells = _cells(frame, "skip")
    table = cells.pivot(index="model", columns="position", values="psnr")
    names = cells.drop_duplicates("position").set_index("position").variant
    return table.rename(columns=names.to_dict())


def _connections(rows: pd.DataFrame, settings: ArchitectureSizes) -> list[int]:
    """``skip_connections`` of each row's DenseNet variant (a property of the architecture: weights do not matter)."""
    counts = {(_label(name), c): skip_connections(build_model(name, 10, seed=0, **dict(
        _with(options, connections=c, image_size=settings.image_size))))
        for name, options in settings.dense_models for c in DENSE_VARIANTS}
    return [counts[(m, v)] for m, v in zip(rows.model, rows.variant)]


def dense_table(frame: pd.DataFrame, settings: ArchitectureSizes) -> pd.DataFrame:
    """Fig. 10 as numbers: per DenseNet variant its connection count (``skip_connections``) and scores."""
    cells = _cells(frame, "dense")
    cells.insert(3, "connections", _connections(cells, settings))
    cells["paper's name"] = cells.variant.map({"dense": "baseline", "shortnet1": "variant-1",
                                               "shortnet2": "variant-2"})
    return cells.drop(columns="position")


def nin_table(frame: pd.DataFrame, settings: ArchitectureSizes, seed: int = 0) -> pd.DataFrame:
    """Table 3: per Inception net, the full update and each block's, with our parameter shares and the paper's
    shares and LPIPS."""
    cells = _cells(frame, "nin")
    shares, paper_shares, paper_lpips = [], [], []
    for name, options in settings.nin_models:
        model = build_model(name, 10, seed=seed, **dict(options))
        blocks = inception_blocks(model)[:settings.nin_blocks]
        paper = PAPER_TABLE3.get(name, {"lpips": {}, "share": {}})
        for position in cells[cells.model == _label(name)].position:
            shares.append(100.0 if position == 0 else 100 * parameter_share(model, blocks[position - 1]))
            paper_shares.append(100.0 if position == 0 else paper["share"].get(position, np.nan))
            paper_lpips.append(paper["lpips"].get("full" if position == 0 else position, np.nan))
    cells["share %"] = shares
    cells["paper share %"] = paper_shares
    cells["paper LPIPS"] = paper_lpips
    return cells.drop(columns="position")


def _paired_change(frame: pd.DataFrame, study: str, model: str, baseline: int) -> dict:
    """Per variant of ``model`` in ``study``: its victims' PSNR minus the same victims' at position ``baseline``."""
    here = frame[(frame.study == study) & (frame.model == model)]
    base = here[here.position == baseline].set_index("victim").psnr
    return {variant: rows.set_index("victim").psnr - base
            for (position, variant), rows in here.groupby(["position", "variant"], sort=False) if position != baseline}


def micro_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 4: per modification, mean PSNR, its change against the standard ConvNet on the same victims, our
    sign (+: the attack does better), the paper's LPIPS and sign, and whether the signs agree."""
    cells = _cells(frame, "micro").set_index("variant")
    change = _paired_change(frame, "micro", "ConvNet", 0)
    cells["Δ PSNR"] = [0.0 if v == "none" else change[v].mean() for v in cells.index]
    cells["ours"] = [_sign(d) if v != "none" else "" for v, d in cells["Δ PSNR"].items()]
    cells["paper LPIPS"] = [PAPER_TABLE4[v][0] for v in cells.index]
    cells["paper"] = [PAPER_TABLE4[v][1] if v != "none" else "" for v in cells.index]
    cells["agree"] = [None if v == "none" else cells.loc[v, "ours"] == cells.loc[v, "paper"] for v in cells.index]
    return cells.drop(columns=["model", "position"])


def _sign(change: float) -> str:
    return "+" if change > 0 else "−" if change < 0 else "0"


def beyond_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd PSNR per architecture (rows) in eval and train mode (columns)."""
    cells = _cells(frame, "beyond")
    cells["PSNR"] = [f"{m:.1f} ± {s:.1f}" for m, s in zip(cells.psnr, cells.sd.fillna(0))]
    return cells.pivot(index="model", columns="variant", values="PSNR")


# -- why: the back-propagation paths of Eq. 11–12 -------------------------------------------------------------

def _first_conv(model) -> str:
    return next(name for name, p in model.named_parameters() if p.ndim == 4)


def _gradient_norms(model, images, labels) -> tuple[float, float]:
    """‖∂ℓ/∂W‖ of the first convolution and ‖∂ℓ/∂x‖ of the input, for the loss the client differentiates."""
    x = images.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), labels)
    first = dict(model.named_parameters())[_first_conv(model)]
    g_first, g_x = torch.autograd.grad(loss, [first, x])
    return float(g_first.norm()), float(g_x.norm())


def residual_gradients(model, images, labels) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per residual block of an uncut post-activation ResNet (``giasok.models.BasicBlock``): the skip term, the
    branch term and ∂ℓ/∂I itself (Eq. 12). The block computes O = relu(s) with s = F(I) + S(I) (S = identity or
    the 1×1 projection); with g = ∂ℓ/∂s the gradient reaching I is J_F(I)ᵀ g (the branch term, Eq. 11's only
    term) plus J_S(I)ᵀ g (the residual term the skip adds), and the two add up to ∂ℓ/∂I."""
    inputs, outputs = [], []

    def keep(module, args, output):  # returns None: the block's output is left as it is
        args[0].retain_grad()
        output.retain_grad()
        inputs.append(args[0])
        outputs.append(output)

    blocks = model.blocks()
    hooks = [b.register_forward_hook(keep) for b in blocks]
    try:
        torch.nn.functional.cross_entropy(model(images), labels).backward()
    finally:
        for h in hooks:
            h.remove()
    terms = []
    for block, x, out in zip(blocks, inputs, outputs):
        g = out.grad * (out > 0)  # through the block's final ReLU: ∂ℓ/∂s
        x_ = x.detach().requires_grad_(True)
        branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x_)))))
        (g_branch,) = torch.autograd.grad(branch, x_, g)
        g_skip = g if block.shortcut is None else torch.autograd.grad(block.shortcut(x_), x_, g)[0]
        terms.append((g_skip, g_branch, x.grad))
    model.zero_grad(set_to_none=True)
    return terms


def backprop_paths(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measured on each skip-study victim at W_0, in the experiment's BatchNorm mode: (1) per model and cut, the
    gradient norm reaching the first convolution and the input, relative to the uncut network on the same
    victim (mean over victims); (2) per block of the uncut networks, the residual (skip) term's and the branch
    term's norms in ∂ℓ/∂I and the skip term's share ‖skip‖ / (‖skip‖ + ‖branch‖). Computed here, not cached:
    one forward and backward pass per row."""
    per_cut, per_block = [], []
    for row in (r for r in rows if r["study"] == "skip"):
        images, labels, model, _ = row["experiment"].victim()
        model.train(row["experiment"].bn_mode == "train")
        first, inp = _gradient_norms(model, images, labels)
        per_cut.append(dict(model=row["model"], variant=row["variant"], position=row["position"],
                            victim=row["victim"], first_conv=first, input=inp))
        if row["position"] == 0 and all(isinstance(b, BasicBlock) for b in model.blocks()):
            for block, (g_skip, g_branch, _) in enumerate(residual_gradients(model, images, labels)):
                skip, branch = float(g_skip.norm()), float(g_branch.norm())
                per_block.append(dict(model=row["model"], block=f"#{block}", victim=row["victim"], skip=skip,
                                      branch=branch, share=skip / (skip + branch)))
    cuts = pd.DataFrame(per_cut)
    base = cuts[cuts.position == 0].set_index(["model", "victim"])
    for column in ("first_conv", "input"):
        cuts[f"{column} ratio"] = [value / base.loc[(m, v), column]
                                   for m, v, value in zip(cuts.model, cuts.victim, cuts[column])]
    summary = cuts.groupby(["model", "position", "variant"], sort=False)[["first_conv ratio", "input ratio"]].mean()
    blocks = pd.DataFrame(per_block).groupby(["model", "block"], sort=False)[["skip", "branch", "share"]].mean()
    return summary.reset_index().drop(columns="position"), blocks.reset_index()


# -- claims ----------------------------------------------------------------------------------------------------

def _pooled_drop(frame: pd.DataFrame, model: str) -> Evidence:
    """Uncut − cut PSNR, paired by victim, pooled over every cut of ``model``."""
    changes = _paired_change(frame, "skip", model, 0)
    drops = pd.concat([-c for c in changes.values()])
    worse = sum(c.mean() < 0 for c in changes.values())
    evidence = difference(drops.to_numpy(), np.zeros(len(drops)), paired=True,
                          label=f"{model}: uncut − cut PSNR over every cut", unit=" dB")
    return dataclasses.replace(evidence, text=f"{evidence.text}; {worse} of {len(changes)} cuts lower the mean PSNR")


def insight_claims(frame: pd.DataFrame, settings: ArchitectureSizes) -> list[Claim]:
    """Insights 5.2.1–5.2.2 on our numbers with the book's rule (``giasok.claims``)."""
    claims = []
    skip = frame[frame.study == "skip"]
    first = _label(settings.skip_models[0][0])
    leak = at_least(skip[(skip.model == first) & (skip.position == 0)].psnr, TAU_PSNR)
    claims.append(Claim.of("5.2", f"at the easiest point, the uncut {first}, GIA-O leaks (mean PSNR ≥ τ1 = 18 dB) — "
                                  "without it no cut can be seen to hurt", leak, PAPER_FINDINGS["skip"]))
    for name, _ in settings.skip_models:
        claims.append(Claim.of("5.2", f"cutting a skip connection of {_label(name)} worsens the attack (paired by "
                                      "victim, pooled over every cut)", _pooled_drop(frame, _label(name)),
                               PAPER_FINDINGS["skip"]))
    for name, _ in settings.skip_models:
        cuts = skip[(skip.model == _label(name)) & (skip.position > 0)]
        evidence = trend(cuts.position - 1, cuts.psnr, "increasing", label=f"ρ(cut depth, PSNR), {_label(name)}")
        claims.append(Claim.of("5.2", f"shallow cuts hurt more than deep ones in {_label(name)}: PSNR rises with the "
                                      "depth of the cut", evidence, PAPER_FINDINGS["shallow"]))
    dense = frame[frame.study == "dense"]
    if len(dense):
        evidence = trend(_connections(dense, settings), dense.psnr, "increasing", label="ρ(dense connections, PSNR)")
        claims.append(Claim.of("5.2", "fewer dense connections, worse attack: PSNR rises with the number of skip "
                                      "connections across the DenseNet variants", evidence, PAPER_FINDINGS["dense"]))
    nin = frame[frame.study == "nin"]
    for name, _ in settings.nin_models:
        changes = _paired_change(frame, "nin", _label(name), 0)
        gains = pd.concat(list(changes.values()))
        evidence = difference(gains.to_numpy(), np.zeros(len(gains)), paired=True,
                              label=f"{_label(name)}: one block − full PSNR over blocks #1–#{len(changes)}", unit=" dB")
        block_means = ", ".join(f"{v.split()[0]} {c.mean():+.1f}" for v, c in changes.items())
        here = nin[nin.model == _label(name)]
        full = here[here.position == 0].psnr.mean()
        # a comparison among failures says little: say so where no arm leaks
        silent = "" if here.groupby("position").psnr.mean().max() >= TAU_PSNR else "; no arm leaks (every mean < τ1)"
        claims.append(Claim.of("5.2", f"one Inception block's gradient leaks at least as much as the full gradient of "
                                      f"{_label(name)}: the attack on a single block does better", evidence,
                               PAPER_FINDINGS["nin"],
                               ours=f"{evidence.text}; full {full:.1f} dB, per block Δ {block_means} dB{silent}"))
    table = micro_table(frame)
    victims = frame[(frame.study == "micro") & (frame.position == 0)].victim.nunique()
    agreements = {}
    for modification, row in table.drop(index="none").iterrows():
        agreements[modification] = Evidence(bool(row.agree), float(row["Δ PSNR"]), None, victims,
                                            f"Δ {row['Δ PSNR']:+.1f} dB (ours {row.ours}, paper {row.paper})")
    claims.append(Claim.of("5.2", "each micro-design change moves the attack the way the paper's Table 4 says, for "
                                  "most of them (the sign of the mean paired PSNR change)", most(agreements),
                           PAPER_FINDINGS["micro"]))
    beyond = frame[frame.study == "beyond"].pivot_table(index=["model", "victim"], columns="variant", values="psnr")
    if {"eval mode", "train mode"} <= set(beyond.columns):
        evidence = difference(beyond["eval mode"], beyond["train mode"], paired=True,
                              label="eval − train mode PSNR over the architectures", unit=" dB")
        claims.append(Claim.of("5.2", "beyond the paper: a client in train mode (BatchNorm on its own one-image batch, "
                                      "fresh dropout masks) resists GIA-O better than in eval mode", evidence,
                               PAPER_FINDINGS["beyond"]))
        post, pre = _label("resnet18"), _label("preact_resnet18")
        models = set(beyond.index.get_level_values("model"))
        if {post, pre} <= models:
            a = beyond.loc[pre].stack()
            b = beyond.loc[post].stack()
            evidence = difference(a, b, paired=True, label="pre − post-activation PSNR over victims × both modes",
                                  unit=" dB")
            claims.append(Claim.of("5.2", "beyond the paper: pre-activation ResNet-18 leaks more than post-activation "
                                          "(paired by victim and mode)", evidence, PAPER_FINDINGS["beyond"]))
    return claims


# -- figure, explorer, setup -----------------------------------------------------------------------------------

def figure(frame: pd.DataFrame):
    """Four panels: Fig. 9 as a heat map (mean PSNR per cut), Fig. 10 and Table 3 as bars, Table 4 as the PSNR
    change of each modification coloured by whether its sign agrees with the paper's."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    skips = skip_table(frame)
    ax = axes[0, 0]
    image = ax.imshow(skips.to_numpy(dtype=float), aspect="auto", cmap="viridis")
    ax.set(xticks=range(skips.shape[1]), yticks=range(skips.shape[0]), title="Fig. 9: skip cut → mean PSNR (dB)")
    ax.set_xticklabels(skips.columns, fontsize=7, rotation=90)
    ax.set_yticklabels(skips.index)
    fig.colorbar(image, ax=ax, shrink=0.8)
    for ax, study, title in ((axes[0, 1], "dense", "Fig. 10: DenseNet connections"),
                             (axes[1, 0], "nin", "Table 3: full vs one Inception block")):
        cells = _cells(frame, study)
        labels = [f"{m}\n{v}" for m, v in zip(cells.model, cells.variant)]
        ax.bar(range(len(cells)), cells.psnr, yerr=cells.sd.fillna(0), color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(cells)), labels, fontsize=6, rotation=90)
        ax.axhline(TAU_PSNR, color="tab:red", ls="--", lw=1)
        ax.set(ylabel="PSNR (dB)", title=title)
    ax = axes[1, 1]
    table = micro_table(frame).drop(index="none")
    colours = ["tab:green" if a else "tab:grey" for a in table.agree]
    ax.barh(range(len(table)), table["Δ PSNR"], color=colours)
    ax.set_yticks(range(len(table)), [f"{v} (paper {p})" for v, p in zip(table.index, table.paper)], fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="Δ PSNR vs standard ConvNet (dB); green: sign agrees with the paper", title="Table 4: micro designs")
    return fig


def explorer_frame(frame: pd.DataFrame, results: list) -> tuple[pd.DataFrame, list]:
    """What ``notebook.explorer_panels`` needs, first victim only: a ``view`` per study and model, the variant's
    ``position`` as the slider, and the matching results."""
    first = frame.assign(result=range(len(frame)))
    first = first[first.victim == first.victim.min()]
    first = first.assign(view=[f"{s} · {m}" for s, m in zip(first.study, first.model)])
    return first.reset_index(drop=True), [results[i] for i in first.result]


PAPER_SETUP = {
    "data": "CIFAR10 at 32²", "attack": "Geiping's GIA-O: gradient matching + TV (Appx B.II)",
    "skip": "ResNet-18 (#0–#7), ResNet-34 (#0–#15), one cut at a time", "dense": "DenseNet-43/53, variants-1/-2",
    "nin": "GoogLeNet, Inception-v3: full vs blocks #1–#4", "micro": "ConvNet and 9 modifications (Table 4)",
    "victims": "not stated", "metric": "LPIPS (0.1 = failed reconstruction)",
}


def setup_table(settings: ArchitectureSizes, profile: str) -> pd.DataFrame:
    """The paper's setup beside the section's sizes at ``profile``."""
    def models(pairs):
        return ", ".join(f"{_label(n)}{' (' + ', '.join(f'{k}={v}' for k, v in o) + ')' if o else ''}"
                         for n, o in pairs)

    ours = {
        "data": f"{settings.data} at {settings.image_size}²",
        "attack": f"GIA-O: {settings.gia_o.objective}, priors {dict(settings.gia_o.priors)}, "
                  f"{settings.gia_o.iterations} iterations; client in {settings.bn_mode} mode, η = {settings.client_lr}",
        "skip": models(settings.skip_models), "dense": models(settings.dense_models),
        "nin": f"{models(settings.nin_models)}: full vs blocks #1–#{settings.nin_blocks}",
        "micro": f"ConvNet ({', '.join(f'{k}={v}' for k, v in settings.convnet_options)}): "
                 f"{len(settings.micro_designs)} modifications",
        "victims": f"{settings.victims} per cell (one image each, N = B = 1)", "metric": "PSNR (τ1 = 18 dB = leak)",
    }
    return pd.DataFrame({"paper": pd.Series(PAPER_SETUP), f"ours ({profile})": pd.Series(ours)}).astype(str)
