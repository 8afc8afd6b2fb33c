"""§4.2.2 — data content: what the attack recovers of an image, and where the generative prior fails (Fig. 5–6,
Insight 4.2.2, Appx B).

* **Semantic details.** The paper shows clocks, text, rulers and scoreboards reconstructed by GIA-O (TV + BN
  priors) and GIA-L: contours, colours and background come back, the time and the digits do not. It judges by
  eye; we measure. ``giasok.canaries`` renders canaries whose content is known — analogue clocks at a known time,
  digit strings, short words — and reads the content back from any image (the time by matching the family of
  rendered clocks, glyphs with a small classifier trained on rendered glyphs). Each reconstruction gets PSNR/SSIM
  (global appearance) and a *detail score* (clock: error in minutes, chance 180; text: share of characters read
  right, chance 1/10 or 1/26), beside the read-back of the ground truth itself. The shipped photographs with
  semantic details (the ``canaries`` data set's clock, text and page) are attacked too, for the eye.
* **Out of distribution.** GIA-L searches the output space of a generator trained on the in-distribution data
  (``data``: the DCGAN on ``patches`` at ``cpu``, on CIFAR10 at ``paper``). Victims drawn from that data's test
  split (ID) are compared with victims from elsewhere (OOD): at ``cpu`` crops of the ``canaries`` textures
  (brick, grass, gravel) and its face; at ``paper`` DTD textures, Places365 scenes, LFW faces and PACS styles
  (``giasok.data``; PACS needs a manual download). GIA-O, which has no generator, is the control.

Every victim is one image (N = B = 1) and its update one step of W_0; the attacker is given the label (a canary's
label is a class of ``data`` drawn with the victim's seed: the network classifies ``data``). The section's sizes
are ``giasok.profiles.DataContentSizes``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import canaries
from .claims import Claim, at_least, below, difference, every, generator_gate
from .data import load_dataset
from .metrics import TAU_PSNR, psnr
from .profiles import DataContentSizes
from .runs import GiaExperiment, default_workers, run_grid, with_generator_seed

__all__ = ["PAPER_FINDINGS", "PAPER_SETUP", "ATTACKS", "ContentExperiment", "detail_experiments", "ood_experiments",
           "generator_experiments", "lowpass_psnr", "LOWPASS", "read_back", "run_content", "detail_table", "ood_table", "insight_claims", "figure",
           "explorer_frame", "setup_table"]

PAPER_FINDINGS = {
    "details": "GIA-O and GIA-L recover colours, background and contours but not the semantic details — the time on a "
               "clock, numbers, text (Fig. 5)",
    "ood": "GIA-L reconstructs OOD images (Places, Textures, ImageNet-21K objects, PACS styles) clearly worse than "
           "ID images with similar labels: LPIPS of ID pairs lower than of OOD pairs (Fig. 6)",
}
ATTACKS = {"GIA-O": "gia_o", "GIA-L": "gia_l"}
LOWPASS = 1 / 16  # the global-appearance blur: σ = image_size / 16 (2 px at 32²), wider than a hand or a stroke
SOURCES = ("photo", "crop", "data")  # where an OOD victim's image comes from (ContentExperiment.content)


def _resize_crop(image: torch.Tensor, shorter: int, size: int, offset: tuple | None) -> torch.Tensor:
    """``image`` (C×H×W) resized so its shorter side is ``shorter``, then a ``size``² crop at ``offset`` (top, left)
    or in the centre."""
    from torchvision.transforms import functional

    image = functional.resize(image, shorter, antialias=True).clamp(0, 1)
    h, w = image.shape[-2:]
    top, left = offset if offset is not None else ((h - size) // 2, (w - size) // 2)
    return image[:, top:top + size, left:left + size]


@dataclass(frozen=True)
class ContentExperiment(GiaExperiment):
    """A ``GiaExperiment`` whose client holds an image chosen for its content: ``content`` is

    * ``""`` — a draw from ``dataset``'s test split, as in ``GiaExperiment`` (in distribution);
    * ``"rendered:<kind>"`` — a ``giasok.canaries`` canary (clock, digits, words) drawn with ``seed``, whose result
      adds the detail read-back of the reconstruction and of the ground truth;
    * ``"photo:<name>"`` — a photograph of the ``canaries`` data set, resized and centre-cropped to ``image_size``;
    * ``"crop:<name>"`` — an ``image_size``² crop, at a position drawn with ``seed``, of that photograph resized so its
      shorter side is 4·``image_size`` (the scale ``patches`` crops its sources at);
    * ``"data:<name>"`` — a draw from another data set's test split (DTD, Places365, LFW, PACS: ``giasok.data``).

    The network and GIA-L's generator stay those of ``dataset``: only the client's image changes. Labels are given.
    """

    content: str = ""

    def __post_init__(self):
        super().__post_init__()
        kind, _, name = self.content.partition(":")
        if self.content and (kind not in ("rendered",) + SOURCES or not name):
            raise ValueError(f"content must be '' or one of rendered:<kind>, photo:<name>, crop:<name>, "
                             f"data:<name>; got {self.content!r}")
        if kind == "rendered" and name not in canaries.KINDS:
            raise ValueError(f"rendered canaries are {canaries.KINDS}, got {name!r}")
        if kind in ("photo", "crop") and name not in load_dataset("canaries").classes:
            raise ValueError(f"photo/crop need a photograph of the canaries data set "
                             f"{load_dataset('canaries').classes}, got {name!r}")
        if self.content and (self.num_samples != 1 or self.labels != "given"):
            raise ValueError("a ContentExperiment with content holds one image (num_samples=1) with given labels")

    def client_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.content:
            return super().client_data()
        kind, _, name = self.content.partition(":")
        label = torch.tensor([self.seed % self.num_classes()])
        if kind == "rendered":
            images, _ = canaries.canaries(name, 1, self.image_size, seed=self.seed)
            return images, label
        if kind == "data":
            other = dataclasses.replace(self, dataset=name, content="")
            return super(ContentExperiment, other).client_data()[0], label
        photos = load_dataset("canaries")
        photo = photos[photos.classes.index(name)][0]
        if kind == "photo":
            return _resize_crop(photo, self.image_size, self.image_size, None)[None], label
        shorter = 4 * self.image_size
        h, w = photo.shape[-2:]
        scaled = (round(h * shorter / min(h, w)), round(w * shorter / min(h, w)))
        draw = torch.Generator().manual_seed(self.seed)
        top = int(torch.randint(0, scaled[0] - self.image_size + 1, (1,), generator=draw))
        left = int(torch.randint(0, scaled[1] - self.image_size + 1, (1,), generator=draw))
        return _resize_crop(photo, shorter, self.image_size, (top, left))[None], label

    def _score(self, images, labels, update, rec, seconds):
        result, arrays = super()._score(images, labels, update, rec, seconds)
        kind, _, name = self.content.partition(":")
        if kind == "rendered":
            _, contents = canaries.canaries(name, 1, self.image_size, seed=self.seed)
            truth, reconstruction = (torch.from_numpy(arrays[k]) for k in ("truth", "reconstruction"))
            result.update(detail=_read(name, reconstruction, contents), detail_truth=_read(name, truth, contents),
                          detail_chance=canaries.CHANCE[name], content=str(contents[0]))
        return result, arrays


def _read(kind: str, images: torch.Tensor, contents: list) -> float:
    """The detail score of one image: the clock's error in minutes, or the share of glyphs read right."""
    if kind == "clock":
        return float(canaries.clock_error(canaries.read_clock(images), contents)[0])
    alphabet = canaries.DIGITS if kind == "digits" else canaries.ALPHABET
    read = canaries.read_text(images, len(contents[0]), alphabet=alphabet)
    return float(canaries.text_accuracy(read, [str(c) for c in contents])[0])


