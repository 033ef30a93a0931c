"""What a study costs, before anything runs: per rule its jobs, their FLOPs and GPU-hours on a device class.

    python -m toroids.cost --configfile config/paper.yaml [--device a100] [--markdown]

The config is the one the workflow sees (:func:`effective_config`); the jobs are the study's plan
(:mod:`toroids.study`, the same blocks, pairs and triplets that rules/common.smk hands to the rules). F is
the forward FLOPs of one sample (:func:`forward_flops`: the network built on the meta device, counted by
``torch.utils.flop_counter.FlopCounterMode``: 2·in·out per Linear, 2·k²·C_in·C_out·H_out·W_out per
convolution; element-wise layers, BatchNorm, pooling and the optimizer's update are not counted). A
backward pass is counted 2F (the gradients of the inputs and of the weights: one product each), a step
3F per sample; a Hessian-vector product 9F (:data:`HVP_FACTOR`). n, m: the train and test samples of the
model's data set (:func:`data_sizes`). What each job computes, with [c] = 1 when c holds:

* ``train_*`` (per model of the block; :func:`train_flops`): E = ``plan.training["epochs"]``, R replicas
  (``toroids.train.n_replicas``), k forward-backward passes per sample (SAM 2, else 1), T =
  ``total_epochs(E, options)`` epochs in all, t = ⌊T / test_every⌋ + [T mod test_every ≠ 0] test
  evaluations::

      E·n·3F·R·k  +  t·m·F  +  (n + m)·F                                   (training, tests, final errors)
      + ADV:   P·(R'·n + [include_clean]·n)·3F + P·R'·n·F    (P pre-training epochs on R' noisy copies of
                                                              each input, each followed by its accuracy)
      + RSGD:  R·n·F·(1 + [gamma0 null, R > 1])   (the replicas' train errors; the automatic γ0)
               + (t + 2)·n·F·[binary, BatchNorm, returns centre]   (the voted centre's BN statistics)

  The minibatch size changes the number of steps, not the FLOPs. ADV's pre-training is counted in full,
  an upper bound: it stops once its target accuracy is reached.
* ``measure_*`` (per model; :func:`local_energy_flops`, :func:`hessian_flops`): the local energy on the
  experiment's grid (``study.local_energy_settings``) (1 + #{σ > 0}·n_samples)·n·F, binary
  (1 + #{ε > 0}·flip_samples)·n·F; continuous networks also the Hessian trace 2·n_probes·n·9F (raw and
  normalized, toroids.runs.measure_model).
* ``pair_block`` (per pair; :func:`pair_flops`): s = n + [geometry.test_along_paths]·m samples per point
  (plus n when BatchNorm statistics are recomputed, evaluate.bn_policy ``recompute``): continuous 3 paths
  × n_points × s·F; binary 2 paths (raw, aligned) × n_orders × n_points × s·F.
* ``midpoint`` (per pair; :func:`midpoint_flops`): per bend, training E'·n·3F + E'·m·F (train()'s test
  error every epoch) + (n + m)·F, then the bent path's 2·n_points − 1 points × s·F; continuous: one bend per
  ``midpoints.variants``, E' = ``midpoints.epochs``; binary: 2 × ``midpoints.binary_midpoints`` bends (raw,
  aligned) with n_orders paths each, trained as the experiment trains its "S" solutions
  (``plan.solution_training``: its sgd, stepping with SGD or Adam, one pass per sample) for
  E' = ``plan.solution_training["epochs"]``.
* ``section`` (per pair; :func:`section_flops`): #representations × resolution² × (n + m)·F (+ n·F per
  point for recomputed BatchNorm statistics); ``triplet_section``: the same with 2 representations (raw,
  aligned).

GPU-hours = FLOPs / (the device class's sustained FLOP/s, :data:`DEVICES`) / 3600. The rates are
assumptions, not measurements: what FP32 training at batch 128 with PyTorch's default precision (FP32
matrix products; cuDNN convolutions in TF32 from Ampere on) sustains on the VGG16-BN convolutions that make
up most of the study's FLOPs. The MLPs, LeNets and binary networks are latency-bound on a GPU (kernels too
small to fill it, a host synchronization per step): their hours are underestimated. To calibrate a rate,
divide a model's :func:`train_flops` by the ``wall_time_s`` of its meta.json. config/paper.yaml: 6.0 EFLOP,
about 140 A100-hours at 12 TFLOP/s, 84 H100-hours at 20 (``make cost``, 2026-12-01).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from snakemake.utils import update_config
from torch.utils.flop_counter import FlopCounterMode

from toroids import study
from toroids.config import (
    ConfigError,
    input_shape,
    load_schema,
    read_config_file,
    rule_resources,
    validate_config,
)
from toroids.data import DATASETS
from toroids.models import build_model
from toroids.samplers import get_sampler
from toroids.study import BINARY_ARCHS, ModelPlan, Pair, has_batchnorm
from toroids.train import n_replicas

__all__ = [
    "DEVICES",
    "HVP_FACTOR",
    "PASSES",
    "RULES",
    "DataSize",
    "Device",
    "Job",
    "RuleCost",
    "data_sizes",
    "declared_runtime",
    "effective_config",
    "forward_flops",
    "hessian_flops",
    "jobs",
    "local_energy_flops",
    "midpoint_flops",
    "pair_flops",
    "render",
    "rule_costs",
    "section_flops",
    "train_flops",
    "triplet_flops",
]

ROOT = Path(__file__).resolve().parents[3]

#: a Hessian-vector product forward-over-reverse, in forward passes: per layer y = W x the forward (1
#: product), its tangent (dW x + W dx: 2), the backward (Wᵀg, g xᵀ: 2) and the backward's tangent (4);
#: FlopCounterMode on toroids.sharpness.hvp reads 7.2 (MLP) to 8.9 (VGG) F, the first layer having no dx
HVP_FACTOR = 9
#: forward-backward passes per sample and epoch of the samplers that take more than one (SAM: at w, w + ε)
PASSES = {"sam": 2}
#: the rules whose jobs compute on networks, in the order of the DAG
RULES = ("train_*", "measure_*", "pair_block", "midpoint", "section", "triplet_section")


@dataclass(frozen=True)
class Device:
    """A device class: the FLOP/s that the study's jobs are assumed to sustain on it, and why."""

    name: str
    flops: float
    why: str


