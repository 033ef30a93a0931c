"""The tiny study through ``--executor slurm`` and ``profiles/slurm``, on a real one-node SLURM cluster.

The set-up installs Debian's munge, slurmctld and slurmd (apt-get, as root) and starts them in the
foreground from a temporary folder: munged with its own key and socket, no cgroups, no accounting
database (so the plugin follows jobs with squeue, and MinJobAge keeps finished jobs visible to it),
two fake GPUs so that ``--gpus`` jobs are scheduled. The study asks for one GPU per network job and
still computes on the CPU (``device: cpu``). Every daemon is stopped by its pid at the end.
"""

import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from toroids.figures import FIGURES

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "slurm"
ETC_CONF = Path("/etc/slurm/slurm.conf")  # the plugin's in-job srun reads this one, not $SLURM_CONF
MARKER = "# toroids test cluster"
SESSION_LOCK = Path("/tmp/toroids-slurm-test.lock")  # one test cluster per machine: /etc/slurm is shared
PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client"]
BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo"]
RUN_TIMEOUT_S = 600

NETWORK_RULES = ["train", "measure", "midpoint", "section", "pair_block", "triplet_section"]

# tests/test_workflow.py's TINY, shorter still (this test is about the plumbing), asking for a GPU per
# network job like a paper-scale config, while computing on the CPU.
TINY = {
    "study": "tiny",
    "device": "cpu",
    "threads": 1,
    "experiments": [
        {
            "arch": "mlp",
            "dataset": "digits",
            "model": {"widths": [24, 24]},
            "samplers": ["sgd"],
            "seeds": [0, 1],
        }
    ],
    "training": {"epochs": 4, "batch_size": 64},
    "geometry": {"n_points": 5},
    "midpoints": {"epochs": 2},
    "sections": {"resolution": 5},
    "local_energy": {"sigmas": [0.0, 0.2, 0.4], "n_samples": 2, "sigma_star": 0.4},
    "resources": {"gpu": 1, "mem_mb": 1000, "runtime": 10},
}


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root, to install and run munge, slurmctld and slurmd"
    if not shutil.which("apt-get") and not all(shutil.which(b) for b in BINARIES):
        return "needs apt-get to install munge, slurmctld and slurmd (or those already installed)"
    if ETC_CONF.exists() and MARKER not in ETC_CONF.read_text(errors="replace"):
        return f"{ETC_CONF} belongs to a real SLURM installation; not touching it"
    return None


_REASON = _why_not()
if _REASON:
    print(f"\ntests/test_slurm.py skipped: {_REASON}", file=sys.stderr)

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.slurm,
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
]


