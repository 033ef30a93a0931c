"""Validation of a study's config against config/schema/config.schema.yaml, before anything runs.

Every error names the key (as a dotted path), the offending value and what is allowed; the defaults of the
schema are filled in, so downstream code never guesses a missing value.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

from toroids import datafiles
from toroids.schedules import schedule_problem

__all__ = [
    "OPERATIONAL",
    "RULE_KINDS",
    "ConfigError",
    "architecture_problem",
    "config_warnings",
    "input_shape",
    "load_schema",
    "read_config_file",
    "rule_resources",
    "validate_config",
    "without_operational",
]

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "config" / "schema" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that does not satisfy the schema or the study's own consistency rules."""


def _with_defaults(cls: type) -> type:
    """A validator class that fills each property's ``default`` into the instance before validating it."""
    validate_properties = cls.VALIDATORS["properties"]

    def properties(
        validator: Any, props: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, props, instance, schema)

    return validators.extend(cls, {"properties": properties})


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON schema counts 2.0 as an integer; a job then gets a float where it counts (range(2.0) fails):
    # a config's integers are written as integers
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    # NaN passes every bound (each comparison is false) and ∞ most: neither is a setting
    numeric = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    return numeric and math.isfinite(instance)


_TYPES = Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
_Validator = _with_defaults(validators.extend(Draft202012Validator, type_checker=_TYPES))
_Plain = validators.extend(Draft202012Validator, type_checker=_TYPES)


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    """Read the YAML schema (default: the repository's config/schema/config.schema.yaml)."""
    return yaml.safe_load(Path(path or SCHEMA_PATH).read_text())


