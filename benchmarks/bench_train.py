"""Our training loop against a bare PyTorch loop, same model, same data, same batches (issue: reliability
and speed, measured; goal: overhead ≤ 5%).

* ours: ``toroids.train.train(sampler="sgd", ...)`` for E epochs, no epoch checkpoint (and, on further
  lines, with the epoch checkpoint at the train rule's cadence, ``CHECKPOINT_EVERY_S``, and after every
  epoch, the cadence before it);
* bare: a hand-written loop over the same tensors: ``build_model`` (the same initialization),
  ``torch.optim.SGD`` with Nesterov momentum 0.9, the cosine learning rate set once per epoch, the same
  minibatch permutation per epoch, ``F.cross_entropy``; the running loss and error of the epoch are kept
  with ``loss.item()`` and ``int(wrong.sum())`` per step, the tutorial way (ours does the same bookkeeping,
  which also checks the loss for NaN).

Both sides do the same evaluations: ours evaluates the whole test split after every epoch and the train and
test splits at the end, so the bare loop does too (an equivalent is included, not excluded). The two runs
must end with bitwise-equal weights on the CPU (checked and printed: it proves they did the same work).

Two problems, batch 128, interleaved rounds (the order alternates), medians, the overhead as the median of
the per-round ratios (and the ratio of the fastest runs); on the CPU the clock is
the process's CPU time (with one intra-op thread all the work is this thread's, and other processes on a
shared machine do not count), on a GPU the wall time after a synchronize:
* ``digits``: the default study's MLP 64-128-128-10 on scikit-learn's digits (1347 train samples, 11 steps
  per epoch): small steps, where per-step overhead shows;
* ``synthetic``: the paper's MLP 784-512-512-10 on 10 000 random 784-dim inputs, 10 classes.

    .venv/bin/python benchmarks/bench_train.py [--epochs 60] [--repeats 10] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from toroids.data import Dataset, load_dataset  # noqa: E402
from toroids.models import build_model  # noqa: E402
from toroids.seeds import derive  # noqa: E402
from toroids.train import CHECKPOINT_EVERY_S, init_seed, train  # noqa: E402

LR, MOMENTUM, SEED, BATCH, CHUNK = 0.02, 0.9, 0, 128, 8192


def synthetic(n: int = 10_000, d: int = 784, classes: int = 10, seed: int = 0) -> Dataset:
    """Random inputs and labels, 1000 test samples (the speed does not depend on what is learned)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 1000, d, generator=g)
    y = torch.randint(classes, (n + 1000,), generator=g)
    return Dataset("synthetic", x[:n], y[:n], x[n:], y[n:], classes)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours(
    data: Dataset,
    widths: list[int],
    epochs: int,
    device: torch.device,
    checkpoint: Path | None = None,
    every_s: float = CHECKPOINT_EVERY_S,
):
    """``toroids.train.train`` as the train rule calls it (minus the data loading); returns the model."""
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # an existing checkpoint would be resumed from
    res = train(
        arch="mlp",
        model_options={"widths": widths},
        data=data,
        sampler="sgd",
        sampler_options={"lr": LR, "momentum": MOMENTUM, "nesterov": True},
        epochs=epochs,
        batch_size=BATCH,
        seed=SEED,
        device=device,
        checkpoint=checkpoint,
        checkpoint_every_s=every_s,
        log=lambda msg: None,
        chunk_size=CHUNK,
    )
    _sync(device)
    return res.model


