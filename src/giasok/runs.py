"""Experiments, the result cache, and grids of runs.

An experiment is a frozen dataclass whose fields are its whole configuration and whose ``compute()``
returns ``(metrics, arrays)``: a JSON-able dict and a dict of numpy arrays. ``run(config)`` names the
result by a hash of the configuration (and of ``CACHE_VERSION``), stores it under ``results/<Kind>/`` (the
folder is ``giasok.paths.results_dir()``: ``$GIASOK_RESULTS``, default ``results``) as
``<hash>.json`` (metrics and configuration), ``<hash>.npz`` (arrays) and, for attacks, ``<hash>.png`` (ground
truth over reconstruction), each written atomically, and on a later call loads it instead of recomputing.
``run_grid(configs)`` runs many with a progress bar; interrupting it loses only the run in progress.
A damaged entry (unreadable JSON or npz) is set aside, renamed ``<file>.damaged-<UTC time>``, with a warning,
and recomputed. ``tally()`` counts the results ``run``/``run_grid`` computed and those they loaded since
``reset_tally()``, for a chapter's "N results computed, M loaded from the cache".

``GiaExperiment`` is the unit the paper's tables are made of: draw a victim batch, build W_0, let the
client train, attack its update, score the reconstruction.

``FedAvgTraining`` is a FedAvg run over rounds (§5.1): its global model after every round is a checkpoint
in the cache (``results/FedAvgTraining/<hash>/round-0007.pt``), so asking for round t trains only the rounds
not yet on disk, and an interrupted run resumes at the last finished round; an unreadable checkpoint is set
aside and its round retrained from the latest readable one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import defenses, metrics, paths
from ._io import UNREADABLE, atomic_write, describe, set_aside
from .attacks import AttackConfig, invert_many
from .data import image_size_option, load_dataset, victim_batch
from .fl import client_update, fedavg_rounds
from .models import build_model, parameter_names
from .paths import CACHE_VERSION  # re-exported: defined in giasok.paths, which giasok.generative imports too

__all__ = ["CACHE_VERSION", "GiaExperiment", "ModuleGradientExperiment", "FedAvgTraining", "run", "run_grid",
           "config_hash", "result_paths", "attack_batches", "compute_batch", "EXECUTORS", "estimate", "Estimate",
           "parallel_map", "cpu_threads", "reconstruction_scores", "with_generator_seed",
           "default_workers", "tally", "reset_tally"]

_TALLY = {"computed": 0, "loaded": 0}


def tally() -> dict:
    """``{"computed": n, "loaded": m}``: the results ``run`` and ``run_grid`` computed and loaded from the
    cache since ``reset_tally()`` (or the import), in this process."""
    return dict(_TALLY)


def reset_tally() -> None:
    """Start the counts of ``tally()`` from zero."""
    _TALLY.update(computed=0, loaded=0)


def _count(computed: bool) -> None:
    _TALLY["computed" if computed else "loaded"] += 1


def config_hash(config) -> str:
    """A short stable hash of a frozen-dataclass configuration and its kind."""
    payload = json.dumps({"kind": type(config).__name__, "version": paths.CACHE_VERSION,
                          "config": dataclasses.asdict(config)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def result_paths(config, root: str | os.PathLike | None = None) -> dict:
    base = Path(root or paths.results_dir()) / type(config).__name__ / config_hash(config)
    return {"json": base.with_suffix(".json"), "npz": base.with_suffix(".npz"), "png": base.with_suffix(".png")}


def run(config, *, root: str | os.PathLike | None = None) -> dict:
    """The result of ``config``: loaded from the cache, or computed and stored (also when the stored one is
    damaged: it is set aside with a warning, see ``_load``). Counted in ``tally()``.

    Returns the metrics dict with ``"config"``, ``"hash"``, ``"arrays"`` (the npz contents) and ``"cached"``
    (whether it came from disk).
    """
    result = _run(config, root)
    _count(not result["cached"])
    return result


def _run(config, root=None) -> dict:
    """``run`` without counting: ``run_grid`` counts itself (its workers' counts die with their processes)."""
    files = result_paths(config, root)
    loaded = _load(files)
    if loaded is not None:
        return loaded
    return _store(config, *config.compute(), root)


def _store(config, result, arrays, root=None) -> dict:
    """Write a computed result into the cache (arrays, picture, then the JSON that marks it complete)."""
    files = result_paths(config, root)
    result = dict(result, config=dataclasses.asdict(config), hash=config_hash(config))
    atomic_write(files["npz"], lambda f: np.savez_compressed(f, **arrays))
    if "reconstruction" in arrays:
        atomic_write(files["png"], lambda f: _save_grid(f, arrays["truth"], arrays["reconstruction"]))
    # the JSON goes last: its presence marks a complete result
    atomic_write(files["json"], lambda f: f.write(json.dumps(result, indent=1, default=_jsonable).encode()))
    return dict(result, arrays=arrays, cached=False)


def _load(files) -> dict | None:
    """The stored result (as ``run`` returns it), or ``None`` when there is none to load.

    A JSON that does not parse to a dict, or an npz whose arrays cannot all be read, is a damaged entry (a
    full disk, an interrupted copy): its files are set aside (kept, renamed) with a warning and ``None`` is
    returned, so that the caller recomputes it instead of failing on it in every later run.
    """
    if not (files["json"].exists() and files["npz"].exists()):
        return None
    siblings = [files[k] for k in ("json", "npz", "png")]
    try:
        result = json.loads(files["json"].read_text(encoding="utf-8"))
        if not isinstance(result, dict):
            raise ValueError(f"a JSON {type(result).__name__}, not an object")
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        set_aside(files["json"], f"unreadable result JSON, {describe(error)}",
                  siblings=[p for p in siblings if p != files["json"]])
        return None
    try:
        with np.load(files["npz"]) as stored:
            arrays = {name: stored[name] for name in stored.files}  # reads (and so checks) every array
    except PermissionError:
        raise  # a file we may not read is not a damaged one
    except UNREADABLE as error:
        set_aside(files["npz"], f"unreadable result arrays, {describe(error)}",
                  siblings=[p for p in siblings if p != files["npz"]])
        return None
    return dict(_refresh(result, arrays, files), arrays=arrays, cached=True)


def _refresh(result, arrays, files):
    """Fill in LPIPS on a cached attack result once the AlexNet weights are installed (no new attack)."""
    if result.get("lpips") is None and "reconstruction" in arrays and metrics.lpips_available():
        result = dict(result, **reconstruction_scores(arrays["reconstruction"], arrays["truth"]))
        atomic_write(files["json"], lambda f: f.write(json.dumps(result, indent=1, default=_jsonable).encode()))
    return result


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


EXECUTORS = ("local", "ray")


def run_grid(configs, *, progress: bool = True, root: str | os.PathLike | None = None, desc: str = "runs",
             workers: int = 1, executor: str | None = None, batched: bool | None = None,
             announce: bool | None = None):
    """Run every configuration (cached ones are loaded), in order, with a progress bar.

    What is cached is loaded first (damaged entries are set aside); the missing results are then computed,
    each one once, and stored as soon as it is finished, so an interrupted grid resumes where it stopped.

    * ``batched`` — attacks that differ only in their victim or seed (``attack_batches``) run together as
      one vectorised pass (``giasok.attacks.invert_many``), each still cached under its own configuration;
      ``False`` runs them one at a time. The default batches on CUDA, where one attack leaves the GPU mostly idle,
      and not on the CPU, where a batched pass costs as much per attack as single ones (``make bench``) and
      parallel processes use the cores instead. Both give the same results up to float rounding.
    * ``executor`` — ``"local"`` (the default; ``$GIASOK_EXECUTOR`` when not given): in this process, or in
      ``workers`` processes of one torch thread each (``parallel_map``); ``"ray"``: each batch is a Ray task
      (``giasok._ray.ray_map``: a local Ray instance, or the cluster at ``$RAY_ADDRESS``). Ray workers write to the
      same cache folder, which must therefore be one they can all reach.

    * ``announce`` (default: with ``progress``) — print, before computing anything, how many runs the grid has,
      how many are cached and how long the rest will take (``estimate``, measured here with short runs), so
      that a long run surprises nobody.

    ``tally()`` counts results computed by workers as computed, though the main process reads them from disk.
    """
    executor = executor or os.environ.get("GIASOK_EXECUTOR") or "local"
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; available: {', '.join(EXECUTORS)}")
    configs = list(configs)
    loaded = {}
    for i, config in enumerate(configs):
        result = _load(result_paths(config, root))
        if result is not None:
            loaded[i] = result
    missing = list({config_hash(c): c for i, c in enumerate(configs) if i not in loaded}.values())  # each once
    fresh = {config_hash(c) for c in missing}
    computed = {}
    if missing and (progress if announce is None else announce):
        print(_estimate(configs, missing, workers, desc), flush=True)
    if missing:
        on_gpu = any(torch.device(getattr(c, "device", "cpu")).type == "cuda" for c in missing)
        batched = on_gpu if batched is None else batched
        if executor == "ray":
            from ._ray import cluster_cpus, ray_map
        parallelism = max(workers, cluster_cpus()) if executor == "ray" else workers  # tasks to keep all busy
        groups = attack_batches(missing, at_least=parallelism) if batched else [[c] for c in missing]
        compute = functools.partial(_compute_batch, root=root)
        if executor == "ray":  # a quarter of a GPU per task on CUDA: small attacks leave most of one idle
            ray_map(compute, groups, num_gpus=0.25 if on_gpu else 0.0, progress=progress, desc=f"{desc} (Ray)")
        elif workers > 1:
            parallel_map(compute, groups, workers=workers, progress=progress, desc=f"{desc} ({workers} workers)")
        else:
            bar = tqdm(total=len(missing), desc=desc, disable=not progress, unit="run")
            for group in groups:
                for result in _run_batch(group, root):
                    computed[result["hash"]] = result
                bar.update(len(group))
            bar.close()
    results = []
    for i, config in enumerate(configs):
        key = config_hash(config)
        result = loaded.get(i) or computed.get(key) or _load(result_paths(config, root))
        if result is None:  # a worker's result is missing from the cache folder: compute it here
            result = _run(config, root)
        _count(key in fresh)  # a result computed in this call counts once, as computed
        fresh.discard(key)
        results.append(result)
    return results


def _compute_batch(configs, root=None) -> list[str]:
    return [result["hash"] for result in _run_batch(configs, root)]  # the results themselves are on disk


def _single_threaded_worker():
    torch.set_num_threads(1)


def default_workers(device: str) -> int:
    """Processes for a grid on ``device``: one per CPU core on the CPU (each runs one torch thread, and small
    networks gain little from a second thread), one on a GPU."""
    return (os.cpu_count() or 1) if torch.device(device).type == "cpu" else 1


def parallel_map(function, items, *, workers: int, progress: bool = True, desc: str = "work") -> list:
    """``[function(item) for item in items]`` in ``workers`` fresh processes with one torch thread each.

    Small networks use a second core poorly (one GIA-O iteration of a 1/8-width GoogLeNet takes as long
    on one thread as on two), so independent runs in parallel processes finish sooner. ``function`` must
    be importable (a module-level function or a ``functools.partial`` of one); from a script, call this
    under ``if __name__ == "__main__":``, since each worker imports the main module. Interrupting stops the
    workers; whatever they had finished is already in the cache.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    items = list(items)
    context = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
    with ProcessPoolExecutor(max(1, min(workers, len(items))), mp_context=context,
                             initializer=_single_threaded_worker) as executor:
        futures = [executor.submit(function, item) for item in items]
        try:
            for _ in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=not progress, unit="run"):
                pass
        except BaseException:  # an error or an interrupt: stop the others now rather than after their runs
            for future in futures:
                future.cancel()
            for process in list(executor._processes.values()):  # no public terminate before Python 3.14
                process.terminate()
            raise
        try:
            return [future.result() for future in futures]
        except BrokenProcessPool as error:
            raise RuntimeError("a worker process died (out of memory, or killed). From a script, call under "
                               "`if __name__ == '__main__':`: each worker imports the main module; or pass "
                               "workers=1") from error


@contextlib.contextmanager
def cpu_threads(count: int, device: str):
    """Run the block with ``count`` torch threads when ``device`` is the CPU (results then do not depend on
    whether the block runs in the main process or in a ``parallel_map`` worker)."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _save_grid(f, truth, reconstruction):
    """A PNG with the ground-truth batch on the top row and its reconstruction below."""
    from PIL import Image

    rows = [np.concatenate(list(batch.transpose(0, 2, 3, 1)), axis=1) for batch in (truth, reconstruction)]
    grid = np.concatenate(rows, axis=0)
    Image.fromarray(np.clip(np.round(grid * 255), 0, 255).astype(np.uint8)).save(f, format="png")


def reconstruction_scores(reconstruction, truth) -> dict:
    """Per-sample and mean PSNR/SSIM, and LPIPS or ``None`` where its weights are missing."""
    psnr, ssim = metrics.psnr(reconstruction, truth), metrics.ssim(reconstruction, truth)
    try:
        lpips = metrics.lpips_alex(reconstruction, truth)
    except metrics.MetricUnavailable:
        lpips = None
    return {
        "psnr": float(np.mean(np.minimum(psnr, 100.0))), "ssim": float(np.mean(ssim)),
        "lpips": None if lpips is None else float(np.mean(lpips)),
        "psnr_per_sample": psnr.tolist(), "ssim_per_sample": ssim.tolist(),
        "lpips_per_sample": None if lpips is None else lpips.tolist(),
    }


@dataclass(frozen=True)
class GiaExperiment:
    """One gradient inversion: a client with N samples trains W_0 and the server attacks its update.

    The client draws its N samples from ``dataset``'s test split with ``seed`` (distinct labels when
    N ≤ the number of classes), trains E epochs with batch B (``None`` = full batch) at ``client_lr``, and
    the attacker runs ``attack`` (a ``giasok.attacks.AttackConfig``, handed to ``invert`` as it is) on the
    update. ``labels="given"`` hands the attacker the true labels; ``"inferred"`` makes it read them from
    the update. ``attack_seed`` (default: ``seed``) draws the attack's initialisation alone, for repeated
    attacks on one batch (WSRR).

    GIA-L (``attack.method="gia-l"``) uses a DCGAN trained on the data set's train split at ``image_size``
    (``giasok.generative.train_dcgan`` with ``attack.generator_options``; cached), or BigGAN when the options
    name one. ROG (``attack.method="rog"``) uses a restorer trained on the train split at ``image_size`` for the
    attack's ``downsample`` and ``interpolation`` (``giasok.restoration.train_restorer`` with
    ``attack.restorer_options``; cached), or the weights of a file when the options name one (``("weights", path)``).

    What the client shares is the protocol's choice, not the attacker's: ``share_bn_statistics=True`` is a
    protocol in which the client also sends the BatchNorm statistics of its batch (assumption level 4, §2).
    A ``"bn"`` prior needs them, so an experiment with a ``"bn"`` prior and a client that does not share them
    is rejected. ``defense`` — ``(name, strength)`` for ``giasok.defenses.apply`` — is the post-processing the
    client applies to its update before sharing it (§6); ``("none", None)`` shares the update as it is.
    """

    dataset: str = "patches"
    image_size: int = 32
    model: str = "convnet"
    model_options: tuple = (("width", 32),)
    model_seed: int = 0
    num_samples: int = 1
    batch_size: int | None = None
    epochs: int = 1
    client_lr: float = 0.1
    attack: AttackConfig = AttackConfig(priors=(("tv", 1e-4),))
    labels: str = "given"
    seed: int = 0
    device: str = "cpu"
    attack_seed: int | None = None
    bn_mode: str = "train"
    share_bn_statistics: bool = False
    defense: tuple = ("none", None)

    def __post_init__(self):
        if self.labels not in ("given", "inferred"):
            raise ValueError(f"labels must be 'given' or 'inferred', got {self.labels!r}")
        if not isinstance(self.attack, AttackConfig):
            raise ValueError(f"attack must be a giasok.attacks.AttackConfig, got {self.attack!r}")
        if any(name == "bn" for name, _ in self.attack.priors) and not self.share_bn_statistics:
            raise ValueError(f"priors={self.attack.priors!r} include 'bn', which needs the client's BatchNorm statistics, "
                             "but share_bn_statistics=False: set share_bn_statistics=True (a protocol at "
                             "assumption level 4) or drop the 'bn' prior")
        if (not isinstance(self.defense, tuple) or len(self.defense) != 2
                or self.defense[0] not in ("none", *defenses.DEFENSES)):
            raise ValueError(f"defense must be ('none', None) or (name, strength) with a name in "
                             f"{sorted(defenses.DEFENSES)}, got {self.defense!r}")
        if self.batch_size is not None and not 1 <= self.batch_size <= self.num_samples:
            raise ValueError(f"batch_size must be in 1..N={self.num_samples} (or None for full batch), "
                             f"got {self.batch_size}")

    @property
    def local_updates(self) -> int:
        """U = E·⌈N/B⌉."""
        b = self.batch_size or self.num_samples
        return self.epochs * -(-self.num_samples // b)

    def num_classes(self) -> int:
        """The classes of ``dataset``: the model's outputs."""
        return len(self._data().classes)

    def _data(self):
        # download=True: CIFAR is fetched where there is a network, and is a no-op once it is on disk
        return load_dataset(self.dataset, "test", download=True, **image_size_option(self.dataset, self.image_size))

    def client_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The client's N images and labels: a draw from ``dataset``'s test split with ``seed`` (subclasses give
        other data, e.g. §4.2.2's canaries)."""
        data = self._data()
        images, labels = victim_batch(data, self.num_samples, seed=self.seed,
                                      distinct_labels=self.num_samples <= len(data.classes))
        if images.shape[-1] != self.image_size:  # CIFAR at 64² (Fig. 4a) is upsampled, as in the paper
            images = torch.nn.functional.interpolate(images, size=(self.image_size,) * 2, mode="bilinear",
                                                     antialias=True, align_corners=False).clamp(0, 1)
        return images, labels

    def victim(self):
        """The client's data, W_0 and its update (deterministic in the configuration)."""
        images, labels = self.client_data()
        model = build_model(self.model, self.num_classes(), seed=self.model_seed, **dict(self.model_options))
        update = client_update(model, images, labels, lr=self.client_lr, epochs=self.epochs,
                               batch_size=self.batch_size, seed=self.seed, device=self.device,
                               share_bn_statistics=self.share_bn_statistics,
                               bn_mode=self.bn_mode)
        if self.defense[0] != "none":  # the client post-processes its update before sharing it (§6)
            update = defenses.apply(update, *self.defense, seed=self.seed)
        return images, labels, model, update

    def generator(self):
        """The GIA-L generator: a DCGAN trained once per configuration (then loaded from
        ``giasok.paths.generators_dir()``), or, when ``generator_options`` name ``("biggan", <model name>)``, a
        pre-trained BigGAN (ImageNet)."""
        from .generative import biggan_prior, train_dcgan

        options = dict(self.attack.generator_options)
        if "biggan" in options:
            return biggan_prior(self.image_size, options["biggan"], device=self.device)
        return train_dcgan(self.dataset, self.image_size, device=self.device, **options)

    def restorer(self):
        """ROG's post-processing network: a restorer trained once per configuration for this data set, image size
        and the attack's degradation (then loaded from ``giasok.paths.generators_dir()``), or, when
        ``restorer_options`` name ``("weights", <file>)``, those weights (``giasok.restoration.load_restorer``)."""
        from .restoration import load_restorer, train_restorer

        options = dict(self.attack.restorer_options)
        if "weights" in options:
            return load_restorer(options.pop("weights"), device=self.device, **options)
        options.setdefault("interpolation", self.attack.interpolation)  # the degradation the attack undoes
        return train_restorer(self.dataset, self.image_size, downsample=self.attack.downsample, device=self.device,
                              **options)

    def compute(self):
        with cpu_threads(1, self.device):  # the same numbers in the main process and in parallel workers
            return self._compute()

    def _compute(self):
        return compute_batch([self])[0]

    def batch_key(self):
        """Experiments with equal keys attack updates of one W_0 with one configuration and differ only in their
        victims (``seed``) and initialisations (``attack_seed``): ``compute_batch`` runs them as one vectorised
        pass. ``None`` (GIA-L, whose stage 2 is vectorised per image already) runs alone."""
        if self.attack.method == "gia-l" or type(self)._compute is not GiaExperiment._compute:
            return None  # a subclass that computes otherwise runs alone
        return self.kind()

    def kind(self):
        """The experiment without its victim and initialisation (``seed``, ``attack_seed``): runs of one kind cost
        the same (``estimate``)."""
        fields = dataclasses.asdict(self)
        for name in ("seed", "attack_seed"):
            fields.pop(name)
        return type(self).__name__, json.dumps(fields, sort_keys=True, default=str)

    def _score(self, images, labels, update, rec, seconds):
        """The result of one attack: scores of the reconstruction matched to the truth, and its arrays."""
        matched, order = metrics.match(rec.images, images)
        result = dict(reconstruction_scores(matched, images), seconds=seconds, local_updates=update.local_updates,
                      final_loss=rec.loss_history[-1], restart_losses=list(rec.restart_losses),
                      labels_correct=bool(torch.equal(rec.labels.sort().values, labels.sort().values)))
        arrays = {"truth": images.numpy(), "reconstruction": matched.numpy(), "labels": labels.numpy(),
                  "order": order, "loss_history": np.asarray(rec.loss_history)}
        return result, arrays


def compute_batch(experiments) -> list[tuple[dict, dict]]:
    """``[e.compute() for e in experiments]`` for ``GiaExperiment``s of one ``batch_key()`` (or a single one), their
    attacks run together (``giasok.attacks.invert_many``). Each ``seconds`` is the pass's time divided by the
    number of experiments in it."""
    first = experiments[0]
    if len(experiments) > 1 and (first.batch_key() is None
                                 or any(e.batch_key() != first.batch_key() for e in experiments)):
        raise ValueError("compute_batch needs experiments of one batch_key() (see attack_batches)")
    with cpu_threads(1, first.device):
        victims = [e.victim() for e in experiments]
        model = victims[0][2]
        generator = first.generator() if first.attack.method == "gia-l" else None
        restorer = first.restorer() if first.attack.method == "rog" else None
        start = time.perf_counter()
        recs = invert_many(model, [update for *_, update in victims], first.attack,
                           labels=[labels if e.labels == "given" else None
                                   for e, (_, labels, _, _) in zip(experiments, victims)],
                           seeds=[e.seed if e.attack_seed is None else e.attack_seed for e in experiments],
                           device=first.device, generator=generator, restorer=restorer)
        seconds = (time.perf_counter() - start) / len(experiments)
        return [e._score(images, labels, update, rec, seconds)
                for e, (images, labels, _, update), rec in zip(experiments, victims, recs)]


def attack_batches(configs, *, at_least: int = 1, max_size: int = 16) -> list[list]:
    """``configs`` in groups that ``compute_batch`` runs as one pass: equal ``batch_key()``s, in the order they
    come, at most ``max_size`` per group, and split further until there are ``at_least`` groups where possible
    (so that ``at_least`` parallel workers all have work). Other configurations are groups of one."""
    groups, open_groups = [], {}
    for config in configs:
        key = config.batch_key() if hasattr(config, "batch_key") else None
        if key is None:
            groups.append([config])
            continue
        group = open_groups.get(key)
        if group is None or len(group) >= max_size:
            group = open_groups[key] = []
            groups.append(group)
        group.append(config)
    while len(groups) < at_least and any(len(g) > 1 for g in groups):
        largest = max(range(len(groups)), key=lambda i: len(groups[i]))
        group = groups.pop(largest)
        groups[largest:largest] = [group[:len(group) // 2], group[len(group) // 2:]]
    return groups


def _run_batch(configs, root=None) -> list[dict]:
    """``[_run(c, root) for c in configs]``, computed in one pass where ``configs`` share a ``batch_key()``; each
    result is stored as soon as the pass ends."""
    if len(configs) == 1 or not all(isinstance(c, GiaExperiment) for c in configs):
        return [_run(c, root) for c in configs]
    return [_store(config, result, arrays, root) for config, (result, arrays) in zip(configs, compute_batch(configs))]


@dataclass(frozen=True)
class ModuleGradientExperiment(GiaExperiment):
    """A ``GiaExperiment`` whose attacker matches only the update of one module's parameters,
    ``observed_module`` (a qualified name as in ``model.named_modules()``, e.g. GoogLeNet's first Inception block,
    ``giasok.models.inception_blocks(model)[0]``): §5.2's Table 3 attacks "with the gradient of one NIN block".
    The client trains and shares as in ``GiaExperiment``; the attacker discards the rest of the update
    (``ClientUpdate.restricted``). Labels must be given: inferring them reads the classifier's update."""

    observed_module: str = ""

    def __post_init__(self):
        super().__post_init__()
        if not self.observed_module:
            raise ValueError("observed_module must name a module of the model (e.g. 'net.inception3a')")
        if self.labels != "given":
            raise ValueError("a ModuleGradientExperiment attacks part of the update, without the classifier's: "
                             "labels must be 'given'")

    def victim(self):
        images, labels, model, update = super().victim()
        return images, labels, model, update.restricted(parameter_names(model, self.observed_module))


def with_generator_seed(experiment: GiaExperiment, seed: int) -> GiaExperiment:
    """``experiment`` with its DCGAN trained from ``seed`` (GIA-L's generator is part of its result: a
    different training run of the same recipe gives a different prior). The default seed (0) keeps the
    configuration as it is, so those runs come from the cache."""
    options = dict(experiment.attack.generator_options)
    if options.get("seed", 0) == seed:
        return experiment
    options["seed"] = seed
    return dataclasses.replace(experiment, attack=experiment.attack.with_(generator_options=tuple(sorted(options.items()))))


@dataclass(frozen=True)
class FedAvgTraining:
    """FedAvg training of ``model`` on ``dataset``'s train split, checkpointed after every round.

    ``clients`` clients hold ``samples_per_client`` samples each (an IID split drawn with ``seed``) and
    train ``epochs`` local epochs of mini-batch SGD with ``batch_size`` at ``lr`` in each round (BatchNorm in
    train mode, as real clients do); the server averages. The number of rounds is not part of the
    configuration: round t's model is the same whether the run goes on to 20 rounds or 100, so a longer run
    reuses a shorter one's checkpoints.
    """

    dataset: str = "patches"
    image_size: int = 32
    model: str = "convnet"
    model_options: tuple = ()
    model_seed: int = 0
    clients: int = 5
    samples_per_client: int = 100
    batch_size: int = 32
    epochs: int = 1
    lr: float = 0.01
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.clients < 1 or self.samples_per_client < 1 or self.epochs < 1 or self.lr <= 0:
            raise ValueError(f"need clients ≥ 1, samples_per_client ≥ 1, epochs ≥ 1, lr > 0; got {self.clients}, "
                             f"{self.samples_per_client}, {self.epochs}, {self.lr}")
        if not 1 <= self.batch_size <= self.samples_per_client:
            raise ValueError(f"batch_size must be in 1..samples_per_client={self.samples_per_client}, "
                             f"got {self.batch_size}")

    def _data(self, split: str):
        return load_dataset(self.dataset, split, download=True, **image_size_option(self.dataset, self.image_size))

    def client_data(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each client's (images, labels): disjoint random draws from the train split."""
        data = self._data("train")
        needed = self.clients * self.samples_per_client
        if needed > len(data):
            raise ValueError(f"{self.clients} clients × {self.samples_per_client} samples = {needed} exceeds the "
                             f"{len(data)} training samples of {self.dataset}")
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))[:needed]
        shards = []
        for idx in order.view(self.clients, self.samples_per_client):
            items = [data[int(i)] for i in idx]
            shards.append((torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])))
        return shards

    def test_data(self):
        """The test split, on which the global model's accuracy is measured."""
        return self._data("test")

    def test_accuracy(self, model: torch.nn.Module, batch_size: int = 500) -> float:
        """``model``'s accuracy on the test split (eval mode, so BatchNorm uses its running statistics)."""
        data = self.test_data()
        net = model.to(self.device).eval()
        correct = 0
        with torch.no_grad():
            for x, y in torch.utils.data.DataLoader(data, batch_size=batch_size):
                correct += int((net(x.to(self.device)).argmax(1).cpu() == y).sum())
        return correct / len(data)

    def initial_model(self) -> torch.nn.Module:
        return build_model(self.model, len(self._data("test").classes), seed=self.model_seed,
                           **dict(self.model_options))

    def checkpoint_path(self, round_: int, root: str | os.PathLike | None = None) -> Path:
        return Path(root or paths.results_dir()) / type(self).__name__ / config_hash(self) / f"round-{round_:04d}.pt"

    def last_checkpoint(self, up_to: int, root: str | os.PathLike | None = None) -> int:
        """The latest round ≤ ``up_to`` whose global model is on disk (0, the initial model, needs none)."""
        return max([t for t in range(1, up_to + 1) if self.checkpoint_path(t, root).exists()], default=0)

    def global_model(self, round_: int, *, progress: bool = True, root: str | os.PathLike | None = None):
        """The global model after ``round_`` rounds (0 = the initial model), training only the missing rounds.

        An unreadable checkpoint (truncated, overwritten) is set aside with a warning and its rounds are
        retrained from the latest readable one: the same model, since each round is determined by the
        configuration and its round number.
        """
        if not isinstance(round_, int) or round_ < 0:
            raise ValueError(f"round must be a non-negative integer, got {round_!r}")
        start = self.last_checkpoint(round_, root)
        model = self.initial_model()
        while start:
            path = self.checkpoint_path(start, root)
            try:
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
                break
            except PermissionError:
                raise  # a file we may not read is not a damaged one
            except UNREADABLE as error:
                set_aside(path, f"unreadable FedAvg checkpoint, {describe(error)}")
                model = self.initial_model()  # a failed load_state_dict may have copied some tensors
                start = self.last_checkpoint(start - 1, root)
        if start == round_:
            return model
        rounds = fedavg_rounds(model, self.client_data(), rounds=round_, lr=self.lr, epochs=self.epochs,
                               batch_size=self.batch_size, seed=self.seed, device=self.device, start=start)
        bar = tqdm(rounds, total=round_ - start, disable=not progress, unit="round",
                   desc=f"FedAvg {self.model} rounds {start + 1}–{round_}")
        with cpu_threads(1, self.device):  # the same checkpoints in a worker process as in the main one
            for t, model in bar:
                payload = {"round": t, "model": {k: v.cpu() for k, v in model.state_dict().items()}}
                atomic_write(self.checkpoint_path(t, root), lambda f: torch.save(payload, f))
        return model


@dataclass(frozen=True)
class Estimate:
    """What a grid will cost before it runs: its attacks, those cached, and the estimated wall time of the rest
    (``None`` where it has experiments this estimate does not time, e.g. FedAvg training)."""

    desc: str
    total: int
    cached: int
    seconds: float | None
    device: str
    workers: int
    untimed: int = 0

    def __str__(self):
        todo = self.total - self.cached
        head = f"{self.desc}: {self.total} runs ({self.cached} cached, {todo} to compute)"
        if todo == 0:
            return head
        if self.seconds is None:
            return f"{head}; no time estimate"
        minutes = self.seconds / 60
        when = f"{minutes:.1f} min" if minutes >= 1 else f"{self.seconds:.0f} s"
        extra = f", plus {self.untimed} runs not estimated" if self.untimed else ""
        return (f"{head}; estimated ~{when} on {self.device} with {self.workers} worker"
                f"{'s' if self.workers > 1 else ''}{extra} (from short runs of each kind of attack, timed here)")


def estimate(configs, *, workers: int = 1, root: str | os.PathLike | None = None, desc: str = "runs") -> Estimate:
    """How long ``run_grid(configs, workers=workers)`` will take, measured on this machine before it runs.

    For every kind of attack among the missing experiments (those with an ``attack`` and a ``kind()``:
    ``GiaExperiment``s of one model, data and attack; §5.1's evaluations of one FedAvg run), one of them runs with
    its attack cut to 1 and then 4 iterations (after one untimed run that also trains or loads what it needs, e.g.
    GIA-L's generator, as the grid would): the difference gives the cost per iteration, the rest the set-up. A run
    costs set-up + per-iteration × (restarts × iterations + generator iterations), divided over the workers.
    Other experiments (FedAvg training) are counted, not timed.
    """
    configs = list(configs)
    missing = list({config_hash(c): c for c in configs if not result_paths(c, root)["json"].exists()}.values())
    return _estimate(configs, missing, workers, desc)


def _estimate(configs, missing, workers, desc) -> Estimate:
    """``estimate`` for ``missing``, the configurations of ``configs`` not in the cache (``run_grid`` knows them)."""
    kinds, untimed = {}, 0
    for config in missing:
        key = config.kind() if hasattr(config, "kind") and isinstance(getattr(config, "attack", None), AttackConfig) \
            else None
        if key is None:
            untimed += 1
        else:
            kinds.setdefault(key, []).append(config)
    seconds = 0.0
    for group in kinds.values():
        set_up, per_iteration = _probe(group[0])
        attack = group[0].attack
        steps = attack.restarts * attack.iterations + attack.generator_iterations
        seconds += len(group) * (set_up + per_iteration * steps)
    device = configs[0].device if configs and hasattr(configs[0], "device") else "cpu"
    parallel = max(1, min(workers, len(missing)))
    return Estimate(desc=desc, total=len(configs), cached=len(configs) - len(missing),
                    seconds=seconds / parallel if kinds or not missing else None, device=str(device),
                    workers=parallel, untimed=untimed if kinds else 0)


def _probe(config) -> tuple[float, float]:
    """(set-up seconds, seconds per iteration) of ``config``'s attack, from runs cut to 1 and 4 iterations."""
    def timed(iterations):
        short = dataclasses.replace(config, attack=config.attack.with_(
            iterations=iterations, restarts=1, generator_iterations=min(config.attack.generator_iterations, iterations)))
        start = time.perf_counter()
        compute_batch([short]) if isinstance(short, GiaExperiment) else short.compute()
        return time.perf_counter() - start

    timed(1)  # loads the data and trains or loads a generator or restorer, as the grid's first run would
    one, four = timed(1), timed(4)
    per_iteration = max(four - one, 0.0) / 3
    return max(one - per_iteration, 0.0), per_iteration