def _key(error: ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            path.append(extra[0])
    return ".".join(path) or "<top level>"


def _describe(error: ValidationError) -> str:
    key = _key(error)
    value = error.instance
    if error.validator == "type" and isinstance(value, float) and not math.isfinite(value):
        return f"config key '{key}': {value} is not a finite number"
    if error.validator == "type" and "integer" in str(error.validator_value) and isinstance(value, float):
        hint = f" (write {int(value)})" if value.is_integer() else ""
        return f"config key '{key}': {value} is not an integer{hint}"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"config key '{key}' is not allowed here; allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not one of {error.validator_value}"
    return f"config key '{key}': {error.message}"


#: the input shape of each data set, (C, H, W) or (D,): what the architecture check needs without loading
#: anything (tests/test_config.py checks it against toroids.data)
IMAGE_SHAPES = {
    "digits": (1, 8, 8),
    "digits_parity": (1, 8, 8),
    "mnist": (1, 28, 28),
    "mnist_parity": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}
#: architectures that need images, with the default options their shapes depend on (toroids.models)
CONV_DEFAULTS = {
    "lenet": {"channels": [20, 50], "kernel_size": 5, "padding": 0, "pool": "each"},
    "binary_convnet": {"channels": [20, 50], "kernel_size": 5, "padding": 0, "pool": "each"},
    "vgg16_bn": {},
    "resnet": {},
}


def input_shape(dataset: str, data_options: Mapping[str, Any]) -> tuple[int, ...]:
    """The shape of one input of ``dataset`` (the teacher's is (N,), N from its options)."""
    if dataset == "teacher":
        return (int(data_options.get("N", 1000)),)
    return IMAGE_SHAPES[dataset]


def architecture_problem(arch: str, options: Mapping[str, Any], shape: tuple[int, ...]) -> str | None:
    """Why ``arch`` cannot take inputs of ``shape``, or None: the convolutional nets need images, and each
    convolution (kernel k, padding p: size − k + 2p + 1) and 2×2 pool (size // 2) must leave ≥ 1 pixel."""
    if arch not in CONV_DEFAULTS:
        return None
    if len(shape) != 3:
        return f"{arch} needs images (C, H, W); this data set's inputs are vectors of shape {shape}"
    if arch in ("vgg16_bn", "resnet"):  # 3×3 convolutions with padding 1; VGG skips pools below 2×2
        return None
    o = {**CONV_DEFAULTS[arch], **options}
    size, k, pad = min(shape[1:]), int(o["kernel_size"]), int(o.get("padding", 0))
    channels = list(o["channels"])
    for i in range(len(channels)):
        size = size - k + 2 * pad + 1
        if size < 1:
            return f"{arch}: {shape[1]}×{shape[2]} images are too small for convolution {i + 1} ({k}×{k})"
        if o.get("pool", "each") == "each" or i == len(channels) - 1:
            size //= 2
            if size < 1:
                return (
                    f"{arch}: {shape[1]}×{shape[2]} images are too small for the 2×2 pool after "
                    f"convolution {i + 1}"
                )
    return None


#: settings that change no result beyond floating-point rounding (where and how fast it runs): no rule
#: takes them as params or inputs, so changing one reruns nothing; jobs read them from the config
#: (toroids.jobs.operational)
OPERATIONAL = (
    ("device",),
    ("threads",),
    ("data", "root"),
    ("data", "download"),
    ("evaluate", "chunk_size"),
    ("sharpness", "memory_mb"),
    ("resources",),
)


#: the kinds of network job, each with its own resources (``resources.rules``)
RULE_KINDS = ("train", "measure", "pair_block", "midpoint", "section", "triplet_section")


def rule_resources(
    config: Mapping[str, Any], kind: str, attempt: int = 1, group_size: int = 1
) -> dict[str, int]:
    """What a network job of ``kind`` asks the scheduler for at ``attempt`` (1 = first): ``gpu``, ``mem_mb``
    and ``runtime`` (minutes) from ``resources.rules.<kind>`` over ``resources``; memory and runtime times
    the attempt (a job killed for either is retried with more), the runtime at most ``max_runtime``. A job
    that goes to the cluster in a group of ``group_size`` (the profile's group-components: the group asks for
    the sum) grows its runtime only up to ``max_runtime // group_size``, never below its declared one."""
    if kind not in RULE_KINDS:
        raise ValueError(f"unknown kind of network job {kind!r}; known: {', '.join(RULE_KINDS)}")
    res = config["resources"]
    own = {**{k: res[k] for k in ("gpu", "mem_mb", "runtime")}, **res["rules"].get(kind, {})}
    return {
        "gpu": int(own["gpu"]),
        "mem_mb": int(own["mem_mb"]) * attempt,
        "runtime": min(
            int(own["runtime"]) * attempt,
            max(int(own["runtime"]), int(res["max_runtime"]) // group_size),
            int(res["max_runtime"]),
        ),
    }


def without_operational(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` without the :data:`OPERATIONAL` keys: what the study's results depend on."""
    out = copy.deepcopy(dict(config))
    for path in OPERATIONAL:
        node = out
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return out


def config_warnings(config: Mapping[str, Any]) -> list[str]:
    """Settings that run but measure little: printed before the DAG is built, never an error."""
    out = []
    if config["geometry"]["n_points"] == 2:
        out.append(
            "geometry.n_points: 2 evaluates the endpoints only: every barrier is the worse endpoint's error"
        )
    if config["local_energy"]["n_samples"] == 1 or config["local_energy"]["flip_samples"] == 1:
        out.append("local_energy: one noise draw per level: δE has no spread (delta_std is 0)")
    return out


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return a validated deep copy of ``config`` with the schema's defaults filled in.

    Raises :class:`ConfigError` listing every violation, each with its dotted key.
    """
    config = copy.deepcopy(dict(config))
    schema = schema or load_schema()
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_describe(e) for e in errors))
    _check_consistency(config, schema)
    return config


def _check_consistency(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Rules a JSON schema cannot express: σ* in the grid, distinct experiments, each experiment's data and
    model options valid for its data set and architecture, three seeds for its triplet sections, and the
    data present when download is off."""
    from toroids.study import (
        ARCH_OPTIONS,
        BINARY_ARCHS,
        experiment_name,
        local_energy_settings,
        sampler_recipe,
    )

    problems = []
    root_validator = _Plain(schema)
    dataset_schemas = schema["properties"]["datasets"]["properties"]
    for i, exp in enumerate(config["experiments"]):
        sub = dataset_schemas.get(exp["dataset"])
        if sub is not None and exp.get("data"):
            for err in root_validator.evolve(schema=sub).iter_errors(exp["data"]):
                err.path.extendleft(["experiments", i, "data"][::-1])
                problems.append(_describe(err))
        if exp.get("triplet_sections") and len(exp["seeds"]) < 3:
            problems.append(
                f"config key 'experiments.{i}.triplet_sections': true needs at least 3 seeds (a triplet per "
                f"sampler), the experiment has {len(exp['seeds'])}: {exp['seeds']}; add seeds or set it false"
            )
        problem = architecture_problem(
            exp["arch"],
            exp.get("model", {}),
            input_shape(
                exp["dataset"], {**config["datasets"].get(exp["dataset"], {}), **exp.get("data", {})}
            ),
        )
        if problem:
            problems.append(f"config key 'experiments.{i}.arch': {problem} ({exp['dataset']})")
        fc = exp.get("model", {}).get("fc")
        fc_kind = {"lenet": int, "binary_convnet": list}.get(exp["arch"])
        if fc is not None and fc_kind is not None and not isinstance(fc, fc_kind):
            wanted = "one width (an integer)" if fc_kind is int else "a list of widths"
            problems.append(
                f"config key 'experiments.{i}.model.fc': {exp['arch']} takes {wanted}, got {fc!r}"
            )
        rsgd = sampler_recipe(config, exp, "rsgd")[1]
        binary = exp["arch"] in BINARY_ARCHS
        if "rsgd" in exp["samplers"] and rsgd.get("stacked") and binary:
            problems.append(
                f"config key 'experiments.{i}': rsgd stacked: true cannot run {exp['arch']} (torch.func.vmap "
                "does not batch its sign layers); set stacked: false for this experiment"
            )
        adam_capped = rsgd.get("optimizer") == "adam" and rsgd.get("coupling_cap") is not None
        if "rsgd" in exp["samplers"] and adam_capped:
            problems.append(
                f"config key 'experiments.{i}.sampler_options.rsgd.coupling_cap': {rsgd['coupling_cap']!r} "
                "with optimizer: adam; the cap bounds SGD's elastic step 2ηγ, which Adam does not take: set "
                "coupling_cap: null"
            )
        for sampler in exp["samplers"]:
            own = exp.get("sampler_options", {}).get(sampler, {})
            merged = sampler_recipe(config, exp, sampler)[1]
            problem = schedule_problem(merged) if "schedule" in merged else None
            if problem:
                where = f"experiments.{i}.sampler_options.{sampler}" if own else f"samplers.{sampler}"
                problems.append(f"config key '{where}': {problem}")
        allowed = ARCH_OPTIONS.get(exp["arch"], ())
        for key in exp.get("model", {}):
            if key not in allowed:
                problems.append(
                    f"config key 'experiments.{i}.model.{key}': not an option of {exp['arch']}; "
                    f"allowed: {', '.join(allowed) or 'none'}"
                )
    if not config["data"]["download"]:
        root = Path(config["data"]["root"])
        for name in dict.fromkeys(e["dataset"] for e in config["experiments"]):
            if name in datafiles.TORCHVISION and datafiles.locate(name, root) is None:
                why = datafiles.not_found(name, root)
                problems.append(f"config key 'data.root' (data.download is false): {why}")
    for where, le in [("local_energy", config["local_energy"])] + [
        (f"experiments.{i}.local_energy", local_energy_settings(config, experiment_name(exp)))
        for i, exp in enumerate(config["experiments"])
        if exp.get("local_energy")
    ]:
        if le["sigma_star"] not in le["sigmas"]:
            problems.append(f"config key '{where}.sigma_star': {le['sigma_star']} is not one of its sigmas")
        if le["flip_star"] not in le["flip_fractions"]:
            problems.append(
                f"config key '{where}.flip_star': {le['flip_star']} is not one of its flip_fractions"
            )
    seen: dict[str, int] = {}
    rule_ids: dict[str, tuple[int, str]] = {}
    for i, exp in enumerate(config["experiments"]):
        name = exp.get("name") or f"{exp['arch']}-{exp['dataset']}"
        if name in seen:
            problems.append(
                f"config key 'experiments.{i}': the combination {name} already appears at experiments."
                f"{seen[name]}; merge the two entries or give them distinct names (model ids would collide)"
            )
        seen[name] = i
        # the block rules' names carry the experiment with every other character as "_"
        rid = re.sub(r"\W", "_", name)
        if rid in rule_ids and rule_ids[rid][1] != name:
            j, other = rule_ids[rid]
            problems.append(
                f"config key 'experiments.{i}.name': {name!r} and {other!r} (experiments.{j}) differ only in "
                f"'.', '-' or '_', which the workflow's rule names cannot tell apart; rename one"
            )
        rule_ids.setdefault(rid, (i, name))
    cap, own = config["resources"]["max_runtime"], config["resources"]["rules"]
    for kind in RULE_KINDS:
        mine = own.get(kind, {})
        if mine.get("runtime", config["resources"]["runtime"]) > cap:
            where = f"resources.rules.{kind}.runtime" if "runtime" in mine else "resources.runtime"
            problems.append(
                f"config key '{where}': a {kind} job would ask for more than resources.max_runtime "
                f"({cap} min)"
            )
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (plain YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            k = self.construct_object(key_node, deep=deep)
            if k in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {k!r} appears twice",
                    key_node.start_mark,
                )
            seen.add(k)
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A study file as a dict; a YAML error names the file, line and column (Snakemake's own message for a
    --configfile it cannot parse names neither)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise ConfigError(f"{where}: not valid YAML: {problem}{f' ({context})' if context else ''}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a study file is a mapping of keys (study, experiments, …)")
    return data


def main(argv: list[str] | None = None) -> int:
    """``python -m toroids.config STUDY.yaml …``: check study files as the workflow would, before a run."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    status = 0
    for f in args.files:
        try:
            config = validate_config(read_config_file(f))
        except ConfigError as err:
            print(f"{f}: {err}" if not str(err).startswith(str(f)) else str(err))
            status = 1
            continue
        for warning in config_warnings(config):
            print(f"{f}: warning: {warning}")
        print(f"{f}: valid ({len(config['experiments'])} experiments, study {config['study']!r})")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
