"""`make bench`: what a gradient-inversion iteration costs, relative to one client training step, and IGSA throughput.

1. For each case (model, batch size B, BatchNorm mode) and device, the time of one iteration of GIA-O (cosine + TV,
   Geiping et al.'s signed Adam and box projection) on each path, and its ratio to one SGD step of the client
   (forward, backward, update) on the same model and batch:

   * ``reference`` — the plain loop that inversefed and breaching run, written out here: forward, ``autograd.grad``
     with ``create_graph``, cosine distance + TV, backward to the pixels, sign, Adam, clamp;
   * ``single`` — ``giasok.attacks.invert`` (one attack: the formulation it chooses for the device);
   * ``single (func)`` — the same attack with the ``torch.func`` formulation (what the batched path uses);
   * ``batched`` — ``invert_many`` over ``--batch`` attacks (other clients' updates) in one vmap pass, per attack;
   * ``graph`` / ``batched+graph`` — the same, with the iteration captured as a CUDA graph (CUDA only).

   The paths are timed in turns (``--rounds``), each keeping its best, so that a busy spell of a shared machine
   does not land on one path alone.

   An iteration's time is the slope of the wall time against the iteration count (two runs of n₁ and n₂
   iterations, each the best of ``--repeats``), so set-up costs cancel. Peak memory per attack is the growth of
   the peak over the set-up, each path in a fresh process: CUDA's allocator peak, or on the CPU the resident set
   sampled every millisecond (Linux).
2. IGSA (§5.1.1): directions per second for each estimator, vectorised in chunks (``chunk_size`` > 1,
   ``vmap``) against one direction at a time (a plain loop), at one 32×32 input.

    .venv/bin/python benchmarks/bench.py [--device cuda] [--cases convnet-1 resnet18-1] [--skip-igsa]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time

import torch

from giasok.attacks import invert_many
from giasok.fl import client_update
from giasok.igsa import ESTIMATORS, random_directions, sensitivities
from giasok.models import build_model

# name -> (model, options, B, BatchNorm mode): the cases (ConvNet-32 of Geiping et al. in train mode,
# ResNet-18 with eval-mode BatchNorm)
CASES = {
    "convnet-1": ("convnet", dict(width=32), 1, "train"),
    "convnet-4": ("convnet", dict(width=32), 4, "train"),
    "resnet18-1": ("resnet18", dict(), 1, "eval"),
}
PATHS = ("reference", "single", "single (func)", "batched", "graph", "batched+graph")
PRIORS = {"tv": 1e-4}


def _case(name, device):
    model_name, options, batch, bn_mode = CASES[name]
    model = build_model(model_name, 10, seed=0, **options)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (batch,), generator=g)
    update = client_update(model, images, labels, lr=0.1, bn_mode=bn_mode, device=device)
    return model, images.to(device), labels.to(device), update, bn_mode


def _slope(run, n1, n2, repeats, sync):
    """Seconds per iteration: (best time of n₂ iterations − best of n₁) / (n₂ − n₁)."""
    run(2)
    sync()
    best = {}
    for n in (n1, n2):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(n)
            sync()
            times.append(time.perf_counter() - start)
        best[n] = min(times)
    return max(best[n2] - best[n1], 0.0) / (n2 - n1)


def _train_step(model, images, labels, bn_mode, device):
    net = model.to(device).train(bn_mode == "train")
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)

    def run(n):
        for _ in range(n):
            sgd.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(images), labels).backward()
            sgd.step()
    return run


def _reference(model, images, labels, update, bn_mode, device):
    """The plain loop of inversefed/breaching: autograd.grad(create_graph=True), cosine + TV, signed Adam, clamp."""
    net = model.to(device).train(bn_mode == "train")
    params = [p for p in net.parameters()]
    observed = [-update.delta[k].to(device) / update.lr for k, _ in net.named_parameters()]
    observed_norm = torch.stack([o.pow(2).sum() for o in observed]).sum().sqrt()

    def run(n):
        x = torch.rand_like(images).requires_grad_(True)
        adam = torch.optim.Adam([x], lr=0.1)
        for _ in range(n):
            adam.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(x), labels)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * o).sum() for g, o in zip(grads, observed))
            norm = sum(g.pow(2).sum() for g in grads).sqrt()
            tv = (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
            (1 - dot / (norm * observed_norm) + PRIORS["tv"] * tv).backward(inputs=[x])
            x.grad.sign_()
            adam.step()
            with torch.no_grad():
                x.clamp_(0, 1)
    return run


def _ours(model, labels, update, device, *, attacks=1, vectorize=False, cuda_graph=False, formulation=None):
    updates = [update] * attacks if vectorize else [update]

    def run(n):
        invert_many(model, updates, labels=[labels] * len(updates), iterations=n, priors=PRIORS, device=device,
                    vectorize=vectorize, cuda_graph=cuda_graph, formulation=formulation)
    return run, len(updates)


def _path(path, model, images, labels, update, bn_mode, device, batch):
    """(run(n), attacks per run) for one path."""
    if path == "reference":
        return _reference(model, images, labels, update, bn_mode, device), 1
    graph = path.endswith("graph")
    if path.startswith("batched"):
        return _ours(model, labels, update, device, attacks=batch, vectorize=True, cuda_graph=graph)
    return _ours(model, labels, update, device, cuda_graph=graph,
                 formulation="func" if path == "single (func)" else None)


def _paths(device):
    return [p for p in PATHS if device.startswith("cuda") or "graph" not in p]


def time_case(name, device, batch, repeats, n1, n2, rounds=2):
    """Seconds per iteration (per attack) of the training step and every path. The paths are timed in turn, and
    the whole turn ``rounds`` times, keeping each one's best: a shared machine's slow spells then fall on all
    paths alike instead of on whichever ran during them."""
    model, images, labels, update, bn_mode = _case(name, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    runs = {"train step": (_train_step(model, images, labels, bn_mode, device), 1)}
    for path in _paths(device):
        runs[path] = _path(path, model, images, labels, update, bn_mode, device, batch)
    best = {}
    for _ in range(rounds):
        for path, (run, attacks) in runs.items():
            seconds = _slope(run, n1, n2, repeats, sync) / attacks
            best[path] = min(best.get(path, seconds), seconds)
    return best


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_probe(name, device, path, batch, queue):
    """In a fresh process: the peak memory one attack of ``path`` adds over its set-up, in MiB (CUDA: the
    allocator's peak; CPU: the resident set, sampled every millisecond while the attack runs)."""
    torch.set_num_threads(1)
    model, images, labels, update, bn_mode = _case(name, device)
    run, attacks = _path(path, model, images, labels, update, bn_mode, device, batch)
    run(1)  # warm-up: the allocator's pools and the model copies exist before the baseline
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run(3)
        torch.cuda.synchronize()
        queue.put((torch.cuda.max_memory_allocated() - base) / attacks / 2**20)
        return
    base, peak, done = _resident_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _resident_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run(3)
    done.set()
    sampler.join()
    queue.put(max(peak[0] - base, 0) / attacks / 2**20)


def peak_memory(name, device, path, batch):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_memory_probe, args=(name, device, path, batch, queue))
    process.start()
    value = queue.get()
    process.join()
    return value


