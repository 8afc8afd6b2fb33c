"""Claims: the book's one significance rule, the claim record, and the scorecard.

Each chapter ends by checking its section's insight on the numbers it has just computed. A check is a
``Claim``: a sentence, PASS or FAIL, our evidence and the paper's. Every chapter decides with the same rule,
written once here and printed in the book (``RULE``):

* **Trends** ("quality falls as U grows"): Spearman's ρ between the grid variable and the score over *every*
  victim × grid point (not over cell means, which would throw the victims' spread away), with a one-sided
  permutation p-value: the null "no trend" is that any pairing of the two columns is as likely as the
  observed one. ``scipy.stats.permutation_test`` enumerates all pairings when there are at most
  ``RESAMPLES`` of them (exact; up to 7 points) and otherwise draws ``RESAMPLES`` seeded random ones, so the
  same numbers always give the same p. The claim holds when ρ has the stated sign and p < ``ALPHA``.
  With 3 points the smallest possible exact p is 1/3! ≈ 0.17: three grid points with one victim each can
  never pass — hence several victims per cell.
* **Trends with a confounder removed** (§5.1: IGSA and PSNR both drift with the round): the partial
  Spearman correlation — the ranks of both variables are regressed on the ranks of the control and the
  residuals correlated — with the same permutation p-value over the residuals.
* **Comparisons** ("WST beats BST"): the difference of means with a one-sided permutation p-value; paired
  (sign flips within pairs) when the two samples are the same victims under two conditions, otherwise
  independent (relabelling).
* **Thresholds** ("at the easiest point the attack leaks"): the mean over the cell's victims against the
  paper's threshold (τ1 = 18 dB PSNR). A threshold is the paper's definition of a leak, not a statistical
  statement, so it takes no test.

Claims record their statistic and p-value, so the scorecard shows why each passed or failed. A claim with
too little data to test (a constant column, fewer than three points) fails and says so.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from . import paths, provenance
from ._io import atomic_write
from .metrics import TAU_PSNR

__all__ = ["ALPHA", "RESAMPLES", "RULE", "Claim", "Evidence", "trend", "partial_trend", "difference", "at_least", "below", "every", "most",
           "generator_gate",
           "record_claims", "load_claims", "scorecard_markdown", "reading", "claims_dir"]

ALPHA = 0.05
RESAMPLES = 9999
_SEED = 0  # the permutation draws: fixed, so a p-value is a function of the numbers alone

RULE = (f"A trend holds when Spearman's ρ over all victims × grid points has the stated sign and a one-sided "
        f"permutation test rejects \"no trend\" at α = {ALPHA} (exact up to 7 points, else {RESAMPLES} seeded "
        "permutations); a comparison holds when the one-sided permutation test of the difference of means "
        f"rejects \"no difference\" at α = {ALPHA}; a leak means a mean PSNR over the victims of at least "
        f"τ1 = {TAU_PSNR:g} dB.")


@dataclass(frozen=True)
class Evidence:
    """The outcome of one test: the statistic, its one-sided p-value (None for a threshold), the number of
    points, whether it holds, and a one-line account."""

    holds: bool
    statistic: float
    p_value: float | None
    n: int
    text: str


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a section's insight, decided on the numbers a notebook just computed."""

    section: str
    claim: str
    passed: bool
    ours: str
    paper: str
    statistic: float | None = None
    p_value: float | None = None

    @classmethod
    def of(cls, section: str, claim: str, evidence: Evidence, paper: str, ours: str | None = None) -> "Claim":
        """A claim decided by ``evidence``; ``ours`` (default: the evidence's text) is what the table shows."""
        return cls(section, claim, bool(evidence.holds), ours or evidence.text, paper,
                   _finite_or_none(evidence.statistic), evidence.p_value)


def _finite_or_none(value):
    return float(value) if value is not None and np.isfinite(value) else None


def _direction(direction: str) -> str:
    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be 'increasing' or 'decreasing', got {direction!r}")
    return "greater" if direction == "increasing" else "less"


