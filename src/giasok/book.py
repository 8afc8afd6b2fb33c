"""Building the book: execute the section notebooks with papermill and render them with Jupyter Book.

``build_book`` (``python -m giasok.book build``, what ``make book`` runs) executes the notebooks with
papermill, stages them with ``book/``, the intro's scorecard (``giasok.claims``) and the offline JavaScript,
and builds the HTML with Jupyter Book; ``python -m giasok.book run 01`` executes one section;
``python -m giasok.book publish`` (``make publish``) packs the built HTML, with its offline JavaScript, into
one archive that opens on a machine without a network. What the notebooks display lives in
``giasok.notebook``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .claims import scorecard_markdown

__all__ = ["build_book", "execute", "notebook_paths", "prepare_executed", "publish", "OFFLINE_ASSETS"]


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
    shutil.move(stage / "giasok.css", static / "giasok.css")
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


# what a built book needs from _static to work without a network (widgets, their fonts, maths)
OFFLINE_ASSETS = ("_static/require.js", "_static/widgets-offline.js", "_static/html-manager/embed-amd.js",
                  "_static/mathjax/tex-chtml.js", "_static/giasok.css")


def publish(build: Path, *, archive: Path | None = None) -> Path:
    """Pack the built book (``build/_build/html``) into a zip archive with one folder, ``giasok-book/``, that
    holds every page and the offline JavaScript: unpacked anywhere and served (``python -m http.server``) or
    opened, it needs no network. Returns the archive (default ``build/giasok-book.zip``). GitHub Pages is the
    other route: ``make pages`` pushes the same folder with ``ghp-import``, as Jupyter Book documents."""
    import shutil

    html = Path(build) / "_build" / "html"
    if not (html / "index.html").exists():
        raise SystemExit(f"no built book in {html}: run `make book` (or `make book PROFILE=smoke`) first")
    missing = [name for name in OFFLINE_ASSETS if not (html / name).exists()]
    if missing:
        raise SystemExit(f"the built book lacks its offline assets {missing}: rebuild it with `make book`")
    archive = Path(archive) if archive else Path(build) / "giasok-book.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    staging = archive.parent / ".publish"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(html, staging / "giasok-book", ignore=shutil.ignore_patterns(".buildinfo", ".doctrees"))
    made = shutil.make_archive(str(archive.with_suffix("")) + ".tmp", "zip", root_dir=staging, base_dir="giasok-book")
    Path(made).replace(archive)  # atomic: a half-written archive never carries the final name
    shutil.rmtree(staging, ignore_errors=True)
    print(f"published: {archive.resolve()} ({archive.stat().st_size / 1e6:.1f} MB)")
    return archive


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
    pub = sub.add_parser("publish", help="pack the built book into one offline archive")
    pub.add_argument("--build", type=Path, default=ROOT / "build")
    pub.add_argument("--archive", type=Path, default=None)
    prep = sub.add_parser("prepare", help="hide parameter cells of executed notebooks")
    prep.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        build_book(profile=args.profile, device=args.device, build=args.build, selector=args.selector)
    elif args.command == "publish":
        publish(args.build, archive=args.archive)
    elif args.command == "run":
        for notebook in notebook_paths(args.selector):
            execute(notebook, args.build / "executed" / args.profile / notebook.name,
                    profile=args.profile, device=args.device)
    else:
        for path in args.notebooks:
            prepare_executed(path)


if __name__ == "__main__":
    main()
