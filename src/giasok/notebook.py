"""Notebook display: the parameters table, tables of mean ± sd, reconstruction grids and static widgets.

Notebooks stay thin: their first cell calls ``configure`` with the papermill parameters, they compute with
the section modules, check the section's insight with ``giasok.claims`` and show results with the functions
here. The widgets (``reconstruction_explorer``) are linked on the client side, so they work in the static
book without a kernel. Nothing in the library imports this module (the import contracts in pyproject.toml
say so); building the book is ``giasok.book``'s job.
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np

from . import provenance
from .attacks import AttackConfig
from .profiles import check_device, get_profile, override_names, section_settings

__all__ = ["configure", "section_overrides", "show_provenance", "mean_spread", "reconstruction_grid", "reconstruction_explorer", "png_bytes",
           "explorer_panels", "image_row"]


def configure(profile: str, device: str, seed: int, section: str | None = None, **knobs):
    """Validate a notebook's parameters; return ``section``'s sizes at ``profile`` with ``knobs`` applied, and
    show them as a small table (a chapter without sizes, ``section=None``, gets ``None`` and the table of
    profile, device and seed).

    ``knobs`` are the section's overrides (``None`` = take the profile's value): its fields by name, and its
    attacks' settings as ``<attack>_<setting>`` (``gia_o_iterations``). Any bad value raises a ``ValueError``
    naming the parameter and what it accepts, so a wrong ``papermill -p`` fails at once.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_device(device)
    chosen = get_profile(profile, section, **knobs)
    provenance.start_chapter(device)  # the chapter's clock and its tally of computed and cached results
    settings = None if section is None else section_settings(chosen, section)
    try:
        import pandas as pd
        from IPython.display import display
    except ImportError:  # outside IPython: nothing to show
        return settings
    # readable tables in the notebook and the book: whole sentences (the paper's statements are never cut
    # with "…"), numbers to three significant decimals
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.precision", 3)
    given = {k for k, v in knobs.items() if v is not None}
    rows = [("profile", profile, ""), ("device", device, ""), ("seed", seed, "")]
    for f in dataclasses.fields(settings) if settings is not None else ():
        value = getattr(settings, f.name)
        overridden = f.name in given or any(k.startswith(f.name + "_") for k in given)
        rows.append((f.name, _describe(value), "override" if overridden else ""))
    display(pd.DataFrame(rows, columns=["setting", "value", ""]).astype(str).set_index("setting"))
    return settings


def section_overrides(namespace: dict, section: str) -> dict:
    """The papermill parameters in ``namespace`` (a notebook's ``globals()``) that set ``section``'s sizes: every
    name ``get_profile`` accepts for it (its fields, ``<attack>_<setting>``) that is defined and not ``None``.
    So a chapter takes any of its settings from the command line (``-p batch_sizes '[1,2]'``,
    ``-p gia_l_generator_lr 1e-3``), not only those its parameters cell lists."""
    return {name: namespace[name] for name in override_names(section) if namespace.get(name) is not None}


def show_provenance(profile: str):
    """The chapter's provenance (``giasok.provenance``) as a small table: the last output of every chapter."""
    from IPython.display import HTML

    return HTML(provenance.html_block(provenance.collect(), profile))


def _describe(value) -> str:
    """A profile value as a reader wants it: an attack as its non-default settings, the rest as text."""
    if isinstance(value, AttackConfig):
        default = AttackConfig()
        return ", ".join(f"{f.name}={getattr(value, f.name)}" for f in dataclasses.fields(value)
                         if f.name == "method" or getattr(value, f.name) != getattr(default, f.name))
    return str(value)


def mean_spread(frame, *, index, columns, value: str = "psnr", digits: int = 1):
    """A table of "mean ± sd (n)" of ``value`` over the victims of each cell (index × columns): the spread
    the claims are tested on, not only the means."""
    import pandas as pd

    grouped = frame.groupby(list(np.atleast_1d(index)) + list(np.atleast_1d(columns)), sort=False)[value]
    cells = grouped.agg(["mean", "std", "count"])
    text = cells.apply(lambda r: f"{r['mean']:.{digits}f}" + ("" if pd.isna(r["std"]) else f" ± {r['std']:.{digits}f}")
                       + f" ({int(r['count'])})", axis=1)
    rows = len(np.atleast_1d(index))
    return text.unstack(list(range(rows, len(cells.index.names))))


def _tile(batch: np.ndarray) -> np.ndarray:
    """N×C×H×W → H×(N·W)×C, the batch side by side."""
    return np.concatenate(list(np.asarray(batch).transpose(0, 2, 3, 1)), axis=1).clip(0, 1)


