"""Reliability, measured through the real entry points: resume after a real SIGKILL, two studies from
scratch giving identical tables, bad input stopped before any job runs, bad checkpoints refused by their
consumer, failed jobs leaving no partial output.

Cost (2 cores): two runs of a minimal study to its tables (~30 s each on an idle box), one partial rerun,
two short trainings killed and resumed, and one Snakemake start per bad config (run two at a time).
"""

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from toroids import files
from toroids.checkpoint import CheckpointError, load_model, load_state, save_model, save_state
from toroids.models import build_model

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--workflow-profile", "none"]

# The smallest study that still builds every table: 2 models, 1 pair block, no midpoints, no sections.
REL = {
    "study": "rel",
    "threads": 1,
    "experiments": [
        {
            "arch": "mlp",
            "dataset": "digits",
            "model": {"widths": [16, 16]},
            "samplers": ["sgd"],
            "seeds": [0, 1],
        }
    ],
    "training": {"epochs": 4, "batch_size": 64},
    "geometry": {"n_points": 3},
    "midpoints": {"pairs_per_type": 0},
    "sections": {"pairs_per_type": 0},
    "local_energy": {"sigmas": [0.0, 0.2], "n_samples": 2, "sigma_star": 0.2},
    "sharpness": {"n_probes": 2},
    "stats": {"n_resamples": 50},
}
TABLES = [
    f"results/rel/tables/{t}.csv"
    for t in (
        "models",
        "local_energy",
        "paths",
        "distances",
        "barriers",
        "sections",
        "triplet_sections",
        "correlations",
        "sharpness",
        "distance_barrier",
        "claims",
        "claim_tests",
    )
]
MODELS = "results/rel/models"
VOLATILE = {"models.csv": ["wall_time_s", "device"]}  # columns that legitimately differ between two runs

# One training, long enough to be killed mid-run: ~0.1 s per epoch on one thread, 20 epochs.
RESUME = {"widths": [64, 64], "epochs": 20, "batch_size": 16, "seed": 0}
SGD = {"lr": 0.02, "momentum": 0.9, "nesterov": True}  # the schema's defaults, as a study job gets them

# Trains one model with toroids.train.train, as the train rule does (one thread, the CPU), and saves it.
DRIVER = """
import json, sys, time, torch
from toroids.checkpoint import save_model
from toroids.data import load_dataset
from toroids.seeds import model_seed
from toroids.train import train
a = json.loads(sys.argv[1])
torch.set_num_threads(1)
def log(msg):
    print(msg, flush=True)
    time.sleep(a["sleep"])  # widens the window in which the test kills it; no effect on the numbers
res = train(arch="mlp", model_options={"widths": a["widths"]}, data=load_dataset("digits"), sampler="sgd",
            sampler_options=a["sgd"], epochs=a["epochs"], batch_size=a["batch_size"],
            seed=model_seed("mlp-digits", "sgd", a["seed"]), device=torch.device("cpu"),
            checkpoint=a["checkpoint"], checkpoint_every_s=0, log=log)
save_model(a["out"], res.model, {"resumed_from_epoch": res.resumed_from_epoch,
                                  "losses": [h["loss"] for h in res.history]})
"""