def lowpass_psnr(reconstruction, truth, *, sigma: float) -> np.ndarray:
    """PSNR (dB) per image after a Gaussian blur of ``sigma`` pixels applied to both: how well the *global
    appearance* — colours, background, layout — is recovered, with the fine details (a clock's hands, a glyph's
    strokes: 1–3 px at 32²) filtered out of both sides."""
    from torchvision.transforms.functional import gaussian_blur

    def blur(images):
        images = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        return gaussian_blur(images, kernel_size=2 * int(np.ceil(3 * sigma)) + 1, sigma=sigma)

    return psnr(blur(reconstruction), blur(truth))


def read_back(kind: str, detail, truth) -> np.ndarray:
    """Detail scores on a common scale: 0 = a guess (``canaries.CHANCE``), 1 = what the ground truth reads back
    (negative: worse than a guess)."""
    chance = canaries.CHANCE[kind]
    detail, truth = np.asarray(detail, dtype=float), np.asarray(truth, dtype=float)
    return (chance - detail) / (chance - truth) if kind == "clock" else (detail - chance) / (truth - chance)


def _experiment(settings: DataContentSizes, attack: str, device: str, model_seed: int, **fields) -> ContentExperiment:
    """One victim (``fields``: its ``seed`` and ``content``) attacked with ``attack`` on the network drawn with
    ``model_seed``; the client shares its BatchNorm statistics when the attack has a BN prior."""
    config = getattr(settings, ATTACKS[attack])
    return ContentExperiment(dataset=settings.data, image_size=settings.image_size, model=settings.model,
                             model_options=settings.model_options, model_seed=model_seed, client_lr=settings.client_lr,
                             bn_mode=settings.bn_mode, attack=config, device=device,
                             share_bn_statistics=any(p == "bn" for p, _ in config.priors), **fields)


