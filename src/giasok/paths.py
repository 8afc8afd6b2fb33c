"""Where giasok keeps its files, and the version that names what it caches (README: "Data and weights that
need a network", "Results and the cache").

Two folders, each set by an environment variable and otherwise relative to the working directory (the
repository root, where ``make`` and the book run):

* ``data_dir()`` — ``$GIASOK_DATA``, default ``data``: the data sets fetched or placed by hand
  (``cifar-10-batches-py/``, ``cifar-100-python/``, ``imagenet/``), and what giasok builds beside them:

  * ``cache_dir()`` — ``<data>/cache``: the offline ``patches`` and ``canaries`` sets, made on first use;
  * ``generators_dir()`` — ``<data>/generators``: the DCGANs of GIA-L, trained once and then loaded.

* ``results_dir()`` — ``$GIASOK_RESULTS``, default ``results``: the result cache of ``giasok.runs``, the
  FedAvg checkpoints, and the claims each section records (``results/claims``).

A variable that is unset or empty means the default. The variables are read at every call, not at import,
so a test, a notebook or a worker process can point giasok elsewhere by setting them. Functions that read
or write these folders also take ``root=``; ``None`` (their default) means the folder named here.

Nothing the package itself needs lives in these folders: its own data (Table 7 as a CSV) is package data
under ``giasok/resources/``, read with ``importlib.resources``, so an installed giasok works from any
directory.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_VERSION", "data_dir", "cache_dir", "generators_dir", "results_dir"]

# Part of the name of every cached result (giasok.runs) and trained generator (giasok.generative). Bump it
# when a change to the code changes what a cached configuration would compute: both caches then recompute
# instead of loading. It lives here, not in giasok.runs, because giasok.generative needs it and giasok.runs
# imports giasok.generative (lazily); giasok.runs re-exports it.
CACHE_VERSION = 2  # 2: GIA-L with one generator copy per image (GIAS), IGSA as the paper writes it


def _from_environment(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or default)


def data_dir() -> Path:
    """The data folder: ``$GIASOK_DATA`` if set, else ``data`` in the working directory."""
    return _from_environment("GIASOK_DATA", "data")


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The built offline data sets: ``cache`` in the data folder ``root`` (default ``data_dir()``)."""
    return (data_dir() if root is None else Path(root)) / "cache"


def generators_dir(root: str | os.PathLike | None = None) -> Path:
    """The trained generators: ``generators`` in the data folder ``root`` (default ``data_dir()``)."""
    return (data_dir() if root is None else Path(root)) / "generators"


def results_dir() -> Path:
    """The result cache: ``$GIASOK_RESULTS`` if set, else ``results`` in the working directory."""
    return _from_environment("GIASOK_RESULTS", "results")


def trained_network_hash(config, recipe: int) -> str:
    """A short stable name for a network giasok trains and caches (a DCGAN, a restorer): its configuration (a
    dataclass), the version of its training ``recipe`` and ``CACHE_VERSION``, so that bumping either retrains it."""
    import dataclasses
    import hashlib
    import json

    payload = json.dumps(dict(dataclasses.asdict(config), recipe=recipe, cache_version=CACHE_VERSION), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
