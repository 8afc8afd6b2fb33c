"""Plumbing shared by the book's notebooks: parameters, claims, the scorecard, and static widgets.

Notebooks stay thin: their first cell calls ``configure`` with the papermill parameters, they compute with
the section modules, check the section's insight with ``giasok.claims.record_claims`` (the claims and the
book's one significance rule live there, apart from any display code) and show reconstructions with
``reconstruction_explorer``. ``build_book`` (``python -m giasok.book build``, what ``make book`` runs)
executes the notebooks with papermill, stages them with ``book/``, the intro's scorecard and the offline
JavaScript, and builds the HTML with Jupyter Book; ``python -m giasok.book run 01`` executes one section.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np

from .claims import scorecard_markdown
from .profiles import Profile, check_device, get_profile

__all__ = ["configure", "mean_spread", "reconstruction_grid", "reconstruction_explorer", "png_bytes", "explorer_panels", "image_row",
           "build_book", "execute"]


def configure(profile: str, device: str, seed: int, *, shown: tuple | None = None, **knobs) -> Profile:
    """Validate a notebook's parameters and return the effective profile; shows it as a small table.

    ``knobs`` are the section's overrides (``None`` = take the profile's value). Any bad value raises a
    ``ValueError`` naming the parameter and what it accepts, so a wrong ``papermill -p`` fails at once.
    ``shown`` lists the profile fields the section uses (default: all) for the configuration table.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_device(device)
    settings = get_profile(profile, **knobs)
    try:
        import pandas as pd
        from IPython.display import display

        rows = [("profile", settings.name), ("device", device), ("seed", seed)]
        rows += [(f.name, getattr(settings, f.name)) for f in dataclasses.fields(settings)
                 if f.name != "name" and (shown is None or f.name in shown)]
        table = pd.DataFrame([(k, str(v), "override" if knobs.get(k) is not None else "") for k, v in rows],
                             columns=["setting", "value", ""]).set_index("setting")
        display(table)
    except ImportError:  # outside IPython: nothing to show
        pass
    return settings


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


# -- building the book: used by the Makefile and the tests -------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]  # the repository (the package is installed in editable mode)


def notebook_paths(selector: str | None = None) -> list[Path]:
    """The section notebooks, or those whose file name starts with ``selector`` (e.g. "01")."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    chosen = [p for p in paths if selector is None or p.name.startswith(selector)]
    if not chosen:
        raise SystemExit(f"no notebook matches {selector!r}; available: {', '.join(p.stem for p in paths)}")
    return chosen


def prepare_executed(path: Path):
    """Hide the parameters and papermill's injected-parameters cells in the rendered book."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1))


def execute(notebook: Path, output: Path, *, profile: str, device: str, parameters: dict | None = None,
            progress: bool = True) -> Path:
    """Execute one notebook with papermill (kernel in the repository root) and prepare it for the book."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    print(f"executing {notebook.name} (profile={profile}, device={device}) -> {output}", flush=True)
    papermill.execute_notebook(str(notebook), str(output), cwd=str(ROOT), progress_bar=progress,
                               parameters=dict(parameters or {}, profile=profile, device=device),
                               kernel_name="python3", request_save_on_cell_execute=True)
    prepare_executed(output)
    return output


def _stage_toc(stage: Path):
    """Keep only the table-of-contents chapters that exist in the staged book (a partial build, e.g. one
    selected notebook), and say which were left out."""
    lines = (stage / "_toc.yml").read_text().splitlines()
    kept = []
    for line in lines:
        entry = line.strip()
        if entry.startswith("- file:"):
            name = entry.split(":", 1)[1].strip()
            if not any((stage / f"{name}{ext}").exists() for ext in (".md", ".ipynb")):
                print(f"note: chapter {name} left out of this build (not executed)", flush=True)
                continue
        kept.append(line)
    (stage / "_toc.yml").write_text("\n".join(kept) + "\n")


def build_book(*, profile: str, device: str, build: Path, selector: str | None = None, progress: bool = True) -> Path:
    """Execute the notebooks into ``build/executed/<profile>``, stage them with ``book/`` and the offline
    JavaScript, and build the HTML book with Jupyter Book (warnings are errors). Returns index.html."""
    import shutil
    import subprocess

    executed = build / "executed" / profile
    for notebook in notebook_paths(selector):
        execute(notebook, executed / notebook.name, profile=profile, device=device, progress=progress)
    stage = build / "book-src"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(ROOT / "book", stage)
    shutil.copytree(executed, stage / "notebooks")
    static = stage / "_offline"  # see html_static_path in book/_config.yml
    modules = ROOT / "node_modules"
    if not (modules / "@jupyter-widgets" / "html-manager").is_dir():
        raise SystemExit("node_modules is missing: run `npm ci` (the Makefile's book target does)")
    shutil.copytree(modules / "@jupyter-widgets" / "html-manager" / "dist", static / "html-manager",
                    ignore=shutil.ignore_patterns("*.map"))
    shutil.copy(modules / "requirejs" / "require.js", static / "require.js")
    shutil.move(stage / "widgets-offline.js", static / "widgets-offline.js")
    shutil.copytree(modules / "mathjax" / "es5", static / "mathjax")
    (stage / "scorecard.md").write_text(f"This copy was built with profile **`{profile}`**.\n\n"
                                        + scorecard_markdown(profile))
    _stage_toc(stage)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(stage), "--path-output", str(build),
               "--warningiserror", "--nitpick", "--keep-going", "--all"]
    print("building the book:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    index = build / "_build" / "html" / "index.html"
    print(f"book ready: {index.resolve()}")
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m giasok.book")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [("build", "execute every notebook and build the HTML book"),
                            ("run", "execute one section's notebook")]:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--profile", default="cpu")
        cmd.add_argument("--device", default="cpu")
        cmd.add_argument("--build", type=Path, default=ROOT / "build")
        cmd.add_argument("selector", nargs="?" if name == "build" else None, help="notebook prefix, e.g. 01")
    prep = sub.add_parser("prepare", help="hide parameter cells of executed notebooks")
    prep.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        build_book(profile=args.profile, device=args.device, build=args.build, selector=args.selector)
    elif args.command == "run":
        for notebook in notebook_paths(args.selector):
            execute(notebook, args.build / "executed" / args.profile / notebook.name,
                    profile=args.profile, device=args.device)
    else:
        for path in args.notebooks:
            prepare_executed(path)


if __name__ == "__main__":
    main()