def _install() -> None:
    """apt-get install the SLURM packages, without letting their scripts start any service."""
    if all(shutil.which(b) for b in BINARIES):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:  # the Debian way to tell maintainer scripts not to start services
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for cmd in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        ):
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    finally:
        if made_policy:
            policy.unlink()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, even by SIGKILL (Linux prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Cluster:
    """munged, slurmctld and slurmd, started in the foreground from ``folder``; stopped by their pids."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = folder / "slurm.conf"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))
        }
        self.env["SLURM_CONF"] = str(self.conf)

    def write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "munge").chmod(0o711)  # munged wants its socket folder reachable by all
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        ctld_port, slurmd_port = _free_ports(2)
        text = (TEMPLATES / "slurm.conf.in").read_text()
        self.conf.write_text(
            text.format(
                host=socket.gethostname().split(".")[0],
                node="node0",
                dir=self.dir,
                ctld_port=ctld_port,
                slurmd_port=slurmd_port,
            )
        )
        shutil.copy(TEMPLATES / "gres.conf", self.dir / "gres.conf")
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        ETC_CONF.unlink(missing_ok=True)  # _why_not() made sure it is an old one of ours, if any
        ETC_CONF.symlink_to(self.conf)

    def _start(self, name: str, cmd: list[str]) -> None:
        out = open(self.dir / "log" / f"{name}.out", "w")  # the child keeps its own copy
        self.procs[name] = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, preexec_fn=_die_with_parent
        )
        out.close()

    def start(self) -> None:
        m = self.dir / "munge"
        self._start(
            "munged",
            ["munged", "--foreground", "--force", f"--key-file={m}/munge.key", f"--socket={m}/munge.socket",
             f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"],
        )  # fmt: skip
        self._wait(lambda: (m / "munge.socket").exists(), "munged to create its socket")
        self._start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), "slurmctld to answer scontrol ping")
        self._start("slurmd", ["slurmd", "-D", "-N", "node0", "-f", str(self.conf)])
        self._wait(lambda: self._ok(["sinfo", "-h", "-o", "%T"], "idle"), "node0 to be idle in sinfo")

    def _ok(self, cmd: list[str], expected: str) -> bool:
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        return out.returncode == 0 and expected in out.stdout

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready():
                return
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            assert not dead, f"{', '.join(dead)} exited while waiting for {what}\n{self.diagnostics()}"
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.diagnostics()}")

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (MinJobAge keeps the finished ones), as scontrol's key=value."""
        out = subprocess.run(["scontrol", "-o", "show", "job"], env=self.env, capture_output=True, text=True)
        return [
            dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.stdout.splitlines() if "JobId=" in line
        ]

    def diagnostics(self) -> str:
        parts = []
        for f in sorted((self.dir / "log").glob("*")) + [self.dir / "munge" / "munged.log"]:
            if f.is_file():
                tail = "\n".join(f.read_text(errors="replace").splitlines()[-40:])
                parts.append(f"--- {f.name} (last lines) ---\n{tail}")
        return "\n".join(parts)

    def stop(self) -> None:
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(
                ["scancel", "--full", "--user=root"], env=self.env, capture_output=True, timeout=30
            )
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
        if ETC_CONF.is_symlink() and ETC_CONF.resolve() == self.conf.resolve():
            ETC_CONF.unlink()


def _one_at_a_time(timeout: float = 1200) -> int:
    """Wait until no other test session runs a cluster here; the lock goes with this process."""
    fd = os.open(SESSION_LOCK, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > start + timeout:
                os.close(fd)
                pytest.skip(
                    f"another test session kept the SLURM test cluster ({SESSION_LOCK}) for {timeout} s"
                )
            if time.monotonic() - start < 10:
                print(f"\nwaiting for another session's SLURM test cluster ({SESSION_LOCK})", file=sys.stderr)
            time.sleep(10)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    lock = _one_at_a_time()
    try:
        yield from _cluster(tmp_path_factory)
    finally:
        os.close(lock)


def _cluster(tmp_path_factory):
    t0 = time.monotonic()
    _install()
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.write_config()
        cluster.start()
        print(
            f"\nSLURM test cluster up in {time.monotonic() - t0:.0f} s (packages included)", file=sys.stderr
        )
        yield cluster
    finally:
        cluster.stop()
        alive = [n for n, p in cluster.procs.items() if p.poll() is None]
        assert not alive, f"still running: {alive}"


def test_tiny_study_on_slurm(slurm_cluster, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    env = {
        **slurm_cluster.env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the jobs' python
        "PYTHONUNBUFFERED": "1",
        "TOROIDS_SLURM_PARTITION": "cpu",
        "TOROIDS_SLURM_GPU_PARTITION": "gpu",
    }
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
        "--workflow-profile", str(ROOT / "profiles" / "slurm"),
        "--directory", str(tmp_path), "--configfile", str(cfg),
        # no slurmdbd: follow the jobs with squeue, not sacct; check often; fail fast
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-no-account", "--retries", "0", "--latency-wait", "10", "--verbose",
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path
        )
    except subprocess.TimeoutExpired as err:
        log = _text(err.stderr)[-6000:]
        pytest.fail(f"snakemake ran past {RUN_TIMEOUT_S} s\n{log}\n{_diagnose(slurm_cluster, tmp_path)}")
    wall = time.monotonic() - t0
    assert out.returncode == 0, f"{out.stderr[-8000:]}\n{_diagnose(slurm_cluster, tmp_path)}"
    print(f"\ntiny study on SLURM: {wall:.0f} s", file=sys.stderr)

    res = tmp_path / "results" / "tiny"
    models = pd.read_csv(res / "tables" / "models.csv")
    index = pd.read_csv(res / "figures" / "index.csv")
    assert set(index["name"]) == set(FIGURES)
    for name in index[index["status"] == "drawn"]["name"]:
        assert (res / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    assert len(models) == 2 and (models["status"] == "ok").all()
    assert (res / "tables" / "claims.csv").stat().st_size > 0
    for m in models["model_id"]:
        meta = json.loads((res / "models" / m / "meta.json").read_text())
        assert meta["device"] == "cpu", meta["device"]  # given a (fake) GPU, computed where the config says

    # Every job went through SLURM: network jobs to the gpu partition with one GPU each (groups too:
    # their members run one after the other); nothing else is submitted (the other rules are local).
    jobs = slurm_cluster.jobs()
    for j in sorted(jobs, key=lambda j: int(j["JobId"])):
        print(f"  {j['JobId']:>3} {j['StartTime'][11:]}-{j['EndTime'][11:]} {j['Comment']}", file=sys.stderr)
    assert jobs and all(j["JobState"] == "COMPLETED" for j in jobs), jobs
    by_comment = {j["Comment"]: j for j in jobs}
    groups = [c for c in by_comment if c.startswith(("rule_flatness_", "rule_pairs_"))]
    assert len(groups) == 2, sorted(by_comment)
    for comment, j in by_comment.items():
        network = any(comment.startswith(f"rule_{r}") for r in [*NETWORK_RULES, "flatness", "pairs"])
        assert j["Partition"] == ("gpu" if network else "cpu"), (comment, j["Partition"])
        assert (j.get("TresPerJob") == "gres:gpu:1") == network, (comment, j.get("TresPerJob"))
        # a group asks for what one member needs, not for the sum over its members
        assert j["NumCPUs"] == "1", (comment, j["NumCPUs"])
        assert j["MinMemoryNode"] == ("1000M" if network else "4000M"), (comment, j["MinMemoryNode"])
    assert sum(c.startswith("rule_train_") for c in by_comment) == 2

    again = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--workflow-profile", "none",
         "--directory", str(tmp_path), "--configfile", str(cfg), "-n"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Nothing to be done" in again.stdout + again.stderr


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def _diagnose(cluster: Cluster, workdir: Path) -> str:
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    parts = [cluster.diagnostics(), f"--- squeue/scontrol jobs ---\n{cluster.jobs()}"]
    for f in logs[-5:]:
        tail = "\n".join(f.read_text().splitlines()[-30:])
        parts.append(f"--- {f.relative_to(workdir)} (last lines) ---\n{tail}")
    return "\n".join(parts)