def detail_experiments(settings: DataContentSizes, device: str = "cpu", seed: int = 0) -> list[dict]:
    """Both attacks on ``canary_victims`` rendered canaries of each kind and on each photograph with semantic
    details; rows with ``study="details"``, ``source``, ``attack``, ``victim`` and ``experiment``."""
    rows = []
    for attack in ATTACKS:
        for kind in settings.canary_kinds:
            rows += [dict(study="details", source=kind, attack=attack, victim=v,
                          experiment=_experiment(settings, attack, device, seed, seed=seed + v,
                                                 content=f"rendered:{kind}"))
                     for v in range(settings.canary_victims)]
        rows += [dict(study="details", source="photographs", attack=attack, victim=v,
                      experiment=_experiment(settings, attack, device, seed, seed=seed, content=f"photo:{name}"))
                 for v, name in enumerate(settings.photo_canaries)]
    return rows


def ood_experiments(settings: DataContentSizes, device: str = "cpu", seed: int = 0) -> list[dict]:
    """Both attacks on ``victims`` ID images (``data``'s test split) and ``victims`` images of each OOD source;
    rows with ``study="ood"``, ``source`` ("ID" or the OOD source), ``attack``, ``victim``, ``experiment``."""
    rows = []
    for attack in ATTACKS:
        for source in ("",) + settings.ood_sources:
            rows += [dict(study="ood", source=source or "ID", attack=attack, victim=v,
                          experiment=_experiment(settings, attack, device, seed, seed=seed + v, content=source))
                     for v in range(settings.victims)]
    return rows


def generator_experiments(settings: DataContentSizes, device: str = "cpu", seed: int = 0) -> list[dict]:
    """GIA-L on the ID victims with each of ``generator_seeds``' DCGANs (the gate before GIA-L's rows are read)."""
    return [dict(study="generators", source="ID", attack="GIA-L", victim=v, generator_seed=g,
                 experiment=with_generator_seed(_experiment(settings, "GIA-L", device, seed, seed=seed + v), g))
            for g in settings.generator_seeds for v in range(settings.victims)]