@torch.no_grad()
def _errors(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    wrong = torch.zeros((), device=x.device)
    loss = torch.zeros((), device=x.device)
    for xb, yb in zip(x.split(CHUNK), y.split(CHUNK)):
        out = model(xb)
        wrong += (out.argmax(1) != yb).sum()
        loss += F.cross_entropy(out, yb, reduction="sum")
    return float(wrong) / len(y), float(loss) / len(y)


def bare(data: Dataset, widths: list[int], epochs: int, device: torch.device) -> torch.nn.Module:
    """The hand-written loop: same initialization, optimizer, schedule, batches and evaluations."""
    torch.manual_seed(SEED)
    model = build_model("mlp", data.input_shape, data.n_classes, seed=init_seed(SEED), widths=widths)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    x, y = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    n = len(y)
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = LR * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        g = torch.Generator().manual_seed(derive(SEED, "order", 0, epoch))
        perm = torch.randperm(n, generator=g).to(device)
        model.train()
        total, wrong = 0.0, 0
        for idx in perm.split(BATCH):
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            wrong += int((out.argmax(1) != yb).sum())
        _ = total / n, wrong / n
        _errors(model, x_test, y_test)
    _errors(model, x, y), _errors(model, x_test, y_test)
    _sync(device)
    return model.eval()


def _clock(device: torch.device) -> Callable[[], float]:
    """The CPU time of this process on the CPU (other processes on a shared machine do not count; one
    intra-op thread runs in this thread), the wall time on a GPU (the work is the device's)."""
    return time.perf_counter if device.type == "cuda" else time.process_time


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int, clock: Callable[[], float]) -> dict:
    """Seconds of each fn over ``repeats`` rounds, after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for i in range(repeats):
        for k in order if i % 2 == 0 else order[::-1]:  # alternate the order: no variant always goes first
            t0 = clock()
            fns[k]()
            times[k].append(clock() - t0)
    return times


def bench_problem(
    data: Dataset, widths: list[int], epochs: int, repeats: int, device: torch.device
) -> dict[str, Any]:
    """Median times of ours, bare and ours with the epoch checkpoint; the overheads are the median over the
    rounds of the ratio measured within each round (the two sides run back to back, so slow drifts of a
    shared machine cancel); the ratio of the fastest runs is returned too."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "epoch_checkpoint.safetensors"
        a = ours(data, widths, epochs, device).state_dict()
        b = bare(data, widths, epochs, device).state_dict()
        same = all(torch.equal(a[k], b[k]) for k in a)
        times = _interleaved(
            {
                "ours": lambda: ours(data, widths, epochs, device),
                "bare": lambda: bare(data, widths, epochs, device),
                "ours+ckpt": lambda: ours(data, widths, epochs, device, ckpt),
                "ours+ckpt/epoch": lambda: ours(data, widths, epochs, device, ckpt, every_s=0.0),
            },
            repeats,
            _clock(device),
        )
    t = {k: statistics.median(v) for k, v in times.items()}
    fastest = {k: min(v) for k, v in times.items()}

    def paired(key: str) -> float:  # the median over rounds of the ratio within a round, minus 1
        return statistics.median(a / b for a, b in zip(times[key], times["bare"])) - 1

    steps = epochs * math.ceil(len(data.y_train) / BATCH)
    return {
        **t,
        "fastest": fastest,
        "repeats": repeats,
        "epochs": epochs,
        "steps": steps,
        "same_weights": same,
        "overhead": paired("ours"),
        "overhead_ckpt": paired("ours+ckpt"),
        "overhead_ckpt_epoch": paired("ours+ckpt/epoch"),
        "overhead_fastest": fastest["ours"] / fastest["bare"] - 1,
        "ms_per_step_bare": 1e3 * t["bare"] / steps,
        "clock": "wall" if device.type == "cuda" else "cpu",
    }


def main(
    epochs: int = 60, repeats: int = 10, threads: int | None = 1, device: str = "cpu", quick: bool = False
) -> dict[str, dict[str, Any]]:
    """Both problems; returns ``{problem: {measure: value}}`` (seconds, ratios). ``quick``: fewer epochs
    and repeats, a 2000-sample synthetic set (a smoke check, not a measurement)."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    problems = {
        "digits 64-128-128-10": (load_dataset("digits"), [128, 128], epochs),
        "synthetic 784-512-512-10, n=10k": (
            synthetic(2000 if quick else 10_000),
            [512, 512],
            max(1, epochs // 30),
        ),
    }
    out = {}
    for name, (data, widths, e) in problems.items():
        # the synthetic problem's runs take seconds each: fewer repeats (as in bench_samplers.py)
        reps = repeats if data.x_train.shape[0] < 5000 else max(1, min(5, repeats))
        if quick:
            e, reps = max(1, e // 4), min(reps, 3)
        out[name] = bench_problem(data, widths, e, reps, dev)
    _print(out, dev)
    return out


def _print(results: dict[str, dict[str, Any]], device: torch.device) -> None:
    print(
        f"training: ours vs a bare PyTorch loop, device {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, batch {BATCH}, sgd Nesterov, cosine lr"
    )
    print("  both sides evaluate the test split after every epoch and train+test at the end;")
    print(f"  +ckpt: the epoch checkpoint every {CHECKPOINT_EVERY_S:g} s and after the last epoch (the rule)")
    print("  +ckpt/ep: after every epoch")
    clock = "wall time" if device.type == "cuda" else "CPU time of the process (one thread)"
    print(f"  seconds: {clock}, median of the interleaved rounds; overhead: median of the per-round ratios")
    head = (
        f"  {'problem':34s} {'epochs':>6s} {'reps':>4s} {'bare [s]':>9s} {'ours [s]':>9s} {'+ckpt [s]':>9s} "
        f"{'overhead':>9s} {'+ckpt':>8s} {'+ckpt/ep':>9s} {'same weights':>12s} {'fastest ovh':>11s}"
    )
    print(head)
    for name, r in results.items():
        print(
            f"  {name:34s} {r['epochs']:6d} {r['repeats']:4d} {r['bare']:9.3f} {r['ours']:9.3f} "
            f"{r['ours+ckpt']:9.3f} {100 * r['overhead']:8.1f}% {100 * r['overhead_ckpt']:7.1f}% "
            f"{100 * r['overhead_ckpt_epoch']:8.1f}% "
            f"{str(r['same_weights']):>12s} {100 * r['overhead_fastest']:10.1f}%"
        )
    worst = max(r["overhead"] for r in results.values())
    print(f"  worst overhead of ours (no checkpoint): {100 * worst:.1f}% (goal <= 5%)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=60, help="digits epochs (synthetic: a thirtieth)")
    ap.add_argument("--repeats", type=int, default=10, help="digits repeats (synthetic: at most 5)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    main(a.epochs, a.repeats, a.threads, a.device, a.quick)