#: the device classes; their rates are assumptions (the module doc): a fraction of the FP32 peak where the
#: FP32 units bound the work, the A100's ratio of memory bandwidths for the H100, whose extra FP32 units
#: small kernels do not fill (public FP32/TF32 training benchmarks put it at 1.5-2 A100s, not the 3.4 of
#: their peaks)
DEVICES = {
    d.name: d
    for d in (
        Device("v100", 7e12, "45% of its 15.7 TFLOP/s FP32 peak (no TF32: its convolutions run in FP32 too)"),
        Device(
            "a100",
            12e12,
            "60% of its 19.5 TFLOP/s FP32 peak, 8% of the 156 of TF32, which cuDNN's convolutions use",
        ),
        Device(
            "h100",
            20e12,
            "30% of its 67 TFLOP/s FP32 peak (SXM), 1.7× the A100 like their memory bandwidths: batches of "
            "128 leave most of its units idle",
        ),
        Device("cpu", 0.5e12, "a quarter of the ~2 TFLOP/s FP32 peak of a 16-core AVX-512 node"),
    )
}


class DataSize(NamedTuple):
    """What a job's FLOPs read of a data set: its samples, the shape of one input and the classes."""

    n_train: int
    n_test: int
    input_shape: tuple[int, ...]
    n_classes: int


#: (train, test) samples of the torchvision data sets' whole splits
VISION_SIZES = {
    "mnist": (60_000, 10_000),
    "mnist_parity": (60_000, 10_000),
    "fashion_mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
}
#: scikit-learn's digits: images in all, split by test_fraction
DIGITS = 1797


