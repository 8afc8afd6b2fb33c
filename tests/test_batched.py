"""Many attacks per pass (giasok.attacks.invert_many), the two formulations of the simulated update, CUDA-graph
replay, and run_grid's batches (issue 15). On the CPU these run the same code as on CUDA, minus the graph.

Why the tolerances below: the batched and one-at-a-time paths evaluate the same sums in float32 in a different
order (vmap folds the attacks into the convolutions' batch and takes per-attack weight gradients with other
kernels). Each gradient entry is a sum of O(10³–10⁴) products, so its relative rounding error is at most about
√n·ε ≈ 100 · 6e-8 = 6e-6 in norm; we allow 2e-5. The cosine loss is 1 − cos, a difference of numbers near 1:
its rounding error is absolute, a few ε of the cosine, so losses are compared to 1e-6 absolute. Over many
iterations the paths need not stay equal: Geiping et al.'s update is sign(∇), and a pixel whose gradient is zero
up to rounding moves by ±lr on one path and not (or the other way) on the other, after which the two descents
are different runs of one algorithm. So the long-run comparison is on what an attack is for: how much it leaks.
"""
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from giasok.attacks import (AttackConfig, _prepare, _vectorized_objective, invert, invert_many, matching_loss,
                            simulated_update)
from giasok.data import load_dataset, victim_batch
from giasok.fl import client_update
from giasok.metrics import psnr
from giasok.models import build_model
from giasok.runs import GiaExperiment, attack_batches, config_hash, run_grid

ROOT = Path(__file__).resolve().parents[1]


def _updates(model, count=3, samples=2, bn_mode="train", same_schedule=True, **client):
    """``count`` clients with their own random data; with ``same_schedule`` they shuffle with one seed (WST: the
    same mini-batch schedule, so their attacks can share a pass), else each with its own."""
    g = torch.Generator().manual_seed(7)
    images = [torch.rand(samples, 3, 32, 32, generator=g) for _ in range(count)]
    labels = [torch.randint(0, 10, (samples,), generator=g) for _ in range(count)]
    updates = [client_update(model, x, y, lr=0.1, bn_mode=bn_mode, seed=0 if same_schedule else i, **client)
               for i, (x, y) in enumerate(zip(images, labels))]
    return images, labels, updates


