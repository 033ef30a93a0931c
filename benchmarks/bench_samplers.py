"""RSGD's cost against the y networks' own compute (issue: the solution samplers, efficiency).

One run, same machine, two problems:
* ``digits``: the default study's MLP 64-128-128-10 on scikit-learn's digits (1347 train samples);
* ``synthetic``: an MLP 784-512-512-10 (the paper's MLP) on 10 000 random 784-dim inputs, 10 classes.

Batch 128 everywhere. For each problem it times (median of interleaved repeats, after a warm-up):
* ``sgd×5``: five epochs of the ``sgd`` sampler (what y = 5 independent networks cost);
* ``rsgd seq``: one epoch of ``rsgd`` with 5 replicas, replicas run in turn (``stacked: false``, the default);
* ``rsgd stacked``: the same epoch with the replicas batched by ``torch.func.vmap`` (``stacked: true``);
and prints rsgd seq / sgd×5 (goal ≤ 1.1), rsgd stacked / sgd×5 and stacked / seq; plus the cost of one
fused coupling update (grad += 2γ (w − w̄) and the replicas' Nesterov step) against one SGD step of the 5
networks' optimizers.

    .venv/bin/python benchmarks/bench_samplers.py [--repeats 5] [--threads 1] [--device cpu]

One intra-op thread by default: on the shared 2-core box, two threads ran 3-5× slower whenever other jobs
were running (the ratios are what matters; pass --threads 2, or 0 for torch's default, on a quiet machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from toroids.data import Dataset, load_dataset  # noqa: E402
from toroids.models import build_model  # noqa: E402
from toroids.samplers import SAMPLERS  # noqa: E402

REPLICAS = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic(n: int = 10_000, d: int = 784, classes: int = 10, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 1000, d, generator=g)
    y = torch.randint(classes, (n + 1000,), generator=g)
    return Dataset("synthetic", x[:n], y[:n], x[n:], y[n:], classes)


def _sampler(name: str, data: Dataset, widths: list[int], options: dict, device: torch.device) -> Any:
    def factory(replica: int) -> torch.nn.Module:
        return build_model("mlp", data.input_shape, data.n_classes, seed=replica, widths=widths)

    # many nominal epochs, so that the cosine lr stays away from 0 over the timed epochs
    return SAMPLERS[name](factory, data, options, epochs=1000, batch_size=128, seed=0, device=device)


def _interleaved(
    fns: dict[str, Callable[[], None]], repeats: int, device: torch.device, warmup: bool = True
) -> dict[str, float]:
    """Median seconds of each fn, run round-robin (so that load changes hit every variant alike)."""
    for fn in fns.values() if warmup else ():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _subset(data: Dataset, n: int) -> Dataset:
    return Dataset(data.name, data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, data.n_classes)


def bench_problem(data: Dataset, widths: list[int], repeats: int, device: torch.device) -> dict[str, float]:
    # warm-up (kernels, allocator, vmap tracing) on a 1024-sample subset, same shapes, one epoch each
    small = _subset(data, 1024)
    _sampler("sgd", small, widths, {"lr": 0.02}, device).train_epoch(0)
    _sampler("rsgd", small, widths, {"replicas": REPLICAS}, device).train_epoch(0)
    _sampler("rsgd", small, widths, {"replicas": REPLICAS, "stacked": True}, device).train_epoch(0)
    sgd = _sampler("sgd", data, widths, {"lr": 0.02}, device)
    seq = _sampler("rsgd", data, widths, {"replicas": REPLICAS}, device)
    stk = _sampler("rsgd", data, widths, {"replicas": REPLICAS, "stacked": True}, device)
    epoch = {"sgd": 0, "seq": 0, "stk": 0}

    def sgd_epochs() -> None:
        for _ in range(REPLICAS):
            sgd.train_epoch(epoch["sgd"])
            epoch["sgd"] += 1

    def one(sampler: Any, key: str) -> Callable[[], None]:
        def run() -> None:
            sampler.train_epoch(epoch[key])
            epoch[key] += 1

        return run

    fns = {"sgd×5": sgd_epochs, "rsgd seq": one(seq, "seq"), "rsgd stacked": one(stk, "stk")}
    t = _interleaved(fns, repeats, device, warmup=False)
    t.update(_coupling_cost(seq, data, widths, repeats, device))
    t["steps/epoch"] = seq.steps_per_epoch
    t["params/replica"] = seq.flat.shape[1]
    return t


def _coupling_cost(rsgd: Any, data: Dataset, widths: list[int], repeats: int, device: torch.device) -> dict:
    """Seconds per step of RSGD's fused coupling + optimizer update, and of 5 plain SGD optimizer steps."""
    nets = [
        build_model("mlp", data.input_shape, data.n_classes, seed=a, widths=widths).to(device)
        for a in range(5)
    ]
    opts = [torch.optim.SGD(n.parameters(), lr=0.01, momentum=0.9, nesterov=True) for n in nets]
    for n in nets:
        for p in n.parameters():
            p.grad = torch.zeros_like(p)
    k = 50

    def fused() -> None:
        for _ in range(k):
            rsgd.couple(1e-6)
            rsgd.opt.step()

    def plain() -> None:
        for _ in range(k):
            for o in opts:
                o.step()

    t = _interleaved({"coupling+step": fused, "5 sgd steps": plain}, repeats, device)
    return {key: v / k for key, v in t.items()}


def main(repeats: int = 5, threads: int | None = 1, device: str = "cpu") -> dict:
    """Run both problems, print the table, return ``{problem: {measure: value}}`` (seconds, ratios)."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    torch.manual_seed(0)
    problems = {
        "digits 64-128-128-10": (load_dataset("digits"), [128, 128]),
        "synthetic 784-512-512-10, n=10k": (synthetic(), [512, 512]),
    }
    results = {}
    for name, (data, widths) in problems.items():
        reps = repeats if data.x_train.shape[0] < 5000 else max(1, min(3, repeats))
        t = bench_problem(data, widths, reps, dev)
        t["seq/sgd×5"] = t["rsgd seq"] / t["sgd×5"]
        t["stacked/sgd×5"] = t["rsgd stacked"] / t["sgd×5"]
        t["stacked/seq"] = t["rsgd stacked"] / t["rsgd seq"]
        results[name] = t
    _print(results, dev)
    return results


def _print(results: dict, device: torch.device) -> None:
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {REPLICAS} replicas"
    )
    head = (
        f"{'problem':34s} {'sgd×5 [s]':>10s} {'rsgd seq':>10s} {'stacked':>10s} "
        f"{'seq/sgd×5':>10s} {'stk/sgd×5':>10s} {'stk/seq':>8s} {'coupl [ms]':>10s} {'5 sgd [ms]':>10s}"
    )
    print(head)
    print("-" * len(head))
    for name, t in results.items():
        print(
            f"{name:34s} {t['sgd×5']:10.3f} {t['rsgd seq']:10.3f} {t['rsgd stacked']:10.3f} "
            f"{t['seq/sgd×5']:10.2f} {t['stacked/sgd×5']:10.2f} {t['stacked/seq']:8.2f} "
            f"{1e3 * t['coupling+step']:10.3f} {1e3 * t['5 sgd steps']:10.3f}"
        )
    worst = max(t["seq/sgd×5"] for t in results.values())
    print(f"rsgd (default, sequential) / 5 sgd epochs: worst {worst:.2f} (goal ≤ 1.1)")
    print("times: one rsgd epoch (5 replicas) vs 5 sgd epochs; coupling columns: per step")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    main(a.repeats, a.threads, a.device)