def _pearson(a, b, axis=-1):
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    return (a * b).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))


def _columns(*columns):
    arrays = [np.asarray(c, dtype=float).ravel() for c in columns]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"columns differ in length: {[len(a) for a in arrays]}")
    keep = np.all([np.isfinite(a) for a in arrays], axis=0)
    return [a[keep] for a in arrays]


def _untestable(n: int, why: str) -> Evidence:
    return Evidence(False, float("nan"), None, n, f"not testable: {why} (n = {n})")


def _correlation_test(a, b, alternative: str, label: str) -> Evidence:
    """Pearson correlation of ``a`` and ``b`` (ranks or rank residuals), one-sided permutation p-value."""
    n = len(a)
    if n < 3:
        return _untestable(n, "fewer than 3 points")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return _untestable(n, "one side does not vary")
    # permute one column only: scipy would otherwise permute both and count n!² pairings, n! times too many
    result = stats.permutation_test((b,), lambda b_, axis=-1: _pearson(a, b_, axis=axis), permutation_type="pairings",
                                    vectorized=True, alternative=alternative, n_resamples=RESAMPLES,
                                    random_state=_SEED)
    rho, p = float(result.statistic), float(result.pvalue)
    holds = (rho > 0 if alternative == "greater" else rho < 0) and p < ALPHA
    return Evidence(bool(holds), rho, p, n, f"{label} = {rho:+.2f}, one-sided p = {_p(p)} (n = {n})")


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def trend(x, y, direction: str, *, label: str = "ρ") -> Evidence:
    """Does ``y`` rise (``direction="increasing"``) or fall with ``x``? Spearman ρ over all points with a
    one-sided permutation p-value (the book's rule; see the module docstring). Non-finite pairs are dropped."""
    alternative = _direction(direction)
    x, y = _columns(x, y)
    return _correlation_test(stats.rankdata(x), stats.rankdata(y), alternative, label)


def partial_trend(x, y, control, direction: str, *, label: str = "partial ρ") -> Evidence:
    """Does ``y`` rise or fall with ``x`` once both are freed of their common dependence on ``control``?

    Partial Spearman correlation: the ranks of ``x`` and ``y`` are each regressed (least squares, with an
    intercept) on the ranks of ``control``; the residuals are correlated and the p-value is the one-sided
    permutation test over the residuals' pairings.
    """
    alternative = _direction(direction)
    x, y, control = _columns(x, y, control)
    if len(x) < 4:
        return _untestable(len(x), "fewer than 4 points")
    design = np.column_stack([np.ones(len(control)), stats.rankdata(control)])

    def residual(values):
        ranks = stats.rankdata(values)
        coefficients, *_ = np.linalg.lstsq(design, ranks, rcond=None)
        return ranks - design @ coefficients

    rx, ry = residual(x), residual(y)
    # residuals that are zero up to rounding mean the control explains the variable completely
    if np.abs(rx).max() < 1e-9 or np.abs(ry).max() < 1e-9:
        return _untestable(len(x), "the control explains one side entirely")
    return _correlation_test(rx, ry, alternative, label)


def difference(a, b, *, paired: bool, label: str = "mean difference", unit: str = "", digits: int = 2) -> Evidence:
    """Is the mean of ``a`` larger than the mean of ``b``? One-sided permutation test of mean(a) − mean(b):
    sign flips of the pair differences when ``paired`` (same victims, two conditions), else relabelling of
    the pooled values."""
    if paired:
        a, b = _columns(a, b)
        n = len(a)
        if n < 2:
            return _untestable(n, "fewer than 2 pairs")
        diff = a - b
        if np.ptp(diff) == 0 and diff[0] == 0:
            return _untestable(n, "no pair differs")
        result = stats.permutation_test((diff,), lambda d, axis=-1: d.mean(axis=axis), permutation_type="samples",
                                        vectorized=True, alternative="greater", n_resamples=RESAMPLES,
                                        random_state=_SEED)
    else:
        (a,), (b,) = _columns(a), _columns(b)
        n = len(a) + len(b)
        if len(a) < 2 or len(b) < 2:  # scipy's permutation test needs two values on each side
            return _untestable(n, "fewer than 2 values on a side")
        result = stats.permutation_test((a, b), lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis),
                                        permutation_type="independent", vectorized=True, alternative="greater",
                                        n_resamples=RESAMPLES, random_state=_SEED)
    delta, p = float(result.statistic), float(result.pvalue)
    kind = "paired" if paired else "unpaired"
    return Evidence(bool(delta > 0 and p < ALPHA), delta, p, n,
                    f"{label} = {delta:+.{digits}f}{unit}, one-sided {kind} p = {_p(p)} (n = {n})")


