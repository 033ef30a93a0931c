"""Every benchmark, each in a process of its own, and one table of ratios against their goals.

    .venv/bin/python benchmarks/run.py                   # the full measurements (~5 min on 2 CPU cores)
    .venv/bin/python benchmarks/run.py --quick           # small sizes: a smoke check, not a measurement
    .venv/bin/python benchmarks/run.py --device cuda     # the same on a GPU (benchmarks/gpu.sh)
    .venv/bin/python benchmarks/run.py --with-study      # also run the default study (several minutes)

Parts (``--only`` picks some):
* ``train``: ``toroids.train.train`` against a bare PyTorch loop (bench_train.py), goal overhead ≤ 5%;
* ``evaluate``: the evaluation engine against the peer-style DataLoader loop (bench_evaluate.py), goal
  ≥ 10×, and its FLOP rate as a fraction of the measured matmul rate, goal ≥ 70%;
* ``samplers``: one rsgd epoch (5 replicas) against 5 sgd epochs (bench_samplers.py), goal ≤ 1.1;
* ``dag``: the dry run of config/paper.yaml, and the DAG build alone (bench_dag.py);
* ``study``: the default study's wall time (bench_study.py) with ``--with-study``; otherwise the figure last
  recorded in docs/benchmarks.md is shown.

Both sides of each comparison run in the same process, interleaved where the benchmark repeats, so that the
ratios hold even on a busy machine; absolute seconds do not. CPU runs use one intra-op thread unless
``--threads`` says otherwise (0: torch's default).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
sys.path.insert(0, str(HERE))

PARTS = ("train", "evaluate", "samplers", "dag", "study")


def machine() -> dict[str, Any]:
    """CPU model, cores, load, torch version and the GPU if any."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def run_part(part: str, args: argparse.Namespace) -> Any:
    """One part, in this process; returns what the benchmark's main() returns."""
    import torch

    threads = args.threads if args.device == "cpu" else 0
    if threads:
        torch.set_num_threads(threads)
    if part == "train":
        import bench_train

        return bench_train.main(threads=threads, device=args.device, quick=args.quick)
    if part == "evaluate":
        import bench_evaluate

        if args.quick:
            return bench_evaluate.main(n_train=6000, points=5, device=args.device, peer_points=1)
        return bench_evaluate.main(device=args.device)
    if part == "samplers":
        import bench_samplers

        if args.quick:  # the digits problem only, one repeat
            from toroids.data import load_dataset

            t = bench_samplers.bench_problem(load_dataset("digits"), [128, 128], 1, torch.device(args.device))
            t["seq/sgd×5"] = t["rsgd seq"] / t["sgd×5"]
            t["stacked/sgd×5"] = t["rsgd stacked"] / t["sgd×5"]
            print(f"rsgd seq / sgd×5 (digits, 1 repeat): {t['seq/sgd×5']:.2f}")
            return {"digits 64-128-128-10": t}
        return bench_samplers.main(threads=threads or None, device=args.device)
    if part == "dag":
        import bench_dag

        return bench_dag.main(quick=args.quick)
    if part == "study":
        import bench_study

        if args.with_study:
            return {"measured": bench_study.main(), "recorded": bench_study.recorded()}
        rec = bench_study.recorded()
        where = (
            f"{rec['wall_s']:.0f} s, {rec['jobs']} jobs, --cores {rec['cores']}" if rec else "none recorded"
        )
        print(f"default study: not run (pass --with-study); last recorded in docs/benchmarks.md: {where}")
        return {"measured": None, "recorded": rec}
    raise ValueError(f"unknown part {part!r}; known: {PARTS}")


