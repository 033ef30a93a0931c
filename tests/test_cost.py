"""The cost estimate (toroids.cost): FLOPs counted from the modules against their closed forms, a job's
FLOPs against its formula, the jobs against the study's plan and Snakemake's DAG, and the paper study's
declared runtimes against the estimate."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import update_config
from torch.utils.flop_counter import FlopCounterMode

from toroids import cost, study
from toroids.config import load_schema, validate_config
from toroids.data import load_dataset
from toroids.models import build_model
from toroids.samplers.base import batch_loss
from toroids.sharpness import _split, hvp
from toroids.study import ModelPlan

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "paper.yaml"
TEACHER = {"D": 5, "P": 40, "N": 6, "n_test": 30, "seed": 0}


@pytest.fixture(scope="module")
def paper():
    return cost.effective_config([PAPER])


@pytest.fixture(scope="module")
def paper_costs(paper):
    return cost.rule_costs(paper)


def plan(sampler="sgd", arch="mlp", model=None, options=None, training=None):
    """A hand-written plan: ``arch`` on a teacher task of 40 train and 30 test samples of 6 inputs, in the
    experiment ``teacher`` (whose S solutions train 4 epochs)."""
    return ModelPlan(
        model_id="m",
        experiment="teacher",
        arch=arch,
        dataset="teacher",
        sampler=sampler,
        seed=0,
        model_options=model if model is not None else {"widths": [8]},
        training={"epochs": 3, "batch_size": 10, "test_every": 2, **(training or {})},
        sampler_options=options or {},
        data_options=TEACHER,
        solution_training={"sampler": "sgd", "options": {}, "epochs": 4, "batch_size": 10},
    )


# ------------------------------------------------------------------------------------ forward FLOPs


def test_an_mlp_counts_two_flops_per_weight_and_sample():
    flops = cost.forward_flops("mlp", {"widths": [7, 5]}, (1, 4, 3), 3)
    assert flops == 2 * (12 * 7 + 7 * 5 + 5 * 3)


@pytest.mark.parametrize(
    "padding, expected",
    [
        # conv 2→3 (3×3) on 12×12 → 10×10, pool 5×5; conv 3→4 → 3×3, pool 1×1; FC 4→6→10
        (0, 2 * 9 * 2 * 3 * 10 * 10 + 2 * 9 * 3 * 4 * 3 * 3 + 2 * 4 * 6 + 2 * 6 * 10),
        # padding 1: 12×12, pool 6×6; 6×6, pool 3×3; FC 36→6→10
        (1, 2 * 9 * 2 * 3 * 12 * 12 + 2 * 9 * 3 * 4 * 6 * 6 + 2 * 36 * 6 + 2 * 6 * 10),
    ],
)
def test_a_conv_net_counts_2_k2_cin_cout_hout_wout_per_convolution(padding, expected):
    options = {"channels": [3, 4], "kernel_size": 3, "padding": padding, "pool": "each", "fc": 6}
    assert cost.forward_flops("lenet", options, (2, 12, 12), 10) == expected


def test_a_binary_network_counts_its_sign_products():
    # the committee machine: N → H binary units → one fixed output unit
    assert cost.forward_flops("committee", {"hidden": 5}, (20,), 2) == 2 * (20 * 5 + 5 * 1)


def test_a_network_that_fails_on_the_meta_device_is_counted_on_a_cpu_batch_with_a_warning(monkeypatch):
    def cpu_only(*args, **kwargs):
        if torch.empty(()).is_meta:
            raise NotImplementedError("no meta kernel")
        return build_model(*args, **kwargs)

    monkeypatch.setattr(cost, "build_model", cpu_only)
    with pytest.warns(UserWarning, match="CPU batch of 1"):
        flops = cost.forward_flops("mlp", {"widths": [11]}, (1, 3, 3), 4)
    assert flops == 2 * (9 * 11 + 11 * 4)


def test_a_step_costs_at_most_3f_and_a_hessian_vector_product_at_most_9f():
    net = build_model("mlp", (1, 6, 6), 10, seed=0, widths=[32, 32])
    f = cost.forward_flops("mlp", {"widths": [32, 32]}, (1, 6, 6), 10)
    x, y = torch.randn(16, 1, 6, 6), torch.randint(0, 10, (16,))
    with FlopCounterMode(display=False) as step:
        batch_loss(net(x), y).backward()
    v = {k: torch.ones_like(t) for k, t in _split(net, "all")[0].items()}
    with FlopCounterMode(display=False) as product:
        hvp(net, x, y, v)
    # the first layer needs no input gradient (and no input tangent): a little less than the bound
    assert 0.75 * 3 * f <= step.get_total_flops() / 16 <= 3 * f
    assert 0.75 * cost.HVP_FACTOR * f <= product.get_total_flops() / 16 <= cost.HVP_FACTOR * f


def test_data_sizes_are_those_of_the_loaded_data_sets():
    for name, options in [("digits", {"test_fraction": 0.3}), ("teacher", TEACHER)]:
        data = load_dataset(name, options)
        size = cost.data_sizes(name, options)
        assert (size.n_train, size.n_test) == (len(data.y_train), len(data.y_test))
        assert (size.input_shape, size.n_classes) == (data.input_shape, data.n_classes)
    assert cost.data_sizes("cifar10", {})[:2] == (50_000, 10_000)
    assert cost.data_sizes("mnist_parity", {"n_train": 10_000}) == (10_000, 10_000, (1, 28, 28), 2)


# ---------------------------------------------------------------------------------------- job FLOPs

F_MLP = 2 * (6 * 8 + 8 * 2)  # 6 inputs → 8 → 2 outputs
N, M = 40, 30


def test_a_train_job_costs_epochs_times_samples_times_3f_plus_its_evaluations():
    # 3 epochs, the test error after epochs 2 and 3 (test_every 2, and the last), the final errors
    assert cost.train_flops(plan()) == (3 * N * 3 + 2 * M + N + M) * F_MLP


def test_rsgd_trains_every_replica_and_evaluates_them():
    fixed = plan("rsgd", options={"replicas": 3, "gamma0": 0.1})
    base = (3 * N * 3 * 3 + 2 * M + N + M) * F_MLP
    assert cost.train_flops(fixed) == base + 3 * N * F_MLP  # the replicas' train errors
    auto = plan("rsgd", options={"replicas": 3, "gamma0": None})
    assert cost.train_flops(auto) == base + 2 * 3 * N * F_MLP  # and the automatic γ0
    # a voted binary centre recomputes its BatchNorm statistics whenever it is taken (4 times here)
    binary = plan("rsgd", "binary_mlp", {"widths": [4]}, {"replicas": 2, "gamma0": 0.1})
    f = 2 * (6 * 4 + 4 * 1)
    assert cost.train_flops(binary) == (3 * N * 3 * 2 + 2 * M + N + M + 2 * N + 4 * N) * f


def test_adv_adds_its_pretraining_on_noisy_copies_and_their_accuracy():
    adv = plan("adv", options={"pretrain_epochs": 4, "R": 2, "include_clean": False})
    # 7 epochs in all: the test error after epochs 2, 4, 6 and 7
    pretrain = 4 * (2 * N * 3 + 2 * N)
    assert cost.train_flops(adv) == (3 * N * 3 + 4 * M + N + M + pretrain) * F_MLP
    clean = plan("adv", options={"pretrain_epochs": 4, "R": 2, "include_clean": True})
    assert cost.train_flops(clean) == cost.train_flops(adv) + 4 * N * 3 * F_MLP


def test_sam_takes_two_passes_per_sample():
    assert cost.train_flops(plan("sam")) == (3 * N * 3 * 2 + 2 * M + N + M) * F_MLP


def test_the_epochs_are_the_plans_not_the_configs():
    assert cost.train_flops(plan(training={"epochs": 5})) == (5 * N * 3 + 3 * M + N + M) * F_MLP


def test_the_measurements_pairs_bends_and_sections_cost_their_formulas():
    config = validate_config(
        {
            "study": "t",
            "experiments": [
                {
                    "name": "teacher",
                    "arch": "mlp",
                    "dataset": "teacher",
                    "samplers": ["sgd"],
                    "seeds": [0, 1],
                },
                {
                    "name": "own_grid",
                    "arch": "mlp",
                    "dataset": "teacher",
                    "samplers": ["sgd"],
                    "seeds": [0],
                    "local_energy": {"sigmas": [0.0, 0.1, 0.2, 0.3, 0.4], "sigma_star": 0.1},
                },
            ],
            "local_energy": {"sigmas": [0.0, 0.1, 0.2], "n_samples": 4, "sigma_star": 0.1},
            "sharpness": {"n_probes": 3},
            "geometry": {"n_points": 5, "test_along_paths": False},
            "midpoints": {"epochs": 2, "variants": ["linear", "geodesic_aligned"]},
            "sections": {"resolution": 7},
        },
        load_schema(),
    )
    p = plan()
    assert cost.local_energy_flops(p, config) == (1 + 2 * 4) * N * F_MLP
    # an experiment's own σ grid
    own = dataclasses.replace(p, experiment="own_grid")
    assert cost.local_energy_flops(own, config) == (1 + 4 * 4) * N * F_MLP
    assert cost.hessian_flops(p, config) == 2 * 3 * N * cost.HVP_FACTOR * F_MLP
    assert cost.pair_flops(p, config) == 3 * 5 * N * F_MLP
    bend = (2 * N * 3 + 2 * M + N + M) + 9 * N  # trained 2 epochs, tested each; 9 points on the bent path
    assert cost.midpoint_flops(p, config) == 2 * bend * F_MLP
    assert cost.section_flops(p, config) == 2 * 49 * (N + M) * F_MLP
    assert cost.triplet_flops(p, config) == 2 * 49 * (N + M) * F_MLP
    # binary networks: no Hessian; random paths over n_orders flip orders, raw and aligned
    b = plan(arch="binary_perceptron", model={})
    f = 2 * 6
    assert cost.hessian_flops(b, config) == 0
    assert cost.pair_flops(b, config) == 2 * 5 * 5 * N * f
    # two bends trained as the S solutions are (4 epochs), 5 orders of 9 points each
    assert cost.midpoint_flops(b, config) == 2 * ((4 * N * 3 + 4 * M + N + M) + 5 * 9 * N) * f


# ------------------------------------------------------------------------------------ the study's jobs


def job_counts(config):
    counts = {}
    for job in cost.jobs(config):
        counts[job.rule] = counts.get(job.rule, 0) + 1
    return counts


def test_the_default_studys_jobs_are_those_of_its_plan():
    config = cost.effective_config()
    assert config["study"] == "default"
    pairs = study.pairs(config)
    mids = study.per_type(config, pairs, "midpoints")
    expected = {
        "train_*": len(study.train_blocks(config)),
        "measure_*": len(study.measure_blocks(config)),
        "pair_block": len(study.pair_blocks(config)),
        "midpoint": len(study.blocks_of(mids, config["midpoints"]["pairs_per_job"], "mid")),
        "section": len(study.per_type(config, pairs, "sections")),
        "triplet_section": len(study.triplets(config)),
    }
    assert job_counts(config) == {k: v for k, v in expected.items() if v}
    names = [j.job_id for j in cost.jobs(config) if j.rule == "train_*"]
    assert names == [f"train_{b.rule_id}" for b in study.train_blocks(config).values()]


def test_the_paper_studys_jobs_are_those_snakemake_schedules(tmp_path, paper):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--workflow-profile", "none"]
    cmd += ["--directory", str(tmp_path), "--configfile", str(PAPER), "-n", "--quiet", "rules"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    scheduled = {}
    stats = out.stdout.split("Job stats:")[1]  # Snakemake prints the table twice
    for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M):
        group = re.sub(r"^(train|measure)_(?!plan$).*", r"\1_*", rule)
        scheduled[group] = scheduled.get(group, 0) + int(n)
    counts = job_counts(paper)
    assert counts == {r: scheduled.get(r, 0) for r in counts}
    assert set(counts) == set(cost.RULES)


def test_every_paper_rules_largest_job_fits_twice_in_its_runtime_on_an_a100(paper_costs):
    a100 = cost.DEVICES["a100"]
    too_long = [
        f"{c.rule}: largest job {c.largest_hours(a100):.2f} h, declared {c.runtime_min} min"
        for c in paper_costs
        if 2 * c.largest_hours(a100) * 60 > c.runtime_min
    ]
    assert not too_long, too_long


def test_the_runtime_is_read_from_the_validated_config(paper, paper_costs):
    """Each kind of job declares its own (resources.rules over resources), as the rules ask for it."""
    from toroids.config import rule_resources

    kinds = {c.rule: c.rule.removesuffix("_*") for c in paper_costs}
    assert {c.rule: c.runtime_min for c in paper_costs} == {
        rule: rule_resources(paper, kind)["runtime"] for rule, kind in kinds.items()
    }
    assert len({c.runtime_min for c in paper_costs}) > 1, "config/paper.yaml sizes each kind of job"
    paper_minutes = {"train_*": 480, "measure_*": 180, "pair_block": 120, "midpoint": 300, "section": 240,
                     "triplet_section": 60}  # fmt: skip
    assert {c.rule: c.runtime_min for c in paper_costs} == paper_minutes


# --------------------------------------------------------------------------------- config and command


def test_configfiles_merge_as_snakemake_merges_them(tmp_path):
    base = yaml.safe_load(PAPER.read_text())
    over = {"study": "short", "training": {"epochs": 10}, "geometry": {"n_points": 5}}
    (tmp_path / "over.yaml").write_text(yaml.safe_dump(over))
    merged = yaml.safe_load(PAPER.read_text())
    update_config(merged, over)
    merged["data"]["download"] = True  # as effective_config: the presence of the data files costs nothing
    got = cost.effective_config([PAPER, tmp_path / "over.yaml"])
    assert got == validate_config(merged, load_schema())
    assert got["training"] == {**base["training"], "epochs": 10, "test_every": 1}


def test_the_command_prints_a_markdown_table_with_a_row_per_rule_and_a_total(capsys):
    assert (
        cost.main(["--configfile", str(ROOT / "config" / "config.yaml"), "--markdown", "--device", "h100"])
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| rule | jobs | PFLOP | h100 hours |")
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [*cost.RULES, "**total**"]
    total_jobs = int(rows[-1].split(" | ")[1])
    assert total_jobs == sum(int(r.split(" | ")[1]) for r in rows[1:-1])
    assert "20 TFLOP/s" in out