def at_least(values, threshold: float, *, label: str = "mean PSNR", unit: str = " dB") -> Evidence:
    """Is the mean of ``values`` at least ``threshold`` (e.g. τ1: the attack leaks)? No test: the threshold
    is the paper's definition."""
    (values,) = _columns(values)
    if len(values) == 0:
        return _untestable(0, "no values")
    mean = float(values.mean())
    spread = f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else ""
    return Evidence(bool(mean >= threshold), mean, None, len(values),
                    f"{label} {mean:.1f}{spread}{unit} over {len(values)} victims (threshold {threshold:g}{unit})")


def below(values, threshold: float, *, label: str = "mean PSNR", unit: str = " dB") -> Evidence:
    """Is the mean of ``values`` below ``threshold`` (e.g. τ1: a defence stops the attack)? The converse of
    ``at_least``, and like it no test: the threshold is the paper's definition."""
    evidence = at_least(values, threshold, label=label, unit=unit)
    if not np.isfinite(evidence.statistic):
        return evidence
    return dataclasses.replace(evidence, holds=not evidence.holds)


def most(evidences: dict) -> Evidence:
    """Holds when more than half of the labelled pieces of evidence hold (the paper's "most defences …");
    the statistic is how many hold, the text lists each."""
    if not evidences:
        return _untestable(0, "nothing to test")
    held = sum(e.holds for e in evidences.values())
    return Evidence(held > len(evidences) / 2, float(held), None, sum(e.n for e in evidences.values()),
                    f"{held} of {len(evidences)} hold — " + "; ".join(f"{label}: {'holds' if e.holds else 'fails'}, "
                                                                     f"{e.text}" for label, e in evidences.items()))


def every(evidences: dict) -> Evidence:
    """Holds when every labelled piece of evidence holds (e.g. the attack leaks with each of several
    generators); the statistic is the smallest, the text lists each."""
    if not evidences:
        return _untestable(0, "nothing to test")
    values = [e.statistic for e in evidences.values() if np.isfinite(e.statistic)]
    return Evidence(all(e.holds for e in evidences.values()), min(values) if values else float("nan"), None,
                    sum(e.n for e in evidences.values()),
                    "; ".join(f"{label}: {e.text}" for label, e in evidences.items()))


def generator_gate(frame, section: str, attack: str, point: str, *, threshold: float = TAU_PSNR) -> Claim:
    """GIA-L's prior is one training run of a GAN, so its rows mean something only if the attack leaks at the
    easiest ``point`` with each of several independently trained generators: ``frame`` holds one row per
    victim with ``generator_seed`` and ``psnr``. The claim reports the spread of the generators' means."""
    evidence = every({f"seed {g}": at_least(rows.psnr, threshold) for g, rows in frame.groupby("generator_seed")})
    means = frame.groupby("generator_seed").psnr.mean()
    return Claim.of(section, f"{attack} leaks at {point} with each of {len(means)} independently trained generators "
                             "(the gate before its rows are read)", evidence,
                    "the paper uses one pre-trained DCGAN and does not report its variability",
                    ours=f"spread of the generators' means {means.max() - means.min():.1f} dB; {evidence.text}")


# -- recording and the scorecard ---------------------------------------------------------------------------

def claims_dir() -> Path:
    """Where sections record their claims: ``$GIASOK_RESULTS/claims`` (default ``results/claims``)."""
    return paths.results_dir() / "claims"


