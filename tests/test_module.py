"""The workflow as a module of another workflow: a host workflow in a temporary folder uses a copy of this
repository (`module toroids:`, `use rule * from toroids as toroids_*`), gives it its study and a prefix
for its files, and runs a tiny study through it.

Every process must import the copy's `toroids` package, not the first one on the path: here that would be
the editable install of the repository the tests run from (its .pth in the site packages). A decoy
package put ahead of everything (PYTHONPATH) fails every job that does not put its workflow's own
package first, and the copy's package records, in each process that imports it, which script that is.
(Hiding the editable install instead would prove nothing: Snakemake's preamble of a script appends the
script's folder to sys.path, so without any other `toroids` the jobs find the copy's anyway.)"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_workflow import ROOT, TINY

#: TINY's MLP experiment alone, shorter: this test is about where the files and the package come from.
STUDY = {
    **TINY,
    "experiments": TINY["experiments"][:1],
    "training": {"epochs": 3, "batch_size": 64},
    "midpoints": {"epochs": 1},
}

HOST = """\
configfile: "config.yaml"


module toroids:
    snakefile:
        {snakefile}
    config:
        config["toroids"]
    prefix:
        "toroids"


use rule * from toroids as toroids_*


rule all:
    default_target: True
    input:
        rules.toroids_all.input,
"""

#: appended to the copy's toroids/__init__.py: which package file, imported by which script
RECORD = """

import os as _os
import sys as _sys

if _os.environ.get("TOROIDS_TEST_IMPORTS"):  # tests/test_module.py
    with open(_os.environ["TOROIDS_TEST_IMPORTS"], "a") as _f:
        _f.write(f"{__file__}\\t{getattr(_sys.modules['__main__'], '__file__', '')}\\n")
"""

DECOY = "raise ImportError('the decoy toroids of tests/test_module.py: not the workflow\\'s own package')\n"


def workflow_copy(repo):
    """A copy of the repository's workflow files at ``repo``."""
    repo.mkdir(parents=True)
    shutil.copy2(ROOT / "Snakefile", repo / "Snakefile")
    for part in ("rules", "config", "workflow", "envs", "report"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return repo


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """A copy of the workflow, its package recording who imports it."""
    repo = workflow_copy(tmp_path_factory.mktemp("copy") / "toroids")
    with open(repo / "workflow" / "scripts" / "toroids" / "__init__.py", "a") as f:
        f.write(RECORD)
    return repo


def host(tmp_path, copy, config, snakefile=HOST, source=None):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "Snakefile").write_text(snakefile.format(snakefile=source or f'"{copy / "Snakefile"}"'))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def snakemake(folder, args, env=None, timeout=600):
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.workflow
def test_a_host_workflow_runs_the_tiny_study_through_a_copy_that_imports_its_own_package(tmp_path, copy):
    decoy = tmp_path / "decoy" / "toroids"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text(DECOY)
    records = tmp_path / "imports.tsv"
    folder = host(tmp_path / "host", copy, {"toroids": STUDY, "host": {"own": "keys"}})
    env = {"PYTHONPATH": str(decoy.parent), "TOROIDS_TEST_IMPORTS": str(records)}
    out = snakemake(folder, ["--cores", "2"], env)
    assert out.returncode == 0, out.stderr[-4000:]
    log = out.stdout + out.stderr
    assert "rule toroids_pair_block:" in log and "rule toroids_fig01_flatness:" in log
    assert "localrules directive specifies rules that are not present" not in log
    res = folder / "toroids" / "results" / STUDY["study"]  # under the module's prefix, nothing outside it
    assert not (folder / "results").exists()
    assert (res / "figures" / "fig01_flatness.png").read_bytes()[:4] == b"\x89PNG"
    assert (res / "tables" / "paper_comparison.csv").is_file()
    rows = [line.split("\t") for line in records.read_text().splitlines()]
    package = (copy / "workflow" / "scripts" / "toroids" / "__init__.py").resolve()
    assert {Path(p).resolve() for p, _ in rows} == {package}
    scripts = {Path(s).name for _, s in rows}
    jobs = {"train_block.py", "measure_block.py", "pair_block.py", "midpoint.py", "section.py", "tables.py"}
    assert jobs | {"analysis.py", "scorecard.py", "figure.py", "figure_index.py"} <= scripts, scripts


def test_a_module_without_config_from_its_host_plans_the_default_study(tmp_path, copy):
    no_config = "\n".join(line for line in HOST.splitlines() if "config" not in line or "configfile" in line)
    folder = host(tmp_path, copy, {"host": 1}, no_config)
    out = snakemake(folder, ["-n", "toroids/results/default/config.yaml"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rule toroids_study_config:" in out.stdout


def test_a_bad_study_from_the_host_stops_before_any_job_naming_its_key(tmp_path, copy):
    folder = host(tmp_path, copy, {"toroids": {**STUDY, "typo_key": 1}})
    out = snakemake(folder, ["--cores", "1"])
    assert out.returncode != 0 and "typo_key" in out.stdout + out.stderr
    assert not (folder / "toroids").exists()


def test_another_toroids_imported_first_stops_the_parse_naming_both(tmp_path, copy):
    first = f"import sys\nsys.path.insert(0, {str(ROOT / 'workflow' / 'scripts')!r})\nimport toroids\n\n"
    folder = host(tmp_path, copy, {"toroids": STUDY}, first + HOST)
    out = snakemake(folder, ["-n"])
    assert out.returncode != 0
    log = out.stdout + out.stderr
    assert "imported another copy of the package first" in log
    assert str(ROOT / "workflow" / "scripts" / "toroids") in log and str(copy / "workflow") in log


def git(*args, cwd):
    ident = ["-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", *ident, *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_from_a_git_host_the_installed_package_must_be_the_modules_own(tmp_path, copy):
    """`github(...)` offline: a bare clone where Snakemake 9 keeps its clones of git hosts stands for
    GitHub. The installed package (the editable install of the repository under test) is what the workflow
    imports there, so it must equal the module's version; a tag whose package differs stops the parse."""
    repo = workflow_copy(tmp_path / "toroids")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "v0", cwd=repo)
    git("tag", "v0", cwd=repo)
    study = repo / "workflow" / "scripts" / "toroids" / "study.py"
    study.write_text(study.read_text() + "\n# another version\n")
    git("commit", "-qam", "v1", cwd=repo)
    git("tag", "v1", cwd=repo)
    cache = tmp_path / "cache"  # XDG_CACHE_HOME: Snakemake's source cache and its git clones below it
    clones = cache / "snakemake" / "snakemake" / "source-cache" / "snakemake-git-cache" / "github.com"
    clones.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(clones / "owner" / "toroids")], check=True)
    env = {"XDG_CACHE_HOME": str(cache), "GIT_TERMINAL_PROMPT": "0"}
    for tag in ("v0", "v1"):
        source = f'github("owner/toroids", path="Snakefile", tag="{tag}")'
        folder = host(tmp_path / tag, copy, {"toroids": STUDY}, source=source)
        out = snakemake(folder, ["-n", "--quiet", "rules"], env)
        log = out.stdout + out.stderr
        assert "resolve host" not in log, "Snakemake did not use the seeded clone: its cache moved"
        if tag == "v0":
            assert out.returncode == 0, log[-3000:]
            assert "toroids_pair_block" in out.stdout
        else:
            assert out.returncode != 0
            assert "is not this workflow's: its toroids/study.py is not the module's" in log, log[-3000:]