def reconstruction_grid(table, results, *, x: str, row: str, seed: int | None = None):
    """Ground truth and reconstructions: one row per value of ``row``, one column per value of ``x``."""
    import matplotlib.pyplot as plt

    seed = table.seed.min() if seed is None else seed
    rows = list(dict.fromkeys(table[row]))
    cols = sorted(table[x].unique())
    fig, axes = plt.subplots(len(rows), len(cols) + 1, figsize=(1.6 * (len(cols) + 1), 1.8 * len(rows)),
                             squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for (_, r), result in zip(table.iterrows(), results):
        if r.seed != seed:
            continue
        i, j = rows.index(r[row]), cols.index(r[x]) + 1
        if not axes[i, 0].images:
            axes[i, 0].imshow(_tile(result["arrays"]["truth"]))
            axes[i, 0].set_title(f"{r[row]}\nground truth", fontsize=8)
        axes[i, j].imshow(_tile(result["arrays"]["reconstruction"]))
        axes[i, j].set_title(f"{x}={r[x]}\n{r.psnr:.1f} dB", fontsize=8)
    return fig


def png_bytes(image: np.ndarray, *, scale: int = 4) -> bytes:
    """A C×H×W image in [0, 1] as PNG bytes, enlarged ``scale``× with nearest-neighbour pixels."""
    from PIL import Image

    hwc = np.clip(np.round(np.asarray(image).transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
    pil = Image.fromarray(hwc)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="png")
    return buffer.getvalue()


def explorer_panels(table, results: list, *, x: str, toggle: str | None = None, extra: dict | None = None,
                    **where) -> dict:
    """Panels for ``reconstruction_explorer`` from a tidy frame of runs (one row per run, with ``psnr``,
    ``ssim``, ``lpips`` and ``seed``) and the matching ``run_grid`` results: key -> (truth, reconstruction,
    caption), for rows matching ``where`` (e.g. ``dataset=…, seed=…``). ``extra`` adds other columns of the
    row to the caption, before PSNR: column -> format, e.g. ``{"accuracy": "test accuracy {:.2f}"}``.
    Where a toggle value has no run at
    some slider position (e.g. WST at one mini-batch, where it is the BST attack), the run of another toggle
    value at that position is shown, captioned with its own label."""
    import pandas as pd

    panels = {}
    for (_, row), result in zip(table.iterrows(), results):
        if any(row[k] != v for k, v in where.items()):
            continue
        lpips = "n/a" if pd.isna(row.lpips) else f"{row.lpips:.3f}"
        shown = "".join(f" · {fmt.format(row[column])}" for column, fmt in (extra or {}).items())
        caption = (f"{x} = {row[x]}{' · ' + str(row[toggle]) if toggle else ''}{shown} · PSNR {row.psnr:.1f} dB · "
                   f"SSIM {row.ssim:.2f} · LPIPS {lpips}")
        key = (row[toggle], row[x]) if toggle else row[x]
        panels[key] = (list(result["arrays"]["truth"]), list(result["arrays"]["reconstruction"]), caption)
    if toggle:
        for t in {k[0] for k in panels}:
            for step in {k[1] for k in panels}:
                if (t, step) not in panels:
                    panels[(t, step)] = next(v for k, v in panels.items() if k[1] == step)
    return panels


def image_row(images: list, titles: list):
    """A row of C×H×W images with titles (values outside [0, 1] are clipped for display)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.4), constrained_layout=True)
    for ax, image, title in zip(np.atleast_1d(axes), images, titles):
        ax.imshow(np.asarray(image).transpose(1, 2, 0).clip(0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig


def _panel(truth: list, reconstruction: list, caption: str):
    import ipywidgets as widgets

    def row(images, label):
        return widgets.HBox([widgets.HTML(f"<small>{label}</small>", layout=widgets.Layout(width="110px"))]
                            + [widgets.Image(value=png_bytes(img), format="png") for img in images])

    return widgets.VBox([row(truth, "ground truth"), row(reconstruction, "reconstruction"), widgets.HTML(caption)])


def reconstruction_explorer(panels: dict, *, slider_label: str, toggle_label: str | None = None):
    """A widget that shows precomputed reconstructions and needs no kernel.

    ``panels`` maps ``slider value -> (truth images, reconstructed images, caption)`` or, with a toggle,
    ``(toggle value, slider value) -> …``. The slider (and toggle) are linked to ``Stack`` indices with
    ``jslink``, so moving them in the static book switches panels in the browser.
    """
    import ipywidgets as widgets

    keys = list(panels)
    toggles = list(dict.fromkeys(k[0] for k in keys)) if toggle_label else [None]
    steps = sorted({k[1] if toggle_label else k for k in keys})  # numeric slider positions
    slider = widgets.SelectionSlider(options=[str(s) for s in steps], description=slider_label,
                                     continuous_update=True, layout=widgets.Layout(width="420px"))
    stacks = []
    for t in toggles:
        children = [_panel(*panels.get((t, s) if toggle_label else s, ([], [], "not computed"))) for s in steps]
        stack = widgets.Stack(children, selected_index=0)
        widgets.jslink((slider, "index"), (stack, "selected_index"))
        stacks.append(stack)
    controls, view = [slider], stacks[0]
    if toggle_label:
        toggle = widgets.ToggleButtons(options=[str(t) for t in toggles], description=toggle_label)
        view = widgets.Stack(stacks, selected_index=0)
        widgets.jslink((toggle, "index"), (view, "selected_index"))
        controls.append(toggle)
    return widgets.VBox([widgets.HBox(controls), view])
