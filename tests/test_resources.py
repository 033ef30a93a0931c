"""What the network jobs ask a scheduler for: per kind of job (resources.rules over resources), growing with
the attempt up to resources.max_runtime, and the SLURM profile's groups sized by Snakemake's own group
sizing (snakemake.resources.GroupResources) within that limit on config/paper.yaml."""

import re
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import ROOT
from toroids.config import RULE_KINDS, ConfigError, read_config_file, rule_resources, validate_config

PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
PAPER = validate_config(read_config_file(ROOT / "config" / "paper.yaml"))
#: the rule (or generated-rule prefix) of each kind of network job
RULE_OF_KIND = {"train": "train_", "measure": "measure_", "pair_block": "pair_block", "midpoint": "midpoint",
                "section": "section", "triplet_section": "triplet_section"}  # fmt: skip


def _config(**resources):
    exp = {"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]}
    return validate_config({"study": "r", "experiments": [exp], "resources": resources})


def test_each_kind_takes_its_own_and_grows_with_the_attempt_up_to_the_cap():
    own = {"train": {"runtime": 200, "gpu": 2}}
    cfg = _config(gpu=1, mem_mb=1000, runtime=100, max_runtime=250, rules=own)
    assert rule_resources(cfg, "train") == {"gpu": 2, "mem_mb": 1000, "runtime": 200}
    assert rule_resources(cfg, "train", attempt=2) == {"gpu": 2, "mem_mb": 2000, "runtime": 250}
    assert rule_resources(cfg, "measure", attempt=3) == {"gpu": 1, "mem_mb": 3000, "runtime": 250}
    assert rule_resources(cfg, "section") == {"gpu": 1, "mem_mb": 1000, "runtime": 100}
    # in a group of 2 a job grows to 250 // 2 at most, and never below what it declared
    assert rule_resources(cfg, "measure", attempt=3, group_size=2)["runtime"] == 125
    assert rule_resources(cfg, "train", attempt=2, group_size=2)["runtime"] == 200
    with pytest.raises(ValueError, match="unknown kind of network job 'tables'"):
        rule_resources(cfg, "tables")


def test_a_first_attempt_beyond_the_cap_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"'resources.rules.midpoint.runtime': a midpoint job would ask"):
        _config(max_runtime=600, rules={"midpoint": {"runtime": 700}})
    with pytest.raises(ConfigError, match=r"'resources.runtime': a train job would ask for more"):
        _config(runtime=2000)


def test_every_network_rule_asks_for_its_kinds_resources():
    """Each rule's resources name the kind whose settings they are (rules/*.smk), one kind per rule."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    pattern = r'gpu=GPU\["(\w+)"\],\s*mem_mb=grown\("(\w+)", "mem_mb"\),\s*runtime=grown\("(\w+)"'
    asked = re.findall(pattern, text)
    assert sorted(a for a, b, c in asked if a == b == c) == sorted(RULE_KINDS)


class _Constraints(dict):
    """The global resources Snakemake's group sizing reads: ``get(name).value`` (None: no limit)."""

    def get(self, name):
        return SimpleNamespace(value=dict.get(self, name))


def _groups():
    """{group: (kind of its jobs, jobs per submission)}: the profile's ``groups`` and the rules that declare
    their own group (the measuring jobs' ``flatness``, rules/models.smk)."""
    declared = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"^\s*rule\b", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r'\s*(\w+)?:?\s*(?:name:\s*f?"([^"{]+))?', block)
            group = re.search(r'^\s+group:\s*"(\w+)"', block, re.M)
            if group:
                declared[name[1] or name[2]] = group[1]
    members = {**PROFILE.get("groups", {}), **declared}
    kinds = {}
    for rule, group in members.items():
        kind = next(k for k, prefix in RULE_OF_KIND.items() if rule.startswith(prefix))
        kinds.setdefault(group, set()).add(kind)
    assert set(kinds) == set(PROFILE["group-components"]), "every group has its size, every size its group"
    return {g: (ks, PROFILE["group-components"][g]) for g, ks in kinds.items()}


def test_the_profiles_groups_fit_within_the_configs_limit_on_the_paper_study():
    """A group's jobs run one after the other (each takes the submission's single `serial` unit), so
    Snakemake asks SLURM for the sum of their runtimes: at most max_runtime (24 h) for config/paper.yaml."""
    from snakemake.resources import GroupResources

    limits = _Constraints(PROFILE["resources"])
    assert PROFILE["set-resource-scopes"]["serial"] == "local" and limits["serial"] == 1
    groups = _groups()
    assert {g for g, (kinds, n) in groups.items()} == {"flatness", "pairs"}
    for group, (kinds, n) in groups.items():
        for attempt in range(1, 2 + PROFILE["retries"]):  # a failed group is resubmitted whole, grown
            worst = max(rule_resources(PAPER, k, attempt, n)["runtime"] for k in kinds)
            job = {**rule_resources(PAPER, next(iter(kinds)), attempt, n), "runtime": worst, "serial": 1,
                   "_cores": 4}  # fmt: skip
            jobs = [SimpleNamespace(resources=job, pipe_group=None) for _ in range(n)]
            asked = GroupResources.basic_layered([jobs], limits, run_local=False)
            assert asked["runtime"] == n * worst and asked["gpu"] == job["gpu"], (group, asked)
            assert asked["runtime"] <= PAPER["resources"]["max_runtime"], (group, attempt, asked)


@pytest.mark.parametrize("kind", RULE_KINDS)
def test_no_paper_job_asks_for_more_than_a_day_at_any_attempt(kind):
    for attempt in range(1, 2 + PROFILE["retries"]):
        assert rule_resources(PAPER, kind, attempt)["runtime"] <= PAPER["resources"]["max_runtime"] == 1440
