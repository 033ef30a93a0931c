"""Wall time of the default study (config/config.yaml) from scratch: ``snakemake --cores all`` into an
empty ``--directory``, as ``make run`` runs it (minus the HTML report). Several minutes on 2 cores.

Beside the wall time and the number of jobs, the core-seconds the jobs spend computing: the sum over the
study's job logs (one per job, a block job's own included; all single-threaded) of the time from a log's
first line, written after the script's imports, to its last; a block's per-model logs are not counted
again. Then the ratio wall × cores / compute: 1 would be a
machine busy computing all along; what exceeds it is process start-up (Python, torch, the scripts'
imports), Snakemake's scheduling, and cores left idle.

    .venv/bin/python benchmarks/bench_study.py [--cores all] [--keep DIR]

Without ``--keep`` the results go to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_dag import snakemake_cmd  # beside this file (on the path when run, or through run.py)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"

# The figure last recorded in docs/benchmarks.md, in a comment the summary reads back.
RECORD = re.compile(r"<!--\s*study_wall_s=([0-9.]+)\s+study_jobs=(\d+)\s+cores=(\S+)\s*-->")


def recorded() -> dict[str, Any] | None:
    """The last recorded default-study run from docs/benchmarks.md, or None."""
    if not DOC.is_file():
        return None
    match = RECORD.search(DOC.read_text())
    if not match:
        return None
    return {"wall_s": float(match.group(1)), "jobs": int(match.group(2)), "cores": match.group(3)}


# A block job's log prefixes each of its models' lines with the model's id.
STAMP = re.compile(r"^(?:\S+ )?\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)\]")


def compute_seconds(results: Path) -> tuple[float, int]:
    """Σ over the job logs under ``results`` of (last − first timestamp), and how many logs had one (the
    per-model logs of the block jobs, ``logs/train/`` and ``logs/measure/``, lie within their block's)."""
    import datetime as dt

    total, n = 0.0, 0
    for log in results.rglob("*.log"):
        if log.parent.name in ("train", "measure") and log.parent.parent.name == "logs":
            continue
        lines = log.read_text(errors="replace").splitlines()
        stamps = [m.group(1) for line in lines if (m := STAMP.match(line))]
        if stamps:
            first, last = (dt.datetime.fromisoformat(t) for t in (stamps[0], stamps[-1]))
            total += (last - first).total_seconds()
            n += 1
    return total, n


def main(
    cores: str = "all", keep: str | None = None, configfile: str = "config/config.yaml"
) -> dict[str, Any]:
    """Run the study; return its wall time, job count and the command."""
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="toroids-study-"))
    work.mkdir(parents=True, exist_ok=True)
    cmd = snakemake_cmd(work, ROOT / configfile, "--cores", cores)
    log = work / "bench_study.log"
    print(f"default study: {' '.join(cmd)}", flush=True)
    try:
        t0 = time.perf_counter()
        with log.open("w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        wall = time.perf_counter() - t0
        text = log.read_text()
        if proc.returncode != 0:
            raise RuntimeError(f"the study failed (rc {proc.returncode}); log:\n{text[-4000:]}")
        done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", text)
        jobs = int(done[-1][1]) if done else -1
        compute, n_logs = compute_seconds(work / "results")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    n_cores = os.cpu_count() if cores == "all" else int(cores)
    ratio = wall * n_cores / compute if compute > 0 else float("nan")
    out = {
        "wall_s": wall, "jobs": jobs, "cores": cores, "cpus": os.cpu_count(), "configfile": configfile,
        "compute_s": compute, "logs": n_logs, "ratio": ratio,
    }  # fmt: skip
    print(f"  {jobs} jobs in {wall:.1f} s ({wall / 60:.1f} min) with --cores {cores} ({os.cpu_count()} CPUs)")
    print(
        f"  compute (after imports, {n_logs} logs): {compute:.0f} core-s; "
        f"wall × cores / compute = {ratio:.2f}"
    )
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", default="all")
    ap.add_argument("--keep", default=None, help="run in this folder and keep the results")
    a = ap.parse_args()
    main(a.cores, a.keep)
