"""How long Snakemake takes to plan the paper-scale study (config/paper.yaml), through its CLI.

Three commands, each run ``repeats`` times into an empty ``--directory`` (median wall time):
* ``snakemake --version``: the interpreter and Snakemake's imports alone;
* ``snakemake -l --configfile config/paper.yaml``: also parses the Snakefile, validates the config and
  plans the study (rules/common.smk), but builds no DAG;
* ``snakemake -n --quiet --configfile config/paper.yaml``: also builds the DAG of every job and runs the
  dry-run scheduler.

The differences split the dry run into start-up, parsing and the DAG build (with the dry-run scheduling).
One more dry run with ``--quiet rules`` prints the job-stats table, from which the job count is read.

    .venv/bin/python benchmarks/bench_dag.py [--repeats 3] [--configfile config/paper.yaml]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def snakemake_cmd(workdir: Path, configfile: Path, *args: str) -> list[str]:
    """``snakemake`` on this workflow, no profile, in ``workdir``, with ``configfile`` (also bench_study)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--workflow-profile",
        "none",
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        *args,
    ]


def _time(cmd: list[str], repeats: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        out = proc.stdout + proc.stderr
    return statistics.median(times), out


def main(repeats: int = 3, configfile: str = "config/paper.yaml", quick: bool = False) -> dict[str, Any]:
    """Time the three commands; return seconds, the job count and the split. ``quick``: one dry run with
    the job-stats table only (its time stands for the dry run's; no split)."""
    cfg = (ROOT / configfile).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t_stats, text = _time(snakemake_cmd(work, cfg, "-n", "--quiet", "rules"), 1)
        if quick:
            repeats, t_version, t_parse, t_dry = 1, float("nan"), float("nan"), t_stats
        else:
            t_version, _ = _time([sys.executable, "-m", "snakemake", "--version"], repeats)
            t_parse, _ = _time(snakemake_cmd(work, cfg, "-l"), repeats)
            t_dry, _ = _time(snakemake_cmd(work, cfg, "-n", "--quiet"), repeats)
    match = re.search(r"^total\s+(\d+)\s*$", text, re.MULTILINE)
    jobs = int(match.group(1)) if match else -1
    out = {
        "configfile": configfile,
        "jobs": jobs,
        "startup_s": t_version,
        "parse_s": t_parse - t_version,
        "dag_s": t_dry - t_parse,
        "dry_run_s": t_dry,
        "dry_run_stats_s": t_stats,
        "ms_per_job": 1e3 * (t_dry - t_parse) / max(jobs, 1),
    }
    print(f"dry run of {configfile}: {jobs} jobs (median of {repeats} runs each)")
    print(f"  snakemake -n --quiet                 {t_dry:7.2f} s   (the whole dry run)")
    print(f"    start-up (snakemake --version)     {t_version:7.2f} s")
    print(f"    parse + config + plan (-l)         {out['parse_s']:7.2f} s")
    print(
        f"    DAG build + dry-run scheduling     {out['dag_s']:7.2f} s   ({out['ms_per_job']:.2f} ms per job)"
    )
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configfile", default="config/paper.yaml")
    ap.add_argument("--quick", action="store_true", help="one dry run, no split")
    a = ap.parse_args()
    main(a.repeats, a.configfile, a.quick)
