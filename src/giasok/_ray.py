"""Sweeps of giasok experiments on Ray: ``run_grid(configs, executor="ray")`` (``giasok.runs``) and ``ray_map``.

Each item (for ``run_grid``, one batch of attacks) is one Ray task asking for one CPU and ``num_gpus`` of a
GPU. The tasks run on a local Ray instance that this module starts, sized to the machine, when Ray is not
initialised yet and no address is given, or on the cluster named by ``address`` or ``$RAY_ADDRESS`` (``ray
start --head`` on one node, ``ray start --address=<head>:6379`` on the others). A local instance this module
started stays up for later calls in the process and is shut down at exit; one the caller started is left alone.

The results do not travel back through Ray: each task writes them into the result cache itself and returns
their hashes, and the driver then reads them from the cache folder. On a cluster that folder must therefore be
on a filesystem every node shares, and so must the data folder. The driver's ``$GIASOK_RESULTS`` and
``$GIASOK_DATA`` (or their defaults, ``results`` and ``data`` in its working directory), made absolute, are
given to the tasks through the runtime environment's ``env_vars``, so that workers write where the driver reads;
so are ``$PYTHONPATH`` and the folder this ``giasok`` was imported from (workers import the same code, also when
it runs from a source snapshot), and each task works in the driver's working directory where that exists, so
that a relative ``root=`` names the same folder. Each task runs with one torch thread, as the local process pool's
workers do: the numbers equal the local ones.
"""
from __future__ import annotations

import atexit
import os
from pathlib import Path

from tqdm import tqdm

from . import paths

__all__ = ["ray_map", "cluster_cpus"]

INSTALL_HINT = "run_grid(executor='ray') needs Ray: pip install 'giasok[ray]' (or pip install 'ray>=2.9')"

_LOCAL_OBJECT_STORE = 200 * 1024**2  # bytes: tasks return a few hashes, results go to the cache folder

_started = False  # whether this module started the Ray instance the process is connected to


def _ray():
    try:
        import ray
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return ray


def _connect(ray, address: str | None = None) -> None:
    """Connect to the cluster at ``address`` (or ``$RAY_ADDRESS``) unless Ray is already initialised; with no
    address, start a light local instance (no dashboard, a small object store) and shut it down at exit."""
    global _started
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    options = dict(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                   logging_level="WARNING")
    if address is None:  # a new local instance ("local": not one `ray start` left on this machine), sized here
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        options.update(address="local", num_cpus=cores, object_store_memory=_LOCAL_OBJECT_STORE)
    ray.init(**options)
    if address is None and not _started:
        _started = True
        atexit.register(_shutdown)


def _shutdown() -> None:
    global _started
    if _started:
        _started = False
        try:
            import ray

            ray.shutdown()
        except Exception:  # at exit: nothing left to report to
            pass


def _runtime_env() -> dict:
    """The driver's folders, made absolute, and its import path, for the tasks' environment."""
    source = str(Path(__file__).resolve().parents[1])  # the folder holding this giasok package
    python_path = [source] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != source]
    env = {"GIASOK_RESULTS": str(paths.results_dir().absolute()),
           "GIASOK_DATA": str(paths.data_dir().absolute()),
           "PYTHONPATH": os.pathsep.join(python_path)}
    return {"env_vars": env}


def _task(function, item, cwd: str):
    """One item on a worker: in the driver's working directory (where the node has it), one torch thread."""
    import torch

    torch.set_num_threads(1)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return function(item)


def cluster_cpus(address: str | None = None) -> int:
    """The CPUs of the Ray cluster ``ray_map`` would use (connecting as it does): how many one-CPU tasks
    can run at once, e.g. how many batches to cut a grid into."""
    ray = _ray()
    _connect(ray, address)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def ray_map(function, items, *, num_gpus: float = 0.0, progress: bool = True, desc: str = "work",
            address: str | None = None) -> list:
    """``[function(item) for item in items]``, each item one Ray task (1 CPU, ``num_gpus`` GPUs), in order.

    ``function`` must pickle (a module-level function or a ``functools.partial`` of one). Connects to Ray as
    the module docstring says (``address``, else ``$RAY_ADDRESS``, else a local instance). A task's exception
    is raised here (Ray's ``RayTaskError``, a subclass of the original type whose message contains the
    original's); on it, or on an interrupt, the outstanding tasks are cancelled. Raises ``ImportError`` when
    Ray is not installed.
    """
    ray = _ray()
    items = list(items)
    if not items:
        return []
    _connect(ray, address)
    remote = ray.remote(_task).options(num_cpus=1, num_gpus=num_gpus, runtime_env=_runtime_env())
    cwd = os.getcwd()
    refs = [remote.remote(function, item, cwd) for item in items]
    pending = list(refs)
    bar = tqdm(total=len(refs), desc=desc, disable=not progress, unit="task")
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready)  # a failed task raises now, not after the others have finished
            bar.update(len(ready))
        return ray.get(refs)
    except BaseException:  # an error or an interrupt: stop the others rather than let them run on
        _cancel(ray, refs)
        raise
    finally:
        bar.close()


def _cancel(ray, refs) -> None:
    """Cancel (killing their workers) the tasks of ``refs`` that have not finished. Finished ones are left
    alone: cancelling a task whose completion is on its way aborted the driver in our tests with Ray 2.60 ("Tried to
    complete task that was not pending", a race inside Ray)."""
    try:
        _, unfinished = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
    except Exception:
        unfinished = refs
    for ref in unfinished:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # finished meanwhile, or its worker already gone
            pass
