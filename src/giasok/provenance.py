"""Provenance: where a chapter's numbers came from.

A number in the book is only as good as what produced it, so every chapter (and every claims record, and
so the scorecard) states the code (git commit, and whether the working tree had uncommitted changes), the
Python, torch, torchvision and giasok versions, the device (the GPU's model on CUDA, the processor on the
CPU), the date, the chapter's wall time, and how many results it computed and how many it loaded from the
cache (``giasok.runs.tally``). ``start_chapter`` marks the start (``giasok.notebook.configure`` calls it);
``collect`` reads everything at the moment it is called.
"""
from __future__ import annotations

import datetime
import html
import importlib
import platform
import os
import subprocess
import time
from importlib import metadata
from pathlib import Path

__all__ = ["start_chapter", "collect", "summary", "html_block"]

_CHAPTER = {"started": None, "date": None, "device": "cpu"}


def start_chapter(device: str = "cpu") -> None:
    """Start the chapter's clock and the tally of computed and loaded results."""
    from . import runs

    runs.reset_tally()
    _CHAPTER.update(started=time.perf_counter(), date=_now(), device=str(device))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _git(*args: str) -> str | None:
    """``git args`` in the checkout that holds this package (an editable install), else in the working
    directory; None where neither is a git checkout or git is missing."""
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        try:
            done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def _version(package: str) -> str:
    """The package's own ``__version__`` where it has one (torch's names its build, e.g. ``+cu130``)."""
    try:
        return getattr(importlib.import_module(package), "__version__", None) or metadata.version(package)
    except (ImportError, metadata.PackageNotFoundError):
        return "not installed"


def _device_name(device: str) -> str:
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(parsed)} (CUDA {torch.version.cuda})"
    name = platform.processor() or platform.machine()
    try:  # Linux names the processor model here; platform.processor() is often empty
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def collect(device: str | None = None) -> dict:
    """Everything above, now: a JSON-able dict."""
    from . import runs

    device = device or _CHAPTER["device"]
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    counts = runs.tally()
    started = _CHAPTER["started"]
    return {
        "commit": commit or "unknown (not a git checkout)",
        "dirty": None if dirty is None else bool(dirty),
        "python": platform.python_version(), "torch": _version("torch"), "torchvision": _version("torchvision"),
        "giasok": _version("giasok"), "device": device, "device_name": _device_name(device),
        "platform": f"{platform.system()} {platform.release()}", "started": _CHAPTER["date"], "date": _now(),
        "wall_seconds": None if started is None else round(time.perf_counter() - started, 1),
        "results_computed": counts["computed"], "results_loaded": counts["loaded"],
    }


def summary(record: dict) -> str:
    """One line of text for a scorecard row: commit, versions, device, date, wall time, cache use."""
    dirty = {True: " + uncommitted changes", False: "", None: ""}[record.get("dirty")]
    wall = record.get("wall_seconds")
    return (f"commit {record['commit']}{dirty}; Python {record['python']}, torch {record['torch']}, "
            f"torchvision {record['torchvision']}, giasok {record['giasok']}; {record['device_name']}; "
            f"{record['date']}; wall {'n/a' if wall is None else _duration(wall)}; "
            f"{record['results_computed']} results computed, {record['results_loaded']} loaded from the cache")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def html_block(record: dict, profile: str) -> str:
    """The chapter's provenance as a small HTML table (a ``div.giasok-provenance``)."""
    dirty = record.get("dirty")
    rows = [
        ("profile", profile),
        ("code", f"giasok {record['giasok']}, commit {record['commit']}"
                 + {True: " (with uncommitted changes)", False: " (clean tree)", None: ""}[dirty]),
        ("software", f"Python {record['python']}, torch {record['torch']}, torchvision {record['torchvision']}"),
        ("device", f"{record['device']}: {record['device_name']}"),
        ("date (UTC)", f"started {record['started'] or 'n/a'}, finished {record['date']}"),
        ("wall time", "n/a" if record["wall_seconds"] is None else _duration(record["wall_seconds"])),
        ("results", f"{record['results_computed']} computed, {record['results_loaded']} loaded from the cache"),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (f'<div class="giasok-provenance"><p><strong>Provenance of this chapter</strong></p>'
            f"<table>{body}</table></div>")
