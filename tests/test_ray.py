"""The Ray executor (``giasok._ray.ray_map``, ``run_grid(executor="ray")``) on a local Ray instance: results in
order, one torch thread per task, a task's error raised in the driver, and a grid whose results equal the local
executor's. Skipped only where Ray is not installed (``make test`` installs the ``ray`` extra)."""
import sys
import time

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'giasok[ray]'")

from giasok import paths  # noqa: E402
from giasok._ray import cluster_cpus, ray_map  # noqa: E402
from giasok.attacks import AttackConfig  # noqa: E402
from giasok.runs import GiaExperiment, reset_tally, run_grid, tally  # noqa: E402

TINY = dict(model_options=(("width", 4),), attack=AttackConfig(priors=(("tv", 1e-4),), iterations=5))

# pytest imports this file from tests/, which Ray's workers do not have on their path: ship its functions whole
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance for the module (starting one takes seconds), started by ``ray_map`` itself."""
    started = not ray.is_initialized()
    ray_map(_double, [0], progress=False)
    yield
    if started:
        ray.shutdown()


def _double(x):
    time.sleep(0.02 * (5 - x))  # the first items finish last
    return 2 * x, torch.get_num_threads()


def _fail_on_three(x):
    if x == 3:
        raise ValueError(f"no good: item {x}")
    if x > 3:
        time.sleep(60)  # running or queued when item 3 fails: to be cancelled, not waited for
    return x


def test_ray_map_returns_results_in_order_from_single_threaded_tasks():
    torch.set_num_threads(2)  # the driver's count does not reach the tasks
    assert ray_map(_double, range(6), progress=False) == [(2 * x, 1) for x in range(6)]
    assert ray_map(_double, [], progress=False) == []
    assert cluster_cpus() == ray.cluster_resources()["CPU"] >= 1


def test_a_task_error_reaches_the_driver_with_its_message_and_cancels_the_other_tasks():
    start = time.monotonic()
    with pytest.raises(ValueError, match="no good: item 3"):
        ray_map(_fail_on_three, range(6), progress=False)
    assert time.monotonic() - start < 30  # the sleeping tasks were cancelled


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(ImportError, match=r"pip install 'giasok\[ray\]'"):
        ray_map(_double, [1], progress=False)


def test_a_grid_on_ray_equals_the_local_grid_and_is_then_loaded_from_the_cache(tmp_path, monkeypatch):
    grid = [GiaExperiment(seed=s, **TINY) for s in range(3)]
    local = run_grid(grid, root=tmp_path / "local", executor="local", progress=False)
    monkeypatch.setenv("GIASOK_DATA", str(paths.data_dir().absolute()))
    monkeypatch.chdir(tmp_path)  # a relative root names the same folder in the tasks as in the driver
    reset_tally()
    on_ray = run_grid(grid, root="ray", executor="ray", progress=False)
    assert tally() == {"computed": len(grid), "loaded": 0}  # computed on Ray (the driver reads them from disk)
    stored = sorted((tmp_path / "ray" / "GiaExperiment").glob("*.json"))
    assert len(stored) == len(grid)
    assert [r["hash"] for r in on_ray] == [r["hash"] for r in local]
    assert [r["psnr"] for r in on_ray] == [r["psnr"] for r in local]  # exactly: one thread, the same CPU
    for ours, theirs in zip(on_ray, local):
        np.testing.assert_array_equal(ours["arrays"]["reconstruction"], theirs["arrays"]["reconstruction"])
    stamps = [p.stat().st_mtime_ns for p in stored]
    again = run_grid(grid, root="ray", executor="ray", progress=False)
    assert all(r["cached"] for r in again) and tally() == {"computed": len(grid), "loaded": len(grid)}
    assert [p.stat().st_mtime_ns for p in stored] == stamps
    assert [r["psnr"] for r in again] == [r["psnr"] for r in local]