def _fmt(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return {"pct": f"{100 * value:+.1f}%", "x": f"{value:.2f}x", "frac": f"{100 * value:.0f}%"}.get(
        kind, f"{value:.2f}"
    )


def summary(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows (measure, value, goal, verdict) of the summary table."""
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, value: float | None, kind: str, goal: str, ok: bool | None) -> None:
        verdict = "-" if ok is None else ("meets" if ok else "MISSES")
        rows.append((name, _fmt(value, kind) if kind != "s" else f"{value:.1f} s", goal, verdict))

    train = results.get("train")
    if train:
        for problem, r in train.items():
            add(
                f"train: ours / bare loop - 1, {problem}",
                r["overhead"],
                "pct",
                "<= 5%",
                r["overhead"] <= 0.05,
            )
        for problem, r in train.items():
            for what, key in (("train rule", "overhead_ckpt"), ("every epoch", "overhead_ckpt_epoch")):
                add(f"train: + epoch checkpoint ({what}), {problem}", r[key], "pct", "-", None)
    ev = results.get("evaluate")
    if ev:
        size = f"{ev['n_train']} samples x {ev['points']} points"
        add(f"evaluate: engine vs peer loop ({size})", ev["speedup"], "x", ">= 10x", ev["speedup"] >= 10)
        frac = ev["fraction_of_matmul"]
        add(f"evaluate: engine GFLOP/s / matmul GFLOP/s ({size})", frac, "frac", ">= 70%", frac >= 0.7)
    sm = results.get("samplers")
    if sm:
        for problem, t in sm.items():
            r = t["seq/sgd×5"]
            add(f"samplers: rsgd epoch (5 replicas) / 5 sgd epochs, {problem}", r, "", "<= 1.1", r <= 1.1)
    dag = results.get("dag")
    if dag:
        add(f"dag: snakemake -n --quiet, paper.yaml ({dag['jobs']} jobs)", dag["dry_run_s"], "s", "-", None)
        if not math.isnan(dag["dag_s"]):
            add("dag: DAG build + dry-run scheduling alone", dag["dag_s"], "s", "-", None)
    st = results.get("study")
    if st:
        m, rec = st.get("measured"), st.get("recorded")
        if m:
            add(
                f"study: default study, {m['jobs']} jobs, --cores {m['cores']} (measured)",
                m["wall_s"],
                "s",
                "<= 300 s",
                m["wall_s"] <= 300,
            )
            add("study: compute in the jobs (after imports)", m["compute_s"], "s", "-", None)
            add("study: wall × cores / compute", m["ratio"], "x", "<= 1.5", m["ratio"] <= 1.5)
        elif rec:
            add(
                f"study: default study, {rec['jobs']} jobs (recorded, not run)", rec["wall_s"], "s", "-", None
            )
    return rows


def print_summary(
    rows: list[tuple[str, str, str, str]], info: dict[str, Any], args: argparse.Namespace
) -> None:
    w = max(len(r[0]) for r in rows) if rows else 10
    print()
    print(
        f"summary ({'quick: smoke sizes, not a measurement' if args.quick else 'full sizes'}); device "
        f"{args.device}, {args.threads or info['torch_default_threads']} threads; {info['cpu']}, "
        f"{info['cores']} cores, torch {info['torch']}; load average at start {info['load_avg']}"
    )
    print(f"  {'measure':{w}s}  {'value':>10s}  {'goal':>8s}  verdict")
    for name, value, goal, verdict in rows:
        print(f"  {name:{w}s}  {value:>10s}  {goal:>8s}  {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0: torch's default)")
    ap.add_argument("--with-study", action="store_true", help="also run the default study (minutes)")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--json", default=None, help="write every result here")
    ap.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one part, in-process
    args = ap.parse_args()

    if args.part:
        out = run_part(args.part, args)
        Path(args.json).write_text(json.dumps(out, default=str))
        return 0

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("--device cuda: no CUDA device is available", file=sys.stderr)
            return 2
    info = machine()
    results: dict[str, Any] = {}
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.only:
            print(f"\n=== {part} ===", flush=True)
            out = Path(tmp) / f"{part}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--json", str(out)]
            cmd += ["--device", args.device, "--threads", str(args.threads)]
            cmd += ["--quick"] * args.quick + ["--with-study"] * args.with_study
            proc = subprocess.run(cmd, cwd=ROOT)
            if proc.returncode != 0 or not out.exists():
                failed.append(part)
                continue
            results[part] = json.loads(out.read_text())
    info["load_avg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = summary(results)
    print_summary(rows, info, args)
    print(f"load average at the end {info['load_avg_end']}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "args": vars(args), "results": results}, indent=1)
        )
    if failed:
        print(f"FAILED parts: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
