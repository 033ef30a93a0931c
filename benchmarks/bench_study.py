"""Wall time of the default study (config/config.yaml) from scratch: ``snakemake --cores all`` into an
empty ``--directory``, as ``make run`` runs it (minus the HTML report). Several minutes on 2 cores.

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
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    out = {"wall_s": wall, "jobs": jobs, "cores": cores, "cpus": os.cpu_count(), "configfile": configfile}
    print(f"  {jobs} jobs in {wall:.1f} s ({wall / 60:.1f} min) with --cores {cores} ({os.cpu_count()} CPUs)")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", default="all")
    ap.add_argument("--keep", default=None, help="run in this folder and keep the results")
    a = ap.parse_args()
    main(a.cores, a.keep)
