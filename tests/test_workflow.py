"""The workflow through Snakemake's CLI: dry-run, a bad config, and the tiny study end to end."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import needs_real_fmnist
from toroids.config import load_schema, validate_config
from toroids.figures import FIGURES, select_all
from toroids.study import BEND_PATHS, BINARY_PATHS, PATHS

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--workflow-profile", "none"]

TINY = {
    "study": "tiny",
    "threads": 1,
    "resources": {"models_per_job": 3},
    "experiments": [
        {
            "arch": "mlp",
            "dataset": "digits",
            "model": {"widths": [24, 24]},
            "samplers": ["sgd"],
            "seeds": [0, 1],
        },
        {
            "name": "perc",
            "arch": "binary_perceptron",
            "dataset": "teacher",
            "samplers": ["sgd"],
            "seeds": [0, 1, 2],
            "triplet_sections": True,
            "training": {"epochs": 3, "batch_size": 50},
            "sampler_options": {"sgd": {"lr": 1.0, "momentum": 0.0, "nesterov": False}},
            "sections_pairs_per_type": 0,
        },
    ],
    "datasets": {"teacher": {"D": 21, "P": 60, "N": 80, "n_test": 200}},
    "training": {"epochs": 12, "batch_size": 64},
    "geometry": {"n_points": 5},
    "midpoints": {"epochs": 3},
    "sections": {"resolution": 5},
    "local_energy": {"sigmas": [0.0, 0.2, 0.4], "n_samples": 4, "sigma_star": 0.4},
}


def run(args, cwd, config=TINY, timeout=600):
    cfg = Path(cwd) / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [*SNAKEMAKE, "--directory", str(cwd), "--configfile", str(cfg), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_dry_run_lists_every_rule(tmp_path):
    out = run(["-n", "--quiet", "rules"], tmp_path)
    assert out.returncode == 0, out.stderr
    blocks = ["train_mlp_digits_sgd_b000", "train_perc_sgd_b000", "measure_mlp_digits_m000"]
    blocks.append("measure_perc_m000")
    rules = ["train_plan", "measure_plan", *blocks, "pair_block", "midpoint", "section", "triplet_section"]
    tables = ["table_models", "table_local_energy", "table_paths", "table_distances", "table_sections"]
    for rule in [*rules, *tables, "table_triplet_sections", "figure_index", "all", *drawn(TINY)]:
        assert rule in out.stdout, rule


def test_each_data_set_is_materialized_once_before_the_network_jobs(tmp_path):
    """One dataset job per (data set, options) of the study, none per network job; a training job reads it."""
    from toroids.study import data_sets

    out = run(["-n", "--quiet", "rules"], tmp_path)
    assert out.returncode == 0, out.stderr
    jobs = dict(re.findall(r"^(\S+)\s+(\d+)$", out.stdout, flags=re.M))
    cfg = validate_config(TINY, load_schema(ROOT / "config" / "schema" / "config.schema.yaml"))
    assert int(jobs["dataset"]) == len(data_sets(cfg)) >= 2 and "data_files" not in jobs  # no torchvision set
    model = "results/tiny/models/mlp-digits-sgd-s0/final.safetensors"
    train = run(["-n", "-p", "--forceall", model], tmp_path)
    read = r"input: [^\n]*results/tiny/data/digits-[0-9a-f]{12}\.safetensors"
    assert re.search(read, train.stdout), train.stdout


def test_a_figure_waits_only_for_the_tables_it_draws(tmp_path):
    """Fig. 1 reads the models and the local energy: planned alone, it needs the training and measuring jobs
    and their two tables, and no pair, bend or section job (before the tables had a rule each, every figure
    waited for the whole study)."""
    res = "results/tiny/figures"
    # (-n first: --configfile, before it, would take the targets for config files)
    out = run(["-n", f"{res}/fig01_flatness.png", f"{res}/fig01_flatness.pdf", "--quiet", "rules"], tmp_path)
    assert out.returncode == 0, out.stderr
    rules = set(re.findall(r"^(\S+)\s+\d+$", out.stdout, flags=re.M)) - {"total"}
    assert {"table_models", "table_local_energy", "fig01_flatness"} <= rules, rules
    assert not rules & {"pair_block", "midpoint", "section", "triplet_section", "table_paths"}, rules


def drawn(config):
    cfg = validate_config(config, load_schema(ROOT / "config" / "schema" / "config.schema.yaml"))
    return [name for name, sel in select_all(cfg).items() if sel.drawn]


def test_paper_config_dag_has_every_figure_rule(tmp_path):
    cmd = [*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(ROOT / "config" / "paper.yaml")]
    out = subprocess.run([*cmd, "-n", "--quiet", "rules"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for rule in [*FIGURES, "figure_index"]:
        assert f"{rule} " in out.stdout or f"{rule}\n" in out.stdout, rule


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"training": {"epochs": 0}}, "training.epochs"),
        ({"samplers": {"sgd": {"lr": -1}}}, "samplers.sgd.lr"),
        (
            {"experiments": [{"arch": "densenet", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]}]},
            "experiments.0.arch",
        ),
        ({"typo_key": 1}, "typo_key"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, patch, key):
    out = run(["--cores", "1"], tmp_path, {**TINY, **patch})
    assert out.returncode != 0
    assert key in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_tiny_study_end_to_end(tmp_path):
    out = run(["--cores", "2"], tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    res = tmp_path / "results" / "tiny"
    import pandas as pd

    names = drawn(TINY)
    # the tiny study has an MLP and a perceptron: the MLP, the perceptron and the fall-back figures
    assert {"fig01_flatness", "fig04_sections", "fig08_binary_sections", "fig18_perceptron"} <= set(names)
    for name in names:
        for ext, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
            f = res / "figures" / f"{name}.{ext}"
            assert f.read_bytes()[:4] == magic and f.stat().st_size > 5000, f
    index = pd.read_csv(res / "figures" / "index.csv")
    assert index["figure"].tolist() == list(range(1, 24))
    left_out = index[index["status"] == "left out"]
    assert set(left_out["name"]) == set(FIGURES) - set(names) and left_out["left_out"].str.len().gt(0).all()
    for name in set(FIGURES) - set(names):
        assert not (res / "figures" / f"{name}.png").exists()
    assert yaml.safe_load((res / "config.yaml").read_text())["experiments"][1]["triplet_sections"] is True
    trip = pd.read_csv(res / "tables" / "triplet_sections.csv")
    assert set(trip["representation"]) == {"raw", "aligned"} and trip["triplet"].nunique() == 1

    models = pd.read_csv(res / "tables" / "models.csv")
    assert len(models) == 5 and (models["status"] == "ok").all()
    barriers = pd.read_csv(res / "tables" / "barriers.csv")
    # the MLP: 1 pair × 6 families; the perceptron: 3 pairs × 4 (random, aligned, both with a bend)
    assert set(barriers["path"]) == set(PATHS) | set(BEND_PATHS) | set(BINARY_PATHS) and len(barriers) == 18
    le = pd.read_csv(res / "tables" / "local_energy.csv")
    assert set(le[le["model_id"].str.startswith("perc")]["noise"]) == {"flips"}
    claims = pd.read_csv(res / "tables" / "claims.csv")
    assert len(claims) == 7 and claims["status"].notna().all()
    tests = pd.read_csv(res / "tables" / "claim_tests.csv")
    assert set(tests["claim_id"]) <= set(claims["claim_id"]) and tests["outcome"].notna().all()
    # SGD-only: no ranking to test; two seeds: S-S pairs but no order of pair types; one S-S bend, whose
    # comparison with 1% cannot decide on two models
    status = claims.set_index("claim_id")["status"]
    assert status.pop("claim_3") == "inconclusive" and (status == "not measurable at this scale").all()
    log = (res / "logs" / "train" / "mlp-digits-sgd-s0.log").read_text()
    assert "epoch   12/12" in log
    # the seeds the workflow gave each model: its own, derived from (experiment, sampler, seed)
    import json

    from toroids.seeds import model_seed
    from toroids.train import init_seed

    for m in models.itertuples():
        meta = json.loads((res / "models" / m.model_id / "meta.json").read_text())
        assert meta["seeds"]["rng_seed"] == model_seed(m.experiment, m.sampler, m.seed) == m.rng_seed
        assert meta["seeds"]["init"] == [init_seed(m.rng_seed, 0)]
    # the report's tables are pages (toroids.pages), and the report carries them, not the CSVs
    pages = (("tables/claims.html", "claim_4_deep"), ("tables/paper_comparison.html", "Not compared here"),
             ("figures/index.html", "fig23_"), ("config.html", "triplet_sections"))  # fmt: skip
    for page, marker in pages:
        text = (res / page).read_text()
        assert text.startswith("<!doctype html>") and ("<table>" in text or "<pre>" in text), page
        assert marker in text, page
    report = run(["--report", str(tmp_path / "report.html")], tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    assert len(html) > 50_000 and "claims.html" in html and "paper_comparison.html" in html
    assert "60 epochs, batch 64" not in html and "12 epochs, batch 64" in html  # each experiment's own
    assert "3 epochs, batch 50" in html
    # nothing to do on a second run
    again = run(["--cores", "2", "-n"], tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


def test_a_key_given_twice_in_a_study_file_stops_the_run_naming_its_line(tmp_path):
    """Snakemake's own reading keeps the last of two; the workflow refuses the file before any job."""
    cfg = tmp_path / "config.yaml"
    text = yaml.safe_dump(TINY)
    cfg.write_text(text + "training:\n  epochs: 3\n")  # a second top-level 'training'
    cmd = [*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(cfg), "--cores", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    line = text.count("\n") + 1
    assert f"{cfg}:{line}:1: not valid YAML: the key 'training' appears twice" in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_a_study_file_means_the_same_from_any_folder(tmp_path):
    """config/paper.yaml's effective config (results/paper/config.yaml) run from the repository's root and
    from another folder: identical, and the default study's keys never leak into it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(ROOT / "Snakefile", repo / "Snakefile")
    for part in ("rules", "config", "workflow", "envs", "report"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    paper = repo / "config" / "paper.yaml"
    base = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--workflow-profile", "none"]
    target = ["results/paper/config.yaml", "--cores", "1", "--configfile", str(paper)]
    env = {**os.environ, "PYTHONPATH": str(repo / "workflow" / "scripts")}  # this copy's toroids
    from_root = subprocess.run([*base, *target], cwd=repo, capture_output=True, text=True, env=env)
    assert from_root.returncode == 0, from_root.stderr[-3000:]
    other = tmp_path / "elsewhere"
    from_other = subprocess.run(
        [*base, "--directory", str(other), *target], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert from_other.returncode == 0, from_other.stderr[-3000:]
    a = (repo / "results" / "paper" / "config.yaml").read_text()
    b = (other / "results" / "paper" / "config.yaml").read_text()
    assert a == b
    effective = yaml.safe_load(a)
    assert effective["resources"]["models_per_job"] == 1  # the default study's 15 would have leaked in
    assert "digits" not in effective["datasets"]
    # without --configfile: the default study, from whatever folder Snakemake runs in
    default = subprocess.run(
        [*base, "--directory", str(tmp_path / "d"), "--cores", "1", "results/default/config.yaml"],
        cwd=tmp_path, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert default.returncode == 0, default.stderr[-3000:]
    written = (tmp_path / "d" / "results" / "default" / "config.yaml").read_text()
    assert yaml.safe_load(written)["study"] == "default"


REAL = {
    "study": "real",
    "threads": 1,
    "data": {"root": "nowhere", "download": False},  # so the Debian package's folder is what is read
    "resources": {"models_per_job": 4},
    "datasets": {"fashion_mnist": {"n_train": 300, "n_test": 300}},
    "experiments": [
        {"arch": "mlp", "dataset": "fashion_mnist", "model": {"widths": [32]}, "samplers": ["sgd", "adv"],
         "seeds": [0, 1], "sampler_options": {"adv": {"pretrain_epochs": 4, "pretrain_target": None}}},
        {"arch": "binary_mlp", "dataset": "fashion_mnist", "model": {"widths": [16, 16]}, "samplers": ["sgd"],
         "seeds": [0, 1, 2], "triplet_sections": True, "sections_pairs_per_type": 0,
         "sampler_options": {"sgd": {"lr": 1.0, "momentum": 0.0, "nesterov": False}}},
    ],  # fmt: skip
    "training": {"epochs": 4, "batch_size": 100},
    "geometry": {"n_points": 5},
    "midpoints": {"epochs": 2, "pairs_per_type": 1},
    "sections": {"resolution": 5, "pairs_per_type": 0},
    "local_energy": {"sigmas": [0.0, 0.2], "n_samples": 2, "sigma_star": 0.2, "flip_fractions": [0.0, 0.05],
                     "flip_samples": 2},  # fmt: skip
    "sharpness": {"n_probes": 2},
    "stats": {"solutions_only": False, "n_resamples": 200},
}


@pytest.mark.workflow
@needs_real_fmnist
def test_a_tiny_study_on_the_real_fashion_mnist(tmp_path):
    """The real-data path end to end: Debian's files, read where the package put them, through every rule,
    the scorecard comparing the paper's MLP/FMNIST numbers with these models'."""
    out = run(["--cores", "2"], tmp_path, REAL, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    res = tmp_path / "results" / "real"
    import json

    import pandas as pd

    meta = json.loads((res / "models" / "mlp-fashion_mnist-sgd-s0" / "meta.json").read_text())
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")  # fmt: skip
    assert meta["data"]["files"] == [f"/usr/share/datasets/fashion-mnist/{n}.gz" for n in names]
    assert meta["data"]["options"]["n_train"] == 300 and len(meta["data"]["fingerprint"]) == 64
    models = pd.read_csv(res / "tables" / "models.csv")
    assert len(models) == 7 and (models["status"] == "ok").all()
    # learned something: chance is 0.9 (4 epochs on 300 images: the continuous MLP reached 0.46)
    assert (models[models["experiment"] == "mlp-fashion_mnist"]["test_error"] < 0.8).all()
    card = pd.read_csv(res / "tables" / "paper_comparison.csv", keep_default_na=False)
    mine = card[(card["combination"] == "mlp-fashion_mnist") & (card["quantity"] == "test_error")]
    assert set(mine["subject"]) == {"rsgd", "sgd", "adv"}
    assert (mine[mine["subject"] != "rsgd"]["n"] == 2).all()
    assert (mine[mine["subject"] == "rsgd"]["why_not"] != "").all()  # no RSGD model here, and it says so
    assert set(card["epochs"][card["combination"] == "mlp-fashion_mnist"]) == {"4"}
    # the data: its files found once (rule data_files), materialized once for both experiments (rule dataset)
    record = json.loads((res / "data" / "FashionMNIST.files.json").read_text())
    assert record["layout"] == "idx.gz" and len(record["files"]) == 4
    assert len(list((res / "data").glob("fashion_mnist-*.safetensors"))) == 1
    for name in ("fig01_flatness", "fig07_deep_binary", "fig08_binary_sections"):
        assert (res / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