def igsa_throughput(name, options, estimator, chunk_size, samples, device):
    """Directions per second of ``giasok.igsa.sensitivities`` (best of two runs after a warm-up)."""
    model = build_model(name, 10, seed=0, **options)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    directions = random_directions((3, 32, 32), samples, seed=0)

    def run():
        sensitivities(model, image, 3, directions, estimator=estimator, chunk_size=chunk_size, device=device)

    run()
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return samples / best


IGSA_CASES = [("convnet", dict(width=32)), ("resnet18", dict(width=0.125)), ("googlenet", dict(width=0.125))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch", type=int, default=None, help="attacks per batched pass (default: 16 on CUDA, 4 on the CPU)")
    parser.add_argument("--iterations", type=int, nargs=2, default=None, metavar=("N1", "N2"),
                        help="iteration counts whose difference gives the slope (default: 5 25 on the CPU, 20 120 on CUDA)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per iteration count (the best is kept)")
    parser.add_argument("--rounds", type=int, default=2, help="turns over all paths (each path's best is kept)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-igsa", action="store_true")
    parser.add_argument("--igsa-samples", type=int, default=64, help="IGSA directions K per measurement")
    parser.add_argument("--igsa-chunk", type=int, default=32, help="directions per vectorised chunk")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    n1, n2 = args.iterations or ((20, 120) if cuda else (5, 25))
    args.batch = args.batch or (16 if cuda else 4)
    gpu = f"  gpu={torch.cuda.get_device_name()}" if cuda else ""
    print(f"device={args.device}{gpu}  threads={torch.get_num_threads()}  torch={torch.__version__}  "
          f"batch={args.batch}  iterations={n1}→{n2}")
    print("ms per iteration per attack (ratio to one client training step)" +
          ("" if args.skip_memory else "; peak MiB per attack in brackets"))
    for name in args.cases:
        times = time_case(name, args.device, args.batch, args.repeats, n1, n2, args.rounds)
        train = times.pop("train step")
        cells = [f"train step {1e3 * train:.2f} ms"]
        for path, seconds in times.items():
            memory = "" if args.skip_memory else f" [{peak_memory(name, args.device, path, args.batch):.0f} MiB]"
            cells.append(f"{path} {1e3 * seconds:.2f} ({seconds / train:.2f}×){memory}")
        print(f"{name:<11} " + " | ".join(cells), flush=True)
    if args.skip_igsa:
        return
    print(f"\nIGSA throughput (directions/s, K={args.igsa_samples}, one 32×32 input)")
    print(f"{'model':<10} {'estimator':<18} {'one at a time':>14} {'batched':>10} {'chunk':>6} {'speed-up':>9}")
    for name, options in IGSA_CASES:
        for estimator in ESTIMATORS:
            single = igsa_throughput(name, options, estimator, 1, args.igsa_samples, args.device)
            batched = igsa_throughput(name, options, estimator, args.igsa_chunk, args.igsa_samples, args.device)
            print(f"{name:<10} {estimator:<18} {single:>14.1f} {batched:>10.1f} {args.igsa_chunk:>6} "
                  f"{batched / single:>9.2f}")


if __name__ == "__main__":
    main()