def data_sizes(dataset: str, options: Mapping[str, Any]) -> DataSize:
    """Train and test samples, input shape and classes of ``dataset`` with ``options``, without loading it:
    the teacher's P and n_test; digits ⌈test_fraction · 1797⌉ test images (toroids.data's split), the rest
    train; the torchvision sets their whole splits unless n_train / n_test keep fewer."""
    opts = {**DATASETS[dataset].defaults, **options}
    classes = 2 if dataset == "teacher" or dataset.endswith("_parity") else 10
    if dataset == "teacher":
        n, m = int(opts["P"]), int(opts["n_test"])
    elif dataset.startswith("digits"):
        m = int(math.ceil(opts["test_fraction"] * DIGITS))
        n = DIGITS - m
    else:
        n, m = VISION_SIZES[dataset]
        n, m = int(opts["n_train"] or n), int(opts["n_test"] or m)
    return DataSize(n, m, input_shape(dataset, opts), classes)


def forward_flops(arch: str, model_options: Mapping[str, Any], shape: Sequence[int], n_classes: int) -> int:
    """Forward FLOPs of one sample through ``arch`` (eval mode), counted by FlopCounterMode on a network
    built on the meta device (no memory, no arithmetic); on a CPU batch of one if that fails (with a
    warning)."""
    return _forward_flops(arch, json.dumps(dict(model_options), sort_keys=True), tuple(shape), n_classes)


@functools.cache
def _forward_flops(arch: str, options: str, shape: tuple[int, ...], n_classes: int) -> int:
    def count(device: str) -> int:
        with torch.device(device):
            net = build_model(arch, shape, n_classes, **json.loads(options)).eval()
            x = torch.zeros(1, *shape)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(x)
        return int(counter.get_total_flops())

    try:
        return count("meta")
    except Exception as exc:  # any op without a meta kernel: count on real (small) tensors instead
        warnings.warn(f"{arch}: counted on a CPU batch of 1, not on the meta device ({exc})", stacklevel=3)
        return count("cpu")


class _Net(NamedTuple):
    F: int  # forward FLOPs per sample
    n: int  # train samples
    m: int  # test samples


def _net(plan: ModelPlan) -> _Net:
    size = data_sizes(plan.dataset, plan.data_options)
    return _Net(forward_flops(plan.arch, plan.model_options, size.input_shape, size.n_classes), *size[:2])


def _training(net: _Net, epochs: int, tested: int, passes: int = 1) -> float:
    """E·n·3F·passes + t·m·F + (n + m)·F: the epochs, the test errors along the way, the final errors."""
    return (epochs * net.n * 3 * passes + tested * net.m + net.n + net.m) * net.F


def _tested(total: int, every: int) -> int:
    return total // every + (1 if total % every else 0)


def train_flops(plan: ModelPlan) -> float:
    """FLOPs of training ``plan``'s model (the module docstring's ``train_*`` formula)."""
    net, epochs = _net(plan), int(plan.training["epochs"])
    sampler = get_sampler(plan.sampler)
    opts = {**sampler.defaults, **plan.sampler_options}
    replicas = n_replicas({"sampler": plan.sampler, "sampler_options": plan.sampler_options})
    total = sampler.total_epochs(epochs, plan.sampler_options)
    tested = _tested(total, int(plan.training["test_every"]))
    flops = _training(net, epochs, tested, replicas * PASSES.get(plan.sampler, 1))
    if plan.sampler == "adv":
        pre, copies = total - epochs, int(opts["R"]) * net.n
        flops += pre * ((copies + net.n * bool(opts["include_clean"])) * 3 + copies) * net.F
    if plan.sampler == "rsgd":
        flops += replicas * net.n * net.F * (1 + (opts["gamma0"] is None and replicas > 1))
        if plan.arch in BINARY_ARCHS and has_batchnorm(plan) and opts["returns"] == "center":
            flops += (tested + 2) * net.n * net.F
    return flops


def local_energy_flops(plan: ModelPlan, config: Mapping[str, Any]) -> float:
    """(1 + #{σ > 0}·n_samples)·n·F; a binary network (1 + #{ε > 0}·flip_samples)·n·F; on the grid of the
    model's experiment."""
    le, net = study.local_energy_settings(config, plan.experiment), _net(plan)
    if plan.arch in BINARY_ARCHS:
        draws = sum(e > 0 for e in le["flip_fractions"]) * le["flip_samples"]
    else:
        draws = sum(s > 0 for s in le["sigmas"]) * le["n_samples"]
    return (1 + draws) * net.n * net.F