@pytest.mark.parametrize("name,options,bn_mode,client", [
    ("convnet", dict(width=4), "train", {}),                           # train-mode BatchNorm: per-attack statistics
    ("resnet18", dict(width=0.125), "eval", {}),
    ("convnet", dict(width=4), "train", dict(epochs=2, batch_size=1)),  # WST: two unrolled steps per epoch
])
def test_one_vmap_pass_gives_each_attack_its_own_loss_and_gradient(name, options, bn_mode, client):
    model = build_model(name, 10, seed=0, **options)
    _, labels, updates = _updates(model, bn_mode=bn_mode, **client)
    known = bool(client)  # WST: the attacker unrolls each client's 4 steps
    attack = AttackConfig(priors=(("tv", 1e-4),), known_training_config=known)
    assert all(u.local_updates == (4 if known else 1) for u in updates)
    net = model.train(bn_mode == "train")
    params = {k: p.detach() for k, p in net.named_parameters()}
    buffers = {k: b.detach() for k, b in net.named_buffers()}
    victims = [_prepare(model, net, params, u, y, i, torch.device("cpu"), known) for i, (u, y) in
               enumerate(zip(updates, labels))]
    loss_and_gradient, _, inputs = _vectorized_objective(net, params, buffers, victims, attack, torch.device("cpu"))
    x = torch.rand(3, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    gradients, losses = loss_and_gradient(x, *inputs)
    for j, victim in enumerate(victims):
        batches = victim.update.batches if known else (torch.arange(2),)
        single = x[j].clone().requires_grad_(True)
        loss = matching_loss(net, params, buffers, single, victim.labels, batches, 0.1, victim.observed, "cosine",
                             {"tv": 1e-4})
        (gradient,) = torch.autograd.grad(loss, single)
        assert abs(losses[j].item() - loss.item()) <= 1e-6, (j, losses[j].item(), loss.item())
        assert (gradients[j] - gradient).norm() <= 2e-5 * gradient.norm(), j
    # and the attacks are not all the same attack: another victim's gradient is far from this one's
    assert (gradients[0] - gradients[1]).norm() > 0.1 * gradients[0].norm()


def test_the_two_formulations_simulate_the_same_update_and_attack():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)
    model = build_model("convnet", 10, seed=0, width=4)  # BatchNorm in train mode
    update = client_update(model, images, labels, lr=0.05, epochs=2, batch_size=2, seed=1)
    model.train()
    params = {k: p.detach().requires_grad_(True) for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    by_func = simulated_update(model, params, buffers, images, labels, update.batches, update.lr, formulation="func")
    by_autograd = simulated_update(model, params, buffers, images, labels, update.batches, update.lr,
                                   formulation="autograd")
    for k in params:  # both equal the client's own update (4 SGD steps), so each other
        assert torch.allclose(by_func[k], update.delta[k], atol=1e-6, rtol=1e-4), k
        assert torch.allclose(by_autograd[k], by_func[k], atol=1e-7, rtol=1e-5), k
    with pytest.raises(ValueError, match="unknown formulation 'jax'"):
        simulated_update(model, params, buffers, images, labels, update.batches, update.lr, formulation="jax")
    # the reconstruction, same seed: on the CPU both formulations run the same kernels in the same order
    kwargs = dict(labels=labels, iterations=20, priors={"tv": 1e-4}, known_training_config=True, seed=3,
                  vectorize=False)
    a, b = invert(model, update, formulation="autograd", **kwargs), invert(model, update, formulation="func", **kwargs)
    assert a.config["formulation"] == "autograd" and b.config["formulation"] == "func"
    assert torch.allclose(a.images, b.images, atol=1e-6) and a.loss_history == pytest.approx(b.loss_history, abs=1e-6)


@pytest.fixture(scope="module")
def leaking_victims():
    """Three victims of a setting where GIA-O leaks in 200 iterations (ConvNet w16 at 16², B = 1)."""
    data = load_dataset("patches", "test", image_size=16)
    model = build_model("convnet", 10, seed=0, width=16, image_size=16)
    victims = [victim_batch(data, 1, seed=s) for s in range(3)]
    updates = [client_update(model, x, y, lr=0.1) for x, y in victims]
    return model, victims, updates


def test_batched_attacks_leak_as_much_as_one_at_a_time(leaking_victims):
    model, victims, updates = leaking_victims
    kwargs = dict(labels=[y for _, y in victims], seeds=[0, 1, 2], iterations=200, priors={"tv": 1e-4})
    batched = invert_many(model, updates, vectorize=True, **kwargs)
    single = invert_many(model, updates, vectorize=False, **kwargs)
    assert {r.config["engine"] for r in batched} == {"vectorized"}
    assert {r.config["engine"] for r in single} == {"sequential"}
    for b, s in zip(batched, single):
        assert len(b.loss_history) == 200
        assert b.loss_history[0] == pytest.approx(s.loss_history[0], abs=1e-6)  # the same start, the same loss
    quality = {name: [float(psnr(r.images, x)[0]) for r, (x, _) in zip(recs, victims)]
               for name, recs in (("batched", batched), ("single", single))}
    print(quality)
    mean = {name: sum(v) / len(v) for name, v in quality.items()}
    assert min(mean.values()) >= 18.0  # both leak (τ1)
    assert abs(mean["batched"] - mean["single"]) <= 1.0  # the same attack: a gap within victim-to-victim noise


def test_restarts_run_as_one_pass_and_keep_the_lowest_final_loss(leaking_victims):
    model, victims, updates = leaking_victims
    (_, y), update = victims[0], updates[0]
    rec = invert(model, update, labels=y, iterations=30, restarts=3, vectorize=True, objective="l2")
    assert rec.config["engine"] == "vectorized" and len(rec.restart_losses) == 3
    assert len(set(rec.restart_losses)) == 3  # three different initialisations
    # the images kept are the restart with the lowest final loss: their loss, recomputed, is that minimum
    net = model.train()
    params = {k: p.detach() for k, p in net.named_parameters()}
    buffers = {k: b.detach() for k, b in net.named_buffers()}
    loss = matching_loss(net, params, buffers, rec.images, y, (torch.arange(1),), update.lr, update.delta, "l2", {})
    assert loss.item() == pytest.approx(min(rec.restart_losses), rel=1e-5)


def test_what_vmap_cannot_run_goes_one_at_a_time_with_one_warning():
    model = build_model("convnet", 10, seed=0, width=4, dropout=0.2)  # active dropout in train mode
    images, labels, updates = _updates(model)
    with pytest.warns(RuntimeWarning, match="one at a time.*dropout"):
        recs = invert_many(model, updates, labels=labels, iterations=3, vectorize=True)
    assert {r.config["engine"] for r in recs} == {"sequential"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per reason, not per call
        again = invert_many(model, updates, labels=labels, iterations=3, vectorize=True)
    assert all(torch.equal(a.images, b.images) for a, b in zip(recs, again))  # the sequential path, bit for bit
    plain = build_model("convnet", 10, seed=0, width=4)
    _, labels2, wst = _updates(plain, batch_size=1, same_schedule=False)  # three clients, three schedules
    assert len({tuple(torch.cat(u.batches).tolist()) for u in wst}) > 1
    recs = invert_many(plain, wst, labels=labels2, iterations=2, known_training_config=True, vectorize=True)
    assert {r.config["engine"] for r in recs} == {"vectorized"}  # one pass per schedule, none refused


def test_invert_many_checks_its_arguments():
    model = build_model("convnet", 10, seed=0, width=4)
    _, labels, updates = _updates(model)
    with pytest.raises(ValueError, match="at least one update"):
        invert_many(model, [])
    with pytest.raises(ValueError, match="3 updates, 2 label sets"):
        invert_many(model, updates, labels=labels[:2])
    with pytest.raises(ValueError, match="max_batch must be a positive integer"):
        invert_many(model, updates, labels=labels, max_batch=0)
    chunked = invert_many(model, updates, labels=labels, iterations=2, max_batch=2, vectorize=True)  # 2 + 1
    assert len(chunked) == 3 and {r.config["engine"] for r in chunked} == {"vectorized"}


TINY = dict(model_options=(("width", 4),), attack=AttackConfig(priors=(("tv", 1e-4),), iterations=5))


def test_attack_batches_group_victims_of_one_configuration():
    cell_a = [GiaExperiment(seed=s, **TINY) for s in range(5)]
    cell_b = [GiaExperiment(seed=s, epochs=2, **TINY) for s in range(2)]
    gia_l = GiaExperiment(attack=AttackConfig(method="gia-l"))
    groups = attack_batches(cell_a + [gia_l] + cell_b, max_size=4)
    assert [len(g) for g in groups] == [4, 1, 1, 2]  # a full group is closed; GIA-L runs alone
    assert groups == [cell_a[:4], cell_a[4:], [gia_l], cell_b]
    # at_least splits the largest groups so that parallel workers all have work, keeping the grid's order
    split = attack_batches(cell_a, at_least=3)
    assert sorted(len(g) for g in split) == [1, 2, 2] and [c for g in split for c in g] == cell_a
    assert [len(g) for g in attack_batches(cell_a, at_least=10)] == [1] * 5


def test_run_grid_batches_store_each_result_under_its_own_configuration(tmp_path):
    grid = [GiaExperiment(seed=s, **TINY) for s in range(3)]
    batched = run_grid(grid, root=tmp_path / "batched", progress=False, batched=True)
    single = run_grid(grid, root=tmp_path / "single", progress=False, batched=False)
    for b, s, config in zip(batched, single, grid):
        assert b["hash"] == s["hash"] == config_hash(config) and not b["cached"]
        assert b["arrays"]["loss_history"][0] == pytest.approx(s["arrays"]["loss_history"][0], abs=1e-6)
    again = run_grid(grid, root=tmp_path / "batched", progress=False, batched=True)
    assert all(r["cached"] for r in again)
    assert [r["psnr"] for r in again] == [r["psnr"] for r in batched]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_replay_equals_eager_iterations():
    model = build_model("convnet", 10, seed=0, width=8)
    images, labels, updates = _updates(model, samples=1)
    kwargs = dict(labels=[y.cuda() for y in labels], iterations=12, priors={"tv": 1e-4}, device="cuda")
    for vectorize in (False, True):
        graphed = invert_many(model, updates, cuda_graph=True, vectorize=vectorize, **kwargs)
        eager = invert_many(model, updates, cuda_graph=False, vectorize=vectorize, **kwargs)
        for g, e in zip(graphed, eager):
            assert g.config["engine"].startswith("cuda-graph")
            assert g.loss_history == pytest.approx(e.loss_history, rel=1e-4)


def test_the_benchmark_runs():
    """`make bench`'s script end to end on the smallest case (plumbing only: a benchmark, not a timed test)."""
    out = subprocess.run([sys.executable, "benchmarks/bench.py", "--cases", "convnet-1", "--iterations", "1", "2",
                          "--repeats", "1", "--rounds", "1", "--batch", "2", "--skip-igsa"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "reference" in out.stdout and "single" in out.stdout and "batched" in out.stdout and "MiB" in out.stdout