def run_content(rows: list[dict], *, progress=True, workers: int | None = None) -> tuple[pd.DataFrame, list]:
    """Run (or load) every experiment in one grid; one row per experiment with its scores (and detail scores for
    rendered canaries), and the raw results in the same order."""
    experiments = [r["experiment"] for r in rows]
    workers = workers or default_workers(experiments[0].device)
    results = run_grid(experiments, progress=progress, desc="§4.2.2 attacks", workers=workers)
    lowpass = [float(lowpass_psnr(res["arrays"]["reconstruction"], res["arrays"]["truth"],
                                  sigma=r["experiment"].image_size * LOWPASS)[0]) for r, res in zip(rows, results)]
    frame = pd.DataFrame([dict({k: v for k, v in r.items() if k != "experiment"}, psnr=min(res["psnr"], 100.0),
                               psnr_lowpass=min(low, 100.0),
                               ssim=res["ssim"], lpips=res["lpips"], detail=res.get("detail", np.nan),
                               detail_truth=res.get("detail_truth", np.nan),
                               detail_chance=res.get("detail_chance", np.nan), content=res.get("content", ""),
                               seconds=res["seconds"], hash=res["hash"])
                          for r, res, low in zip(rows, results, lowpass)])
    return frame, results


def detail_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per canary kind and attack: mean PSNR, low-pass PSNR (global appearance, ``lowpass_psnr``), SSIM, and the
    detail score of the reconstructions beside that of the
    ground truth and chance (clock: error in minutes, lower is better; text: accuracy, higher is better)."""
    here = frame[frame.study == "details"]
    table = here.groupby(["source", "attack"], sort=False).agg(
        psnr=("psnr", "mean"), psnr_lowpass=("psnr_lowpass", "mean"), ssim=("ssim", "mean"),
        lpips=("lpips", "mean"), detail=("detail", "mean"),
        detail_truth=("detail_truth", "mean"), chance=("detail_chance", "first"), victims=("psnr", "size"))
    table["detail means"] = ["minutes off (↓)" if s == "clock" else "" if s == "photographs" else "share read (↑)"
                             for s, _ in table.index]
    return table


def ood_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd PSNR per source (rows: ID first) and attack (columns), and GIA-L − GIA-O per source."""
    here = frame[frame.study == "ood"]
    means = here.pivot_table(index="source", columns="attack", values="psnr", aggfunc="mean", sort=False)
    sds = here.pivot_table(index="source", columns="attack", values="psnr", aggfunc="std", sort=False)
    table = means.round(1).astype(str) + " ± " + sds.round(1).astype(str)
    table["GIA-L − GIA-O"] = (means["GIA-L"] - means["GIA-O"]).round(1)
    return table


def _per_victim_gap(here: pd.DataFrame) -> pd.Series:
    """GIA-L − GIA-O PSNR per (source, victim): the generator's advantage on the same image."""
    wide = here.pivot_table(index=["source", "victim"], columns="attack", values="psnr")
    return wide["GIA-L"] - wide["GIA-O"]