def snakemake(args, cwd, config=None, timeout=600):
    """Run Snakemake's CLI in ``cwd`` (its config.yaml, written from ``config`` when given)."""
    cfg = Path(cwd) / "config.yaml"
    if config is not None:
        cfg.write_text(yaml.safe_dump(config))
    cmd = [*SNAKEMAKE, "--directory", str(cwd), "--configfile", str(cfg), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def _env():
    # an epoch checkpoint after every epoch, so that a kill mid-training finds one to resume from
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TOROIDS_CHECKPOINT_EVERY_S": "0"}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tmp_files(root):
    """Temporary files of the atomic writes (``.<name>.<random>.tmp``) left anywhere under ``root``."""
    return sorted(str(p) for p in Path(root).rglob("*.tmp"))


def wait_for_epoch(ckpt, epoch, proc, timeout=180):
    """Poll the epoch checkpoint until it records ``epoch`` (0-based) or later; returns that epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the training finished (rc {proc.returncode}) before it could be killed")
        if ckpt.exists():
            try:
                done = int(load_state(ckpt)[1]["epoch"])
            except CheckpointError:  # cannot happen with atomic writes; keep polling if it does
                done = -1
            if done >= epoch:
                return done
        time.sleep(0.01)
    pytest.fail(f"no epoch checkpoint at epoch {epoch} after {timeout} s")


def run_driver(tmp, name, checkpoint=None, sleep=0.0, wait=True):
    out = Path(tmp) / f"{name}.safetensors"
    args = {**RESUME, "sgd": SGD, "checkpoint": str(checkpoint) if checkpoint else None}
    args.update(out=str(out), sleep=sleep)
    with open(Path(tmp) / f"{name}.log", "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(args)], stdout=log, stderr=subprocess.STDOUT, env=_env()
        )
    if wait:
        assert proc.wait(timeout=300) == 0, (Path(tmp) / f"{name}.log").read_text()[-3000:]
    return proc, out


def assert_same_tensors(a, b, what):
    assert a.keys() == b.keys(), what
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), f"{what}: tensor {k} differs"


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted training of RESUME: its weights and per-epoch losses."""
    tmp = tmp_path_factory.mktemp("reference")
    _, out = run_driver(tmp, "reference")
    tensors, meta = load_state(out)
    assert meta["resumed_from_epoch"] is None
    return tensors, meta["losses"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The minimal study run once from scratch to its tables and its config as it ran (not the figures)."""
    tmp = tmp_path_factory.mktemp("study_a")
    out = snakemake(["--cores", "2", *TABLES, "results/rel/config.yaml"], tmp, REL)
    assert out.returncode == 0, out.stderr[-4000:]
    return tmp


# ---------------------------------------------------------------------------------------------- resume


def test_training_killed_by_sigkill_resumes_bitwise(tmp_path, reference):
    ref, ref_losses = reference
    ckpt = tmp_path / "epoch_checkpoint.safetensors"
    proc, _ = run_driver(tmp_path, "killed", checkpoint=ckpt, sleep=0.02, wait=False)
    try:
        killed_at = wait_for_epoch(ckpt, 3, proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "killed.safetensors").exists()
    _, out = run_driver(tmp_path, "resumed", checkpoint=ckpt)
    tensors, meta = load_state(out)
    assert meta["resumed_from_epoch"] is not None and meta["resumed_from_epoch"] >= killed_at
    assert meta["losses"] == ref_losses  # the history, restored from the checkpoint and continued
    assert_same_tensors(tensors, ref, "resumed vs uninterrupted")


def kill_snakemake_mid_training(tmp_path, seeds, checkpoint_of, models_per_job=1):
    """Start Snakemake on the RESUME training of ``seeds`` (study ``rk``), SIGKILL its whole process group
    (the job included) once model ``checkpoint_of``'s epoch checkpoint records epoch 3, then --unlock.
    Returns (the models' folder, the targets, the epoch it was killed at)."""
    config = {
        "study": "rk",
        "threads": 1,
        "device": "cpu",
        "experiments": [
            {
                "arch": "mlp",
                "dataset": "digits",
                "model": {"widths": RESUME["widths"]},
                "samplers": ["sgd"],
                "seeds": list(seeds),
            }
        ],
        "training": {"epochs": RESUME["epochs"], "batch_size": RESUME["batch_size"]},
        "resources": {"models_per_job": models_per_job},
    }
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    models = tmp_path / "results" / "rk" / "models"
    target = [f"results/rk/models/mlp-digits-sgd-s{s}/final.safetensors" for s in seeds]
    cmd = [*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(cfg), "--cores", "1", *target]
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env())
        try:
            killed_at = wait_for_epoch(models / checkpoint_of / "epoch_checkpoint.safetensors", 3, proc)
            os.killpg(proc.pid, signal.SIGKILL)  # the job runs in Snakemake's process group
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    unlock = snakemake(["--unlock"], tmp_path)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    return models, target, killed_at


@pytest.mark.workflow
def test_snakemake_killed_mid_training_resumes_bitwise(tmp_path, reference):
    """SIGKILL to Snakemake's whole process group (the job included); --unlock, --rerun-incomplete."""
    ref, _ = reference
    models, target, killed_at = kill_snakemake_mid_training(tmp_path, [RESUME["seed"]], "mlp-digits-sgd-s0")
    model = models / "mlp-digits-sgd-s0"
    assert not (model / "final.safetensors").exists() and not (model / "meta.json").exists()
    again = snakemake(["--cores", "1", "--rerun-incomplete", *target], tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    meta = json.loads((model / "meta.json").read_text())
    assert meta["resumed_from_epoch"] >= killed_at, meta["resumed_from_epoch"]
    assert len(meta["history"]) == RESUME["epochs"]
    assert not (model / "epoch_checkpoint.safetensors").exists()
    assert_same_tensors(load_state(model / "final.safetensors")[0], ref, "Snakemake-resumed vs uninterrupted")


@pytest.mark.workflow
def test_a_block_killed_midway_keeps_the_models_it_completed(tmp_path, reference):
    """Two models in one training job; Snakemake killed while the second trains: on the rerun the first is
    not trained again (its kept outputs come back) and the second resumes; both end as uninterrupted runs."""
    models, target, _ = kill_snakemake_mid_training(tmp_path, [0, 1], "mlp-digits-sgd-s1", models_per_job=2)
    first = models / "mlp-digits-sgd-s0"
    assert (first / "epoch_checkpoint.safetensors").exists()  # kept until the block is done
    again = snakemake(["--cores", "1", "--rerun-incomplete", *target], tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    meta = [json.loads((models / f"mlp-digits-sgd-s{s}" / "meta.json").read_text()) for s in (0, 1)]
    assert meta[0]["resumed_from_epoch"] is None  # the record of its one, uninterrupted training
    block_log = next((tmp_path / "results" / "rk" / "logs" / "blocks").glob("train_*.log")).read_text()
    assert "mlp-digits-sgd-s0: the same plan and code as when it was trained: its outputs kept" in block_log
    assert meta[1]["resumed_from_epoch"] >= 3
    assert_same_tensors(load_state(first / "final.safetensors")[0], reference[0], "completed, then resumed")
    assert not list(models.rglob("epoch_checkpoint.safetensors"))


# --------------------------------------------------------------------------------------- determinism


def _table_digests(root):
    """sha256 of every table under results/rel/tables/, the volatile columns dropped first."""
    out = {}
    for path in sorted((Path(root) / "results" / "rel" / "tables").glob("*.csv")):
        drop = VOLATILE.get(path.name)
        if drop:
            frame = pd.read_csv(path).drop(columns=drop)
            out[path.name] = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        else:
            out[path.name] = sha256(path)
    return out


@pytest.mark.workflow
def test_two_studies_from_scratch_give_identical_tables(tmp_path, study):
    out = snakemake(["--cores", "2", *TABLES], tmp_path, REL)
    assert out.returncode == 0, out.stderr[-4000:]
    a, b = _table_digests(study), _table_digests(tmp_path)
    assert len(a) == len(TABLES) and a.keys() == b.keys()
    differ = []
    for name in a:
        if a[name] != b[name]:
            fa = pd.read_csv(study / "results" / "rel" / "tables" / name)
            fb = pd.read_csv(tmp_path / "results" / "rel" / "tables" / name)
            cols = [c for c in fa.columns if c not in fb or not fa[c].equals(fb[c])]
            differ.append(f"{name}: columns {cols}")
    assert not differ, "tables differ between two runs from scratch: " + "; ".join(differ)
    # the checkpoints too: every tensor bitwise, the header's metadata, and then the files' bytes
    for f in sorted((study / MODELS).rglob("*.safetensors")):
        rel, g = f.relative_to(study), tmp_path / f.relative_to(study)
        (ta, ma), (tb, mb) = load_state(f), load_state(g)
        assert_same_tensors(ta, tb, str(rel))
        assert ma == mb, rel
        assert sha256(f) == sha256(g), f"{rel}: same tensors and metadata, different bytes"


# ----------------------------------------------------------------------------------------- bad config


def _exp(**kw):
    c = copy.deepcopy(REL)
    c["experiments"][0].update(kw)
    return c


def _top(**kw):
    return {**copy.deepcopy(REL), **kw}


BAD_CONFIGS = {
    "unknown sampler": (_exp(samplers=["sgdd"]), "experiments.0.samplers.0"),
    "negative lr": (_exp(sampler_options={"sgd": {"lr": -0.1}}), "experiments.0.sampler_options.sgd.lr"),
    "widths not a list": (_exp(model={"widths": 16}), "experiments.0.model.widths"),
    "sigma out of range": (
        _top(local_energy={"sigmas": [0.0, 20.0], "n_samples": 2, "sigma_star": 0.0}),
        "local_energy.sigmas.1",
    ),
    "sigma_star not a sigma": (
        _top(local_energy={"sigmas": [0.0, 0.2], "n_samples": 2, "sigma_star": 0.3}),
        "local_energy.sigma_star",
    ),
    "unknown data set": (_exp(dataset="imagenet"), "experiments.0.dataset"),
    "batch size 0": (_top(training={"epochs": 4, "batch_size": 0}), "training.batch_size"),
    "unknown device": (_top(device="tpu"), "device"),
    "duplicate seeds": (_exp(seeds=[0, 0]), "experiments.0.seeds"),
    "study name with a slash": (_top(study="../elsewhere"), "study"),
    "test fraction 1.5": (_top(datasets={"digits": {"test_fraction": 1.5}}), "datasets.digits.test_fraction"),
    "experiment twice": ({**REL, "experiments": REL["experiments"] * 2}, "experiments.1"),
    "missing data root": (
        {**_exp(dataset="mnist"), "data": {"root": "@EMPTY@", "download": False}},
        "data.root",
    ),
    "unknown data option": (_exp(data={"n_trian": 100}), "experiments.0.data"),
    "option the arch lacks": (_exp(model={"widths": [16], "channels": [4]}), "experiments.0.model.channels"),
}


@pytest.fixture(scope="module")
def bad_config_runs(tmp_path_factory):
    """Every bad config through the CLI (``--cores 1``), two at a time: {case: (dir, completed process)}."""
    base = tmp_path_factory.mktemp("bad")
    empty = base / "empty_data_root"
    empty.mkdir()

    def run(item):
        i, (name, (config, _)) = item
        cwd = base / f"case{i:02d}"
        cwd.mkdir()
        text = json.dumps(config).replace("@EMPTY@", str(empty))
        return name, (cwd, snakemake(["--cores", "1"], cwd, json.loads(text), timeout=300))

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, enumerate(BAD_CONFIGS.items())))


@pytest.mark.parametrize(
    "case",
    [c for c in BAD_CONFIGS],
)
def test_bad_config_stops_before_any_job(bad_config_runs, case):
    cwd, out = bad_config_runs[case]
    key = BAD_CONFIGS[case][1]
    assert out.returncode != 0
    assert not (cwd / "results").exists(), f"a job ran before {key} was rejected"
    assert f"config key '{key}" in out.stderr + out.stdout, (out.stderr + out.stdout)[-2000:]


# ---------------------------------------------------------------------- bad checkpoints, failed jobs


@pytest.mark.workflow
def test_bad_checkpoint_stops_its_consumer_and_a_rerun_completes(tmp_path, study):
    """A truncated and a pickled final.safetensors: their measuring jobs fail naming the file and leave
    no output and no temporary file; with the originals put back, a rerun completes the tables, identical
    to those of the untouched run."""
    work = tmp_path / "study"
    shutil.copytree(study, work, symlinks=True)  # copy2: the mtimes Snakemake compares are kept
    backup = tmp_path / "backup"
    backup.mkdir()
    trunc, pickled = (f"{MODELS}/mlp-digits-sgd-s{s}/final.safetensors" for s in (0, 1))
    for i, rel in enumerate((trunc, pickled)):
        shutil.copy2(work / rel, backup / f"{i}.safetensors")
    tables_before = {t: sha256(work / t) for t in TABLES}
    data = (work / trunc).read_bytes()
    (work / trunc).write_bytes(data[: len(data) // 2])
    # load_state's tensors may map the file: copy them before the file is overwritten in place
    state = {k: v.clone() for k, v in load_state(work / pickled)[0].items()}
    torch.save(state, work / pickled)

    normalized = [rel.replace("final.safetensors", "local_energy.csv") for rel in (trunc, pickled)]
    out = snakemake(["--cores", "2", "--keep-going", "--force", *normalized], work)
    assert out.returncode != 0
    text = out.stderr + out.stdout
    assert f"{trunc}: " in text and "truncated" in text, text[-3000:]
    assert f"{pickled}: looks like a pickle" in text, text[-3000:]
    # how to redo it
    assert f"snakemake --cores all --configfile {work / 'config.yaml'} --force {trunc}" in text
    for rel in normalized:
        assert not (work / rel).exists(), rel
    assert not tmp_files(work / "results")
    assert {t: sha256(work / t) for t in TABLES} == tables_before  # nothing downstream written

    for i, rel in enumerate((trunc, pickled)):
        shutil.copy2(backup / f"{i}.safetensors", work / rel)
    # Snakemake does not remake a missing intermediate file whose consumers are up to date: ask for it
    again = snakemake(["--cores", "2", *normalized, *TABLES], work)
    assert again.returncode == 0, again.stderr[-4000:]
    assert all((work / rel).exists() for rel in normalized)
    assert "localrule table_local_energy:" in again.stdout + again.stderr  # the downstream job ran again
    assert {t: sha256(work / t) for t in TABLES} == {t: sha256(study / t) for t in TABLES}
    assert not tmp_files(work / "results")


def _patched(patch):
    """REL with ``patch`` merged in, one level deep."""
    out = {**REL}
    for key, value in patch.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = {**out[key], **value} if nested else value
    return out


def would_run(study, patch):
    """The rules a dry run of REL with ``patch`` would run on the finished study ``study`` (empty: nothing to
    be done); the fixture's config is written back afterwards."""
    try:
        targets = [*TABLES, "results/rel/config.yaml"]  # the study's config as it ran: no operational key
        out = snakemake(["-n", "--quiet", "rules", "--cores", "2", *targets], study, _patched(patch))
        assert out.returncode == 0, out.stderr[-3000:]
        if "Nothing to be done" in out.stdout + out.stderr:
            return set()
        rows = re.findall(r"^(\S+)\s+(\d+)$", out.stdout, flags=re.M)
        return {rule for rule, _ in rows if rule != "total"}
    finally:
        (Path(study) / "config.yaml").write_text(yaml.safe_dump(REL))


@pytest.mark.workflow
@pytest.mark.parametrize(
    "patch",
    [
        {"resources": {"models_per_job": 2}},  # how many processes do the work
        {"resources": {"models_per_job": 5, "mem_mb": 999, "runtime": 7}},
        {"device": "cpu"},
        {"threads": 2},
        {"data": {"root": "/elsewhere", "download": True}},
        {"evaluate": {"chunk_size": 17}},
        {"sharpness": {"memory_mb": 64}},
    ],
    ids=[
        "block size", "block size and resources", "device", "threads", "data root, download", "chunk size",
        "hessian memory",
    ],  # fmt: skip
)
def test_settings_that_change_no_result_rerun_nothing(study, patch):
    assert would_run(study, patch) == set()


@pytest.mark.workflow
@pytest.mark.parametrize(
    "patch, expected",
    [
        (
            {"local_energy": {"sigma_star": 0.0}},
            {"table_local_energy", "analysis", "study_config"},
        ),  # read there (the stars marked), not by the measures nor by the other tables
        (
            {"local_energy": {"flip_star": 0.1, "flip_fractions": [0.0, 0.1]}},
            {"study_config"},
        ),  # ε* marks the stars of binary networks only: this study has none
        ({"geometry": {"n_orders": 3}}, {"study_config"}),  # binary networks only
        ({"evaluate": {"bn_policy": "recompute"}}, {"study_config"}),  # networks with BatchNorm only
        (
            {"sharpness": {"n_probes": 3}},
            {
                "measure_plan",
                "measure_mlp_digits_m000",
                "measure_mlp_digits_m001",
                "table_local_energy",
                "analysis",
                "study_config",
            },
        ),
        ({"stats": {"n_resamples": 60}}, {"analysis", "study_config"}),
        (
            {"geometry": {"pair_seed": 7}},
            {"study_config"},
        ),  # binary networks, or a choice of pairs: here all pairs
    ],  # fmt: skip
    ids=["sigma_star", "flip_star", "n_orders", "bn_policy", "n_probes", "n_resamples", "pair_seed"],
)
def test_changing_a_key_reruns_only_the_rules_that_read_it(study, patch, expected):
    """(study_config writes the config as it ran: every key that is not operational is in it.)"""
    assert would_run(study, patch) == expected


@pytest.mark.workflow
def test_a_seed_added_to_a_block_trains_and_measures_only_the_new_model(tmp_path, study):
    """Seeds [0, 1] → [0, 1, 2] with three models per job: the block job reruns (a new output), but s0 and
    s1 get their kept outputs back, byte for byte, and only s2 is trained and measured."""
    work = tmp_path / "study"
    shutil.copytree(study, work, symlinks=True)
    old = [
        f"{MODELS}/mlp-digits-sgd-s{s}/{n}" for s in (0, 1) for n in ("final.safetensors", "local_energy.csv")
    ]
    before = {rel: sha256(work / rel) for rel in old}
    patch = _patched({"resources": {"models_per_job": 3}})
    patch["experiments"] = [{**REL["experiments"][0], "seeds": [0, 1, 2]}]
    out = snakemake(["--cores", "2", *TABLES], work, patch)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "rule train_mlp_digits_sgd_b000:" in out.stdout + out.stderr  # the block did rerun
    assert {rel: sha256(work / rel) for rel in old} == before
    logs = work / "results" / "rel" / "logs" / "blocks"
    train = (logs / "train_mlp_digits_sgd_b000.log").read_text()
    measure = (logs / "measure_mlp_digits_m000.log").read_text()
    for s in (0, 1):
        assert f"mlp-digits-sgd-s{s} " in train and "its outputs kept" in train, train
        assert f"mlp-digits-sgd-s{s}: the same weights" in measure, measure
    assert "training mlp-digits-sgd-s2 on digits" in train and "training mlp-digits-sgd-s0 on" not in train
    assert len(pd.read_csv(work / "results" / "rel" / "tables" / "models.csv")) == 3


# ------------------------------------------------------------------------------- checkpoints, in-process


def _saved_model(tmp_path):
    model = build_model("mlp", (64,), 10, seed=0, widths=[8])
    path = tmp_path / "m.safetensors"
    save_model(path, model)
    return model, path


def _header_len(raw):
    return 8 + int.from_bytes(raw[:8], "little")


@pytest.mark.parametrize("tamper", ["payload bit", "header dtype"])
def test_tampered_checkpoint_is_refused(tmp_path, tamper):
    _, path = _saved_model(tmp_path)
    raw = bytearray(path.read_bytes())
    n = _header_len(raw)
    if tamper == "payload bit":
        raw[n] ^= 1  # lowest mantissa bit of the first float: still finite
    else:
        raw[:n] = raw[:n].replace(b'"F32"', b'"I32"', 1)
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_model(path)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    model, path = _saved_model(tmp_path)
    before = path.read_bytes()
    text = tmp_path / "t.csv"
    text.write_text("old\n")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_state(path, {"w": torch.ones(3)})
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(text, "new\n")
    assert path.read_bytes() == before and text.read_text() == "old\n"
    assert not tmp_files(tmp_path)


def test_a_writer_killed_mid_write_leaves_no_temp_after_the_next_write(tmp_path):
    """A SIGKILL between the temporary file and the rename leaves ``.<name>.<random>.tmp`` behind; the next
    successful write of the same output removes it, and only temporaries of that output."""
    model, path = _saved_model(tmp_path)
    text = tmp_path / "t.csv"
    stale = [tmp_path / f".{path.name}.dead1.tmp", tmp_path / ".t.csv.dead2.tmp"]
    other = tmp_path / ".other.csv.alive.tmp"  # another output's write in progress: not ours to touch
    for f in [*stale, other]:
        f.write_bytes(b"half")
    save_state(path, {"w": torch.ones(3)})
    files.atomic_write_text(text, "new\n")
    assert tmp_files(tmp_path) == [str(other)]
    assert load_state(path)[0]["w"].tolist() == [1.0, 1.0, 1.0] and text.read_text() == "new\n"


def test_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _, path = _saved_model(tmp_path)
        files.atomic_write_text(tmp_path / "t.csv", "x\n")
    finally:
        os.umask(old)
    for f in (path, tmp_path / "t.csv"):
        assert f.stat().st_mode & 0o777 == 0o644, oct(f.stat().st_mode)


def test_the_binary_check_runs_once_per_network(monkeypatch):
    from toroids.data import load_dataset
    from toroids.samplers import base
    from toroids.samplers.sgd import SGD

    calls = []
    real = base.is_binary
    monkeypatch.setattr(base, "is_binary", lambda m: calls.append(1) or real(m))
    data = load_dataset("digits")
    sgd = SGD(
        lambda r: build_model("mlp", data.input_shape, data.n_classes, seed=r, widths=[8]),
        data,
        {},
        epochs=1,
        batch_size=256,
        seed=0,
        device=torch.device("cpu"),
    )
    sgd.train_epoch(0)  # 6 steps
    assert len(calls) == 1


def test_checkpoint_bytes_are_reproducible(tmp_path):
    path = tmp_path / "c.safetensors"
    digests = set()
    for _ in range(8):
        save_state(path, {"w": torch.ones(3)}, {"epoch": 1, "history": [], "identity": "x"})
        digests.add(sha256(path))
    assert len(digests) == 1
