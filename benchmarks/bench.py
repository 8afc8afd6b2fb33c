"""`make bench`: what one GIA-O iteration costs relative to one client training step, and IGSA throughput.

1. For each model and batch size: the median time of one SGD step of the client (forward, backward, update)
   and of one GIA-O iteration (simulate the update on the dummy batch, cosine distance + TV, backward to the
   pixels, Adam step), measured with torch.utils.benchmark, and their ratio.
2. IGSA (§5.1.1): directions per second for each estimator, vectorised in chunks (``chunk_size`` > 1,
   ``vmap``) against one direction at a time (a plain loop), at one 32×32 input.
"""
import argparse

import torch
from torch.utils import benchmark

from giasok.attacks import matching_loss
from giasok.igsa import ESTIMATORS, random_directions, sensitivities
from giasok.models import build_model

CASES = [("convnet", dict(width=32)), ("resnet18", dict())]


def time_case(name, options, batch, device, min_run_time):
    model = build_model(name, 10, seed=0, **options).to(device).train()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, 32, 32, generator=g).to(device)
    labels = torch.randint(0, 10, (batch,), generator=g).to(device)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)

    def train_step():
        sgd.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        sgd.step()

    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    observed = {k: torch.randn_like(p) for k, p in params.items()}
    dummy = torch.rand_like(images).requires_grad_(True)
    adam = torch.optim.Adam([dummy], lr=0.1)
    batches = (torch.arange(batch, device=device),)

    def attack_iteration():
        adam.zero_grad(set_to_none=True)
        matching_loss(model, params, buffers, dummy, labels, batches, 0.1, observed, "cosine", {"tv": 1e-4}).backward()
        dummy.grad.sign_()
        adam.step()

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    out = {}
    for label, fn in [("train step", train_step), ("GIA-O iteration", attack_iteration)]:
        fn()  # warm-up
        sync()
        timer = benchmark.Timer(stmt="fn(); sync()", globals={"fn": fn, "sync": sync}, num_threads=torch.get_num_threads())
        out[label] = timer.blocked_autorange(min_run_time=min_run_time).median
    return out


IGSA_CASES = [("convnet", dict(width=32)), ("resnet18", dict(width=0.125)), ("googlenet", dict(width=0.125))]


def igsa_throughput(name, options, estimator, chunk_size, samples, device):
    """Directions per second of ``giasok.igsa.sensitivities`` (best of two runs after a warm-up)."""
    import time

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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds of measurement per timing")
    parser.add_argument("--igsa-samples", type=int, default=64, help="IGSA directions K per measurement")
    parser.add_argument("--igsa-chunk", type=int, default=32, help="directions per vectorised chunk")
    args = parser.parse_args()
    print(f"device={args.device}  threads={torch.get_num_threads()}  torch={torch.__version__}")
    print(f"{'model':<10} {'B':>3} {'train step (ms)':>16} {'GIA-O iter (ms)':>16} {'ratio':>7}")
    for name, options in CASES:
        for batch in (1, 4):
            t = time_case(name, options, batch, args.device, args.min_run_time)
            ratio = t["GIA-O iteration"] / t["train step"]
            print(f"{name:<10} {batch:>3} {1e3 * t['train step']:>16.2f} {1e3 * t['GIA-O iteration']:>16.2f} {ratio:>7.2f}")
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