def insight_claims(frame: pd.DataFrame, settings: DataContentSizes) -> list[Claim]:
    """Insight 4.2.2 on our numbers with the book's rule (``giasok.claims``)."""
    claims = []
    ood = frame[frame.study == "ood"]
    gia_o_id = ood[(ood.attack == "GIA-O") & (ood.source == "ID")].psnr
    claims.append(Claim.of("4.2.2", "at the easiest point, an in-distribution image, GIA-O leaks (mean PSNR ≥ τ1 = "
                                    "18 dB) — without it lost details could not be told from a failed attack",
                           at_least(gia_o_id, TAU_PSNR), PAPER_FINDINGS["details"]))
    gate = frame[frame.study == "generators"]
    if len(gate):
        gate = gate.astype({"generator_seed": int})  # NaN in the other studies' rows made the column float
        claims.append(generator_gate(gate, "4.2.2", "GIA-L", "an ID image"))
    details = frame[(frame.study == "details") & (frame.source != "photographs")]
    for attack in ATTACKS:
        mine = details[details.attack == attack]
        evidence = at_least(mine.psnr_lowpass, TAU_PSNR, label="mean low-pass PSNR")
        claims.append(Claim.of("4.2.2", f"{attack} recovers the global appearance of the rendered canaries: PSNR ≥ τ1 "
                                        f"once fine detail is blurred away (σ = {LOWPASS * settings.image_size:g} px) "
                                        "on both sides, over every kind", evidence, PAPER_FINDINGS["details"],
                               ours=f"{evidence.text}; unblurred PSNR {mine.psnr.mean():.1f} dB"))
    for kind in settings.canary_kinds:
        mine = details[details.source == kind]
        if kind == "clock":  # minutes off: the reconstruction's error exceeds the truth's
            worse = difference(mine.detail, mine.detail_truth, paired=True,
                               label="clock error, reconstruction − truth", unit=" min", digits=0)
        else:  # glyphs read right: the truth's share exceeds the reconstruction's
            worse = difference(mine.detail_truth, mine.detail, paired=True,
                               label="share read right, truth − reconstruction")
        scaled = read_back(kind, mine.detail, mine.detail_truth)
        near_chance = below(scaled, 0.5, label="mean read-back (0 = chance, 1 = as the truth)", unit="")
        exact = int((mine.detail <= 15).sum() if kind == "clock" else (mine.detail == 1).sum())
        evidence = every({"worse than the truth": worse, "nearer chance than the truth": near_chance})
        claims.append(Claim.of("4.2.2", f"the {kind} canaries' details are lost: read back from the reconstructions "
                                        "(both attacks) they score worse than the ground truth, and nearer chance "
                                        "than the truth on average", evidence, PAPER_FINDINGS["details"],
                               ours=f"{evidence.text}; {exact} of {len(mine)} reconstructions read back "
                                    f"{'within 15 min' if kind == 'clock' else 'whole'}; mean {mine.detail.mean():.2f}, "
                                    f"truth {mine.detail_truth.mean():.2f}, chance {canaries.CHANCE[kind]:.2f}"))
    in_dist = ood[ood.source == "ID"]
    out = ood[ood.source != "ID"]
    evidence = difference(in_dist[in_dist.attack == "GIA-L"].psnr, out[out.attack == "GIA-L"].psnr, paired=False,
                          label="GIA-L: ID − OOD PSNR", unit=" dB")
    claims.append(Claim.of("4.2.2", "GIA-L reconstructs in-distribution images better than out-of-distribution ones",
                           evidence, PAPER_FINDINGS["ood"]))
    control = difference(in_dist[in_dist.attack == "GIA-O"].psnr, out[out.attack == "GIA-O"].psnr, paired=False,
                         label="GIA-O: ID − OOD PSNR", unit=" dB")
    gaps = _per_victim_gap(ood)
    evidence = difference(gaps.loc["ID"], gaps.drop(index="ID", level="source"), paired=False,
                          label="(GIA-L − GIA-O) on ID − on OOD", unit=" dB")
    claims.append(Claim.of("4.2.2", "the gap is the generator's: GIA-L's advantage over GIA-O (same image) is larger "
                                    "in distribution than out of it", evidence, PAPER_FINDINGS["ood"],
                           ours=f"{evidence.text}; control {control.text}"))
    return claims


