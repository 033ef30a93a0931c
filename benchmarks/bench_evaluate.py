"""The evaluation engine against the peer-style loop, on the same path (issue: geometry, Speed).

One run, same machine, same 21 configurations of the paper's MLP (784-512-512-10) along a linear path, the
full MNIST-format train split:
* engine: ``toroids.evaluate.evaluate_many`` — data materialized once as tensors, large chunks,
  ``functional_call`` per point;
* peer-style: torchvision ``MNIST`` with ``ToTensor`` and ``Normalize``, a ``DataLoader`` with batch 128,
  ``load_state_dict`` per point.
Prints the ratio (goal ≥ 10×) and the engine's FLOP rate as a fraction of the measured matmul rate
(goal ≥ 70%).

    .venv/bin/python benchmarks/bench_evaluate.py [--n-train 60000] [--points 21] [--peer-points 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import matmul_gflops, timeit, write_mnist  # noqa: E402

from toroids import geometry  # noqa: E402
from toroids.data import load_dataset  # noqa: E402
from toroids.evaluate import evaluate_many  # noqa: E402
from toroids.models import build_model  # noqa: E402


def peer_loop(model: torch.nn.Module, states: list, root: Path) -> list[float]:
    from torchvision import datasets, transforms

    ds = datasets.MNIST(
        str(root),
        train=True,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]),
    )
    loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=False)
    errors = []
    with torch.no_grad():
        for state in states:
            model.load_state_dict(state)
            model.eval()
            wrong = n = 0
            for x, y in loader:
                wrong += int((model(x).argmax(1) != y).sum())
                n += len(y)
            errors.append(wrong / n)
    return errors


def main(n_train: int = 60000, points: int = 21, device: str = "cpu", peer_points: int = 2) -> dict:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_mnist(Path(tmp), n_train=n_train, n_test=1000)
        data = load_dataset("mnist", root=root, download=False)
        a = build_model("mlp", data.input_shape, 10, seed=0, widths=[512, 512]).to(device)
        b = build_model("mlp", data.input_shape, 10, seed=1, widths=[512, 512]).to(device)
        xs = torch.linspace(0, 1, points).tolist()
        states = geometry.linear_path(a.state_dict(), b.state_dict(), xs)
        x, y = data.x_train.to(device), data.y_train.to(device)

        def engine() -> None:
            evaluate_many(a, states, {"train": (x, y)}, chunk_size=8192)
            if device == "cuda":
                torch.cuda.synchronize()

        peak = matmul_gflops(device=device)
        t_engine = timeit(engine, repeats=3)
        peak = max(peak, matmul_gflops(device=device))  # the better of two readings: load only slows it
        # Every point of the peer loop is one more identical pass over the data: it is timed on the first
        # `peer_points` points and scaled to all of them (the full loop takes minutes on a laptop CPU).
        cpu_states = [{k: v.cpu() for k, v in st.items()} for st in states[:peer_points]]
        fresh = build_model("mlp", data.input_shape, 10, widths=[512, 512])
        t_peer = (
            timeit(lambda: peer_loop(fresh, cpu_states, root), repeats=1, warmup=0) * points / len(cpu_states)
        )
    flops = 2 * n_train * points * (784 * 512 + 512 * 512 + 512 * 10)
    rate = flops / t_engine / 1e9
    out = {
        "n_train": n_train,
        "points": points,
        "device": device,
        "threads": torch.get_num_threads(),
        "engine_s": t_engine,
        "peer_s": t_peer,
        "peer_points_timed": peer_points,
        "speedup": t_peer / t_engine,
        "engine_gflops": rate,
        "matmul_gflops": peak,
        "fraction_of_matmul": rate / peak,
    }
    print(
        f"evaluation of {points} path points, MLP 784-512-512-10, {n_train} train samples, {device}, "
        f"{out['threads']} threads"
    )
    print(f"  engine            {t_engine:8.2f} s   {rate:7.1f} GFLOP/s")
    print(f"  peer-style loop   {t_peer:8.2f} s   (timed on {peer_points} points, scaled to {points})")
    print(f"  speed-up          {out['speedup']:8.1f} x   (goal >= 10x)")
    frac = 100 * out["fraction_of_matmul"]
    print(f"  matmul rate       {peak:8.1f} GFLOP/s; engine at {frac:.0f}% of it (goal >= 70%)")
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--points", type=int, default=21)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--peer-points", type=int, default=2, help="points on which the peer loop is timed")
    args = p.parse_args()
    main(args.n_train, args.points, args.device, args.peer_points)