def record_claims(section: str, profile: str, claims: list[Claim], *, overrides: dict | None = None,
                  root: str | os.PathLike | None = None):
    """Store a section's claims (with the parameters that overrode the profile and the provenance of the numbers,
    ``giasok.provenance.collect``) for the scorecard, glue them into the book, and return them as a styled
    table."""
    import pandas as pd

    folder = Path(root) if root else claims_dir()
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    payload = {"section": section, "profile": profile, "overrides": {k: repr(v) for k, v in overrides.items()},
               "rule": RULE, "claims": [dataclasses.asdict(c) for c in claims], "provenance": provenance.collect()}
    atomic_write(folder / profile / f"{section}.json", lambda f: f.write(json.dumps(payload, indent=1).encode()))
    table = pd.DataFrame([dataclasses.asdict(c) for c in claims])
    table["result"] = np.where(table["passed"], "PASS", "FAIL")
    table = table[["claim", "result", "ours", "paper"]]
    styled = (table.style.hide(axis="index")
              .map(lambda v: f"color: {'#1a7f37' if v == 'PASS' else '#cf222e'}; font-weight: bold",
                   subset=["result"]))
    try:
        from myst_nb import glue

        glue(f"claims-{section}", styled, display=False)
        glue(f"claims-{section}-passed", f"{int(sum(c.passed for c in claims))}/{len(claims)}", display=False)
    except ImportError:
        pass
    return styled


def load_claims(profile: str, *, root: str | os.PathLike | None = None) -> list[dict]:
    """Every recorded section at ``profile``: dicts with section, overrides, rule and claims."""
    folder = (Path(root) if root else claims_dir()) / profile
    records = []
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = json.loads(file.read_text())
        if isinstance(data, list):  # an older record: claims only
            data = {"section": file.stem, "overrides": {}, "claims": data}
        records.append(data)
    return records


def scorecard_markdown(profile: str, *, root: str | os.PathLike | None = None) -> str:
    """A Markdown table of every section's claims recorded at ``profile``, with the rule and any overrides."""
    records = load_claims(profile, root=root)
    if not records:
        return f"*No claims recorded at profile `{profile}` yet: run `make book PROFILE={profile}`.*\n"
    lines = [f"Decision rule: {RULE}", ""]
    changed = [f"§{r['section']}: " + ", ".join(f"`{k}={v}`" for k, v in r["overrides"].items())
               for r in records if r.get("overrides")]
    lines += ["Parameters overridden on the command line: " + ("; ".join(changed) if changed else "none") + ".", ""]
    lines += ["Where each section's numbers came from:", ""]
    lines += [f"- §{r['section']}: " + (provenance.summary(r["provenance"]) if r.get("provenance")
                                         else "not recorded (a record from before provenance was kept)")
              for r in records]
    lines += [""]
    lines += ["| section | claim | result | ours | paper |", "|---|---|---|---|---|"]
    for record in records:
        for c in record["claims"]:
            cells = [c["section"], c["claim"], "PASS" if c["passed"] else "**FAIL**", c["ours"], c["paper"]]
            lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def reading(claims: list[Claim], profile: str) -> str:
    """A short reading of a section's outcome, written from the claims (so it cannot disagree with them)."""
    passed = [c for c in claims if c.passed]
    text = (f"At profile `{profile}`, **{len(passed)} of {len(claims)}** checks of this section's insight pass "
            f"on the numbers computed above. {RULE}")
    failed = [c for c in claims if not c.passed]
    if failed:
        text += "\n\nThese do not hold in our runs, and we leave them standing rather than tune them away:\n\n"
        text += "\n".join(f"- {c.claim} — ours: {c.ours}; paper: {c.paper}" for c in failed)
    if profile != "paper":
        text += ("\n\nThese are small runs (see the configuration table at the top): they test the direction "
                 "of the paper's findings, not its exact values. `profile=paper` re-runs the paper's sizes.")
    return text