def hessian_flops(plan: ModelPlan, config: Mapping[str, Any]) -> float:
    """2·n_probes·n·9F (raw and normalized); 0 for a binary network, whose Hessian trace is not measured."""
    if plan.arch in BINARY_ARCHS:
        return 0.0
    net = _net(plan)
    return 2 * config["sharpness"]["n_probes"] * net.n * HVP_FACTOR * net.F


def _point(plan: ModelPlan, config: Mapping[str, Any], splits: str = "paths") -> float:
    """FLOPs of evaluating one configuration: n (+ m along paths with test_along_paths, always on
    sections) samples, plus n in train mode when its BatchNorm statistics are recomputed."""
    net = _net(plan)
    test = splits == "sections" or config["geometry"]["test_along_paths"]
    recompute = config["evaluate"]["bn_policy"] == "recompute" and has_batchnorm(plan)
    return (net.n * (1 + recompute) + net.m * test) * net.F


def pair_flops(plan: ModelPlan, config: Mapping[str, Any]) -> float:
    """One pair of ``plan``'s experiment: 3 paths (binary: 2 × n_orders) × n_points evaluations."""
    geo = config["geometry"]
    paths = 2 * geo["n_orders"] if plan.arch in BINARY_ARCHS else len(study.PATHS)
    return paths * geo["n_points"] * _point(plan, config)


def midpoint_flops(plan: ModelPlan, config: Mapping[str, Any]) -> float:
    """The single bends of one pair of ``plan``'s experiment: each bend trained, then its bent paths."""
    mid, geo, net = config["midpoints"], config["geometry"], _net(plan)
    points = 2 * geo["n_points"] - 1
    if plan.arch in BINARY_ARCHS:  # raw and aligned, binary_midpoints each, trained like the "S" solutions
        bends, paths = 2 * mid["binary_midpoints"], geo["n_orders"]
        epochs = int(plan.solution_training["epochs"])
    else:
        bends, epochs, paths = len(mid["variants"]), int(mid["epochs"]), 1
    return bends * (_training(net, epochs, epochs) + paths * points * _point(plan, config))


def section_flops(plan: ModelPlan, config: Mapping[str, Any]) -> float:
    """#representations × resolution² grid points, train and test."""
    sec = config["sections"]
    return len(sec["representations"]) * sec["resolution"] ** 2 * _point(plan, config, "sections")


def triplet_flops(plan: ModelPlan, config: Mapping[str, Any]) -> float:
    """2 representations (raw, aligned) × resolution² grid points, train and test."""
    return 2 * config["sections"]["resolution"] ** 2 * _point(plan, config, "sections")


PairCost = Callable[[ModelPlan, Mapping[str, Any]], float]


@dataclass(frozen=True)
class Job:
    """One job of a rule (``train_*`` and ``measure_*`` stand for their per-block rules) and its FLOPs."""

    rule: str
    job_id: str
    flops: float


def jobs(config: Mapping[str, Any]) -> list[Job]:
    """Every job of the network rules, as rules/common.smk plans them (the same study functions)."""
    plans = study.models(config)
    pairs = study.pairs(config)
    out = [
        Job("train_*", f"train_{b.rule_id}", sum(train_flops(plans[m]) for m in b.models))
        for b in study.train_blocks(config).values()
    ]
    out += [
        Job(
            "measure_*",
            f"measure_{b.rule_id}",
            sum(local_energy_flops(plans[m], config) + hessian_flops(plans[m], config) for m in b.models),
        )
        for b in study.measure_blocks(config).values()
    ]

    def blocks(rule: str, some: Mapping[str, Sequence[Pair]], per_pair: PairCost) -> list[Job]:
        return [Job(rule, k, sum(per_pair(plans[p.left], config) for p in ps)) for k, ps in some.items()]

    out += blocks("pair_block", study.pair_blocks(config), pair_flops)
    out += blocks("midpoint", study.midpoint_blocks(config, pairs), midpoint_flops)
    sections = {k: [p] for k, p in study.section_pairs(config, pairs).items()}
    out += blocks("section", sections, section_flops)
    out += [
        Job("triplet_section", t.triplet_id, triplet_flops(plans[t.models[0]], config))
        for t in study.triplets(config)
    ]
    return out