def figure(frame: pd.DataFrame, results: list):
    """Left: low-pass PSNR against the detail read-back (``read_back``) per rendered canary (per kind, both attacks); right: PSNR per source,
    ID first, for GIA-O and GIA-L."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    details = frame[(frame.study == "details") & (frame.source != "photographs")]
    kinds = list(dict.fromkeys(details.source))
    ax = axes[0]
    markers = {"GIA-O": "o", "GIA-L": "s"}
    for i, kind in enumerate(kinds):
        mine = details[details.source == kind]
        score = read_back(kind, mine.detail, mine.detail_truth)
        for attack, marker in markers.items():
            pick = (mine.attack == attack).to_numpy()
            ax.scatter(mine.psnr_lowpass[pick], score[pick], marker=marker, color=f"C{i}", label=f"{kind} · {attack}")
    ax.axvline(TAU_PSNR, color="tab:red", ls="--", lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="low-pass PSNR (dB): global appearance", ylabel="detail read back (0 = chance, 1 = as the truth)",
           title="canaries: appearance vs detail")
    ax.legend(fontsize=7)
    ood = frame[frame.study == "ood"]
    sources = list(dict.fromkeys(ood.source))
    ax = axes[1]
    for j, (attack, marker) in enumerate(markers.items()):
        means = [ood[(ood.source == s) & (ood.attack == attack)].psnr.mean() for s in sources]
        sds = [ood[(ood.source == s) & (ood.attack == attack)].psnr.std() for s in sources]
        ax.errorbar(np.arange(len(sources)) + 0.15 * (j - 0.5), means, yerr=np.nan_to_num(sds), fmt=marker,
                    label=attack, capsize=3)
    ax.set_xticks(range(len(sources)), sources, rotation=30, fontsize=8)
    ax.axhline(TAU_PSNR, color="tab:red", ls="--", lw=1)
    ax.set(ylabel="PSNR (dB)", title="in distribution (ID) vs out of it")
    ax.legend(fontsize=8)
    return fig


def explorer_frame(frame: pd.DataFrame, results: list) -> tuple[pd.DataFrame, list]:
    """What ``notebook.explorer_panels`` needs: per view (study · source) the victims as the slider, the attack as
    the toggle, and the detail read-back in the caption."""
    shown = frame.assign(result=range(len(frame)))
    shown = shown[shown.study != "generators"]
    shown = shown.assign(view=[f"{s} · {a}" for s, a in zip(shown.source, shown.attack)],
                         read=[_caption(r) for _, r in shown.iterrows()])
    return shown.reset_index(drop=True), [results[i] for i in shown.result]


def _caption(row) -> str:
    if pd.isna(row.detail):
        return ""
    if row.source == "clock":
        return f"truth {int(row.content) // 60 or 12}:{int(row.content) % 60:02d}; read {row.detail:.0f} min off"
    return f"truth {row.content}; {row.detail:.0%} of glyphs read right"


PAPER_SETUP = {
    "data": "ImageNet-1K (details: BigGAN generator); OOD: Places, DTD, ImageNet-21K objects, PACS",
    "attacks": "GIA-O with TV + BN priors; GIA-L with a pre-trained BigGAN",
    "canaries": "photographs with clocks, text, numbers, rulers, scoreboards — judged by eye",
    "victims": "one image each (figures of examples)", "metric": "LPIPS (0.1 = failed reconstruction)",
}


def setup_table(settings: DataContentSizes, profile: str) -> pd.DataFrame:
    """The paper's setup beside the section's sizes at ``profile``."""
    options = ", ".join(f"{k}={v}" for k, v in settings.model_options)
    ours = {
        "data": f"{settings.data} at {settings.image_size}² on {settings.model} ({options}); OOD: "
                f"{', '.join(settings.ood_sources)}",
        "attacks": f"GIA-O with priors {dict(settings.gia_o.priors)}, {settings.gia_o.iterations} iterations; GIA-L "
                   f"with a DCGAN trained on {settings.data}",
        "canaries": f"rendered {', '.join(settings.canary_kinds)} (read back by giasok.canaries) and the photographs "
                    f"{', '.join(settings.photo_canaries)}",
        "victims": f"{settings.canary_victims} per canary kind, {settings.victims} per ID/OOD source (N = B = 1)",
        "metric": "PSNR (τ1 = 18 dB = leak) and the detail read-back",
    }
    return pd.DataFrame({"paper": pd.Series(PAPER_SETUP), f"ours ({profile})": pd.Series(ours)}).astype(str)
