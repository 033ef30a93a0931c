"""The conda env files parse, are pinned, and agree with requirements.txt; every rule declares one."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _env_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep["pip"]:
                name, version = spec.split("==")
                pins[_norm(name)] = version
        else:
            name, version = dep.split("=", 1)
            pins[_norm(name)] = version
    return pins


def test_requirements_are_exact_pins():
    pins = _requirements()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1" and pins["snakemake"] == "9.27.1"


@pytest.mark.parametrize("path", ENVS, ids=[p.name for p in ENVS])
def test_env_parses_is_pinned_and_agrees_with_requirements(path):
    env = yaml.safe_load(path.read_text())
    assert env["name"].startswith("toroids-")
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pins = _env_pins(path)
    assert all(re.fullmatch(r"[0-9][0-9a-z.]*", v) for v in pins.values()), pins
    req = _requirements()
    for name, version in pins.items():
        if name in req:
            assert version == req[name], f"{path.name}: {name} {version} != requirements.txt {req[name]}"


def test_every_rule_declares_an_existing_env_and_a_log():
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        rules = re.split(r"^rule ", text, flags=re.M)[1:]
        for body in rules:
            name = body.split(":")[0]
            assert "conda:" in body, f"{smk.name}: rule {name} has no conda env"
            assert "log:" in body, f"{smk.name}: rule {name} has no log"
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', body).group(1)
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: rule {name}: {env} missing"