def declared_runtime(config: Mapping[str, Any], rule: str) -> int:
    """The wall time (minutes) a job of ``rule`` asks for at its first attempt: its kind's runtime
    (:func:`toroids.config.rule_resources`, as rules/common.smk's ``grown`` asks)."""
    return rule_resources(config, rule.removesuffix("_*"), attempt=1)["runtime"]


@dataclass(frozen=True)
class RuleCost:
    """A rule's jobs, their FLOPs in all and of the largest, and the runtime each job declares."""

    rule: str
    jobs: int
    flops: float
    largest: float
    runtime_min: int

    def hours(self, device: Device) -> float:
        return self.flops / device.flops / 3600

    def largest_hours(self, device: Device) -> float:
        return self.largest / device.flops / 3600


def rule_costs(config: Mapping[str, Any]) -> list[RuleCost]:
    """Per network rule (:data:`RULES`, those with jobs): its cost."""
    by_rule: dict[str, list[float]] = {}
    for job in jobs(config):
        by_rule.setdefault(job.rule, []).append(job.flops)
    return [
        RuleCost(r, len(by_rule[r]), sum(by_rule[r]), max(by_rule[r]), declared_runtime(config, r))
        for r in RULES
        if r in by_rule
    ]


def _num(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 0.01 or x == 0 else f"{x:.1g}"


def render(costs: Sequence[RuleCost], device: Device, *, study_name: str, markdown: bool = False) -> str:
    """The table of :func:`rule_costs` on ``device``, with a total line; markdown or aligned text."""
    head = ["rule", "jobs", "PFLOP", f"{device.name} hours", "largest job (h)", "runtime (min/job)"]
    head.append("largest / runtime")
    rows = [
        [
            c.rule,
            str(c.jobs),
            _num(c.flops / 1e15),
            _num(c.hours(device)),
            _num(c.largest_hours(device)),
            str(c.runtime_min),
            f"{100 * c.largest_hours(device) * 60 / c.runtime_min:.0f}%",
        ]
        for c in costs
    ]
    total = sum(c.flops for c in costs)
    rows.append(
        ["total", str(sum(c.jobs for c in costs)), _num(total / 1e15), _num(total / device.flops / 3600)]
        + [_num(max(c.largest_hours(device) for c in costs)), "", ""]
    )
    rate = f"{device.flops / 1e12:g} TFLOP/s"
    title = f"Study '{study_name}' on {device.name}, assumed to sustain {rate}: {device.why}."
    notes = (
        "ADV's pre-training is counted in full (an upper bound: it stops at its target); the local rules "
        "(data, plans, tables, figures) run where Snakemake runs and are not counted."
    )
    if markdown:
        rows[-1][0] = "**total**"
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = []
        for r in [head, *rows]:
            cells = [r[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(r[1:], widths[1:])]
            lines.append("  ".join(cells).rstrip())
    return "\n".join([title, "", *lines, "", notes])


def effective_config(configfiles: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The config the workflow builds its DAG from: the ``--configfile`` files merged in order as Snakemake
    merges them, or, without any, config/config.yaml (the Snakefile's default study, never merged under a
    study file); then validated, the schema's defaults filled in (rules/common.smk)."""
    config: dict[str, Any] = {}
    for path in configfiles or [ROOT / "config" / "config.yaml"]:
        update_config(config, read_config_file(path))  # Snakemake's own merge of --configfile files
    # whether the data files are present changes no cost: their check (data.download false) is skipped
    if isinstance(config.get("data", {}), dict):
        config.setdefault("data", {})["download"] = True
    return validate_config(config, load_schema())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m toroids.cost``: print a study's cost per rule before running it."""
    ap = argparse.ArgumentParser(prog="python -m toroids.cost", description=main.__doc__)
    ap.add_argument("--configfile", nargs="+", default=[], help="study files, as given to Snakemake")
    ap.add_argument("--device", choices=sorted(DEVICES), default="a100", help="device class (default a100)")
    ap.add_argument("--markdown", action="store_true", help="a markdown table")
    args = ap.parse_args(argv)
    try:
        config = effective_config(args.configfile)
    except ConfigError as err:
        print(f"toroids.cost: {err}", file=sys.stderr)
        return 1
    table = render(
        rule_costs(config), DEVICES[args.device], study_name=config["study"], markdown=args.markdown
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
