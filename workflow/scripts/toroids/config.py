"""Validation of a study's config against config/schema/config.schema.yaml, before anything runs.

Every error names the key (as a dotted path), the offending value and what is allowed; the defaults of the
schema are filled in, so downstream code never guesses a missing value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

__all__ = ["ConfigError", "load_schema", "validate_config"]

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


_Validator = _with_defaults(Draft202012Validator)


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
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"config key '{key}' is not allowed here; allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not one of {error.validator_value}"
    return f"config key '{key}': {error.message}"


_MNIST = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
#: where torchvision finds each data set under data.root (checked before any job when download is off)
VISION_FILES = {
    "mnist": ("MNIST/raw", _MNIST),
    "mnist_parity": ("MNIST/raw", _MNIST),
    "fashion_mnist": ("FashionMNIST/raw", _MNIST),
    "cifar10": ("cifar-10-batches-py", _CIFAR),
}


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
    from toroids.study import ARCH_OPTIONS

    problems = []
    root_validator = Draft202012Validator(schema)
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
            if name in VISION_FILES:
                folder, names = VISION_FILES[name]
                missing = [n for n in names if not (root / folder / n).is_file()]
                if missing:
                    problems.append(
                        f"config key 'data.root': {root / folder} lacks the {name} files {missing[:2]}"
                        f"{' …' if len(missing) > 2 else ''} and data.download is false; set data.download: "
                        "true on a machine with internet, or point data.root at the files"
                    )
    le = config["local_energy"]
    if le["sigma_star"] not in le["sigmas"]:
        problems.append(
            f"config key 'local_energy.sigma_star': {le['sigma_star']} is not one of local_energy.sigmas"
        )
    if le["flip_star"] not in le["flip_fractions"]:
        problems.append(
            f"config key 'local_energy.flip_star': {le['flip_star']} is not one of "
            "local_energy.flip_fractions"
        )
    seen: dict[str, int] = {}
    for i, exp in enumerate(config["experiments"]):
        name = exp.get("name") or f"{exp['arch']}-{exp['dataset']}"
        if name in seen:
            problems.append(
                f"config key 'experiments.{i}': the combination {name} already appears at experiments."
                f"{seen[name]}; merge the two entries or give them distinct names (model ids would collide)"
            )
        seen[name] = i
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
