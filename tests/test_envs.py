"""The conda env files parse, are pinned, and agree with requirements.txt; every rule that runs something
declares one, and that env holds every package the rule's script imports.

Conda is absent here, so nothing is installed: the rules are read from the text of the Snakefile and
rules/*.smk (a loop-generated ``rule:`` is read once, as its template), and the imports from the scripts'
syntax trees. A script needs the third-party packages that its own code imports and that the ``toroids``
code it reaches imports, where "reaches" is followed name by name: module-level code always, a function only
when the script (or code it reaches) names it. So a function-level import counts when the function can
run: ``jobs.load_data`` imports ``toroids.data`` (torch) for the torch rules, and the plotting rules, which
call ``jobs.start`` but never ``jobs.load_data``, need no torch. Not counted: imports under
``if TYPE_CHECKING:`` (never run) and imports inside a ``try`` that catches ``ImportError`` (the code runs
without them: ``jobs.start`` sets torch's threads when torch is there). Counted as well:
``importlib.util.find_spec("name")`` with a literal name (``toroids.data`` reads the digits file that
scikit-learn ships). The ``snakemake`` object a script receives is injected, not imported.
"""

import ast
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
SCRIPTS = ROOT / "workflow" / "scripts"
PACKAGE = "toroids"

#: the top-level module a script imports -> the package that provides it, as envs/*.yaml and
#: requirements.txt name it (torch and torchvision come from PyPI: see envs/torch.yaml)
PACKAGES = {
    "jsonschema": "jsonschema",
    "matplotlib": "matplotlib",
    "numpy": "numpy",
    "pandas": "pandas",
    "safetensors": "safetensors",
    "scipy": "scipy",
    "seaborn": "seaborn",
    "sklearn": "scikit-learn",
    "snakemake": "snakemake",
    "torch": "torch",
    "torchvision": "torchvision",
    "yaml": "pyyaml",
}
#: what an env holds beyond its scripts' imports: the interpreter and the installer of its pip section
BASE = {"python", "pip"}


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


# -- rules, read from the workflow's text -----------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    source: str  # the file and line of the rule's header
    name: str  # the rule's name, or the expression that names a generated rule
    directives: dict[str, str]  # directive -> its value's source text (`conda:`, `script:`, `shell:`, …)

    def literal(self, directive: str) -> str:
        """The directive's value, which must be a plain string (a path this test can follow)."""
        value = self.directives[directive]
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise AssertionError(f"{self}: {directive}: {value!r} is not a plain string") from None

    def __str__(self) -> str:
        return f"{self.source} rule {self.name}"


_HEADER = re.compile(r"^(?P<indent>[ \t]*)(?P<kind>rule|checkpoint|use rule)\b\s*(?P<name>\w*)[^\n]*:\s*$")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]+)(?P<key>\w+):\s*(?P<value>.*)$")
#: the directives that run something, and those of them this test can check
RUNNERS = {"script", "shell", "run", "notebook", "wrapper", "cwl", "template_engine"}
CHECKED = {"script", "shell"}


def _rules_in(text: str, source: str) -> list[Rule]:
    """Each ``rule``/``checkpoint`` block of a Snakemake file, at any indentation (a rule generated in a
    loop is one block), with its directives' values: the rest of the directive's line, or its next line."""
    lines = text.splitlines()
    rules = []
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if not header:
            continue
        where = f"{source}:{i + 1}"
        assert header["kind"] != "use rule", f"{where}: `use rule` is not read by this test: extend it"
        indent = len(header["indent"].expandtabs())
        directives: dict[str, str] = {}
        key_indent = None
        for j in range(i + 1, len(lines)):
            body = lines[j]
            if not body.strip() or body.lstrip().startswith("#"):
                continue
            depth = len(body) - len(body.lstrip())
            if depth <= indent:
                break
            directive = _DIRECTIVE.match(body)
            if directive and (key_indent is None or depth == key_indent):
                key_indent = depth
                value = directive["value"].strip() or next(
                    (v.strip() for v in lines[j + 1 :] if v.strip() and not v.lstrip().startswith("#")), ""
                )
                directives[directive["key"]] = value.rstrip(",")
        name = header["name"] or directives.get("name", "?")
        rules.append(Rule(where, name, directives))
    return rules


def workflow_rules(root: Path = ROOT) -> list[Rule]:
    files = [root / "Snakefile", *sorted((root / "rules").glob("*.smk"))]
    return [r for f in files for r in _rules_in(f.read_text(), str(f.relative_to(root)))]


def _base(rule: Rule, root: Path) -> Path:
    """The folder a rule's relative paths start from: that of the file it is in."""
    return (root / rule.source.rsplit(":", 1)[0]).parent


# -- imports, read from the scripts' syntax trees ---------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {k.id for k in kinds if isinstance(k, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def _walk(node: ast.AST, optional: bool = False):
    """Every node under ``node`` with whether an import there is optional, skipping ``if TYPE_CHECKING``."""
    yield node, optional
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children = [(c, optional) for c in node.orelse]
    elif isinstance(node, ast.Try | ast.TryStar) and _catches_import_error(node):
        rest = [*node.handlers, *node.orelse, *node.finalbody]
        children = [(c, True) for c in node.body] + [(c, optional) for c in rest]
    else:
        children = [(c, optional) for c in ast.iter_child_nodes(node)]
    for child, opt in children:
        yield from _walk(child, opt)


@functools.cache
def _units(path: Path) -> dict[str | None, list[ast.AST]]:
    """A module's code by what runs it: ``None`` its import (module-level code, classes whole, the decorators
    and defaults of its functions), a top-level function's name that function's body."""
    units: dict[str | None, list[ast.AST]] = {None: []}
    for stmt in ast.parse(path.read_text()).body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            units[stmt.name] = stmt.body
            defaults = [d for d in stmt.args.kw_defaults if d is not None]
            units[None] += [*stmt.decorator_list, *stmt.args.defaults, *defaults]
        else:
            units[None].append(stmt)
    return units


class Package:
    """The ``toroids`` package under ``scripts`` (the folder Snakemake puts on a script's ``sys.path``), and
    the scripts read so far (as modules named ``<script NAME>``)."""

    def __init__(self, scripts: Path = SCRIPTS) -> None:
        self.scripts = scripts
        self.read: dict[str, Path] = {}
        self._files: dict[str, Path | None] = {}
        self._global: dict[str, dict[str, tuple[str, str | None]]] = {}
        self._used: dict[tuple[str, str | None], tuple[set[str], set[tuple[str, str | None]]]] = {}

    def file(self, module: str) -> Path | None:
        """The file of a module of the package, else None (a third-party or a standard module)."""
        if module not in self._files:
            path = self.scripts.joinpath(*module.split("."))
            files = [f for f in (path.with_suffix(".py"), path / "__init__.py") if f.is_file()]
            self._files[module] = files[0] if files and module.split(".")[0] == PACKAGE else None
        return self._files[module]

    def units(self, module: str) -> dict[str | None, list[ast.AST]]:
        return _units(self.read.get(module) or self.file(module))

    def _absolute(self, module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module
        here = module.split(".")
        is_package = self.file(module) is not None and self.file(module).name == "__init__.py"
        parts = here[: len(here) - node.level + is_package]
        return ".".join(parts + ([node.module] if node.module else []))

    def _bindings(self, module: str, nodes: list[ast.AST]) -> dict[str, tuple[str, str | None]]:
        """Names bound by the imports in ``nodes``: name -> (module, None) or (module, attribute)."""
        bound: dict[str, tuple[str, str | None]] = {}
        for root in nodes:
            for node, _ in _walk(root):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        target = alias.name if alias.asname else alias.name.split(".")[0]
                        bound[alias.asname or target] = (target, None)
                elif isinstance(node, ast.ImportFrom):
                    base = self._absolute(module, node)
                    for alias in node.names:
                        bound[alias.asname or alias.name] = self._target(base, alias.name)
        return bound

    def _globals(self, module: str) -> dict[str, tuple[str, str | None]]:
        if module not in self._global:
            self._global[module] = self._bindings(module, self.units(module)[None])
        return self._global[module]

    def _reach(self, module: str, name: str | None) -> set[tuple[str, str | None]]:
        """The units that ``module.name`` runs when used: the module's import (and its packages'), and the
        function itself, or the one a re-exported name stands for; ``name="*"``: every function."""
        if module in self.read:
            out = {(module, None)}
        elif self.file(module):
            parts = module.split(".")
            out = {(".".join(parts[:i]), None) for i in range(1, len(parts) + 1)}
        else:
            return set()  # outside the package: its imports are counted where they are written
        units = self.units(module)
        if name == "*":
            out |= {(module, n) for n in units}
        elif name in units:
            out.add((module, name))
        elif name is not None and (target := self._globals(module).get(name)):
            out |= self._reach(*target)
        return out

    def _uses(self, module: str, unit: str | None) -> tuple[set[str], set[tuple[str, str | None]]]:
        """What one unit runs: the third-party top-level modules it imports, and the package's units."""
        if (module, unit) not in self._used:
            self._used[module, unit] = self._read(module, unit)
        return self._used[module, unit]

    def _read(self, module: str, unit: str | None) -> tuple[set[str], set[tuple[str, str | None]]]:
        units = self.units(module)
        nodes = units[unit]
        bound = {**self._globals(module), **self._bindings(module, nodes)}
        imports: set[str] = set()
        reached: set[tuple[str, str | None]] = set()
        inner: set[int] = set()  # the nodes inside an attribute chain already read
        for root in nodes:
            for node, optional in _walk(root):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    if isinstance(node, ast.Import):
                        names = [a.name for a in node.names]
                        reached |= {u for n in names for u in self._reach(n, None)}
                    else:
                        names = [self._absolute(module, node)]
                        reached |= {
                            u for a in node.names for u in self._reach(*self._target(names[0], a.name))
                        }
                    if not optional:
                        imports |= {n.split(".")[0] for n in names if not self.file(n)}
                elif isinstance(node, ast.Call) and (spec := _find_spec(node)):
                    imports.add(spec.split(".")[0])
                elif isinstance(node, ast.Attribute | ast.Name) and id(node) not in inner:
                    chain, base = [], node
                    while isinstance(base, ast.Attribute):
                        inner.add(id(base.value))
                        chain.insert(0, base.attr)
                        base = base.value
                    if isinstance(base, ast.Name):
                        reached |= self._resolve(module, bound, [base.id, *chain])
        return imports, reached

    def _target(self, base: str, name: str) -> tuple[str, str | None]:
        """What ``from base import name`` binds: the submodule ``base.name``, or the name in ``base``."""
        sub = f"{base}.{name}"
        return (sub, None) if self.file(sub) else (base, name)

    def _resolve(self, module: str, bound: dict[str, tuple[str, str | None]], chain: list[str]) -> set:
        """The units a name or an attribute chain ``a.b.c`` read in ``module`` stands for: a function of
        ``module``, or what an import bound; a module used as a value (passed to a function, to
        ``getattr``) stands for all of it."""
        head, rest = chain[0], chain[1:]
        if head not in bound:
            return self._reach(module, head) if head in self.units(module) else set()
        target, attr = bound[head]
        if attr is not None:
            return self._reach(target, attr)
        out = self._reach(target, None)
        while rest and self.file(f"{target}.{rest[0]}"):
            target = f"{target}.{rest.pop(0)}"
            out |= self._reach(target, None)
        return out | self._reach(target, rest[0] if rest else "*")

    def imports(self, script: Path) -> set[str]:
        """The third-party top-level modules a script runs: its own imports and those of every unit of the
        package that it reaches."""
        start = (f"<script {script.stem}>", None)
        self.read[start[0]] = script
        todo, seen, found = [start], {start}, set()
        while todo:
            imports, reached = self._uses(*todo.pop())
            found |= imports
            todo += reached - seen
            seen |= reached
        return {m for m in found if m not in sys.stdlib_module_names}


def _find_spec(node: ast.Call) -> str | None:
    """The module name of ``importlib.util.find_spec("name")`` (or ``find_spec("name")``), else None."""
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr == "find_spec") or (
        isinstance(func, ast.Name) and func.id == "find_spec"
    )
    if named and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def needed_packages(imports: set[str]) -> set[str]:
    unknown = sorted(imports - PACKAGES.keys())
    assert not unknown, f"third-party modules {unknown} have no conda package in PACKAGES: add them"
    return {PACKAGES[m] for m in imports}


def env_problems(
    rules: list[Rule], envs: dict[str, set[str]], package: Package, root: Path = ROOT
) -> list[str]:
    """What is wrong between rules and envs: a rule that runs something without an env, or with an env
    file that does not exist, or whose script imports a package its env lacks; and a package an env holds
    that none of its rules imports (``envs`` maps an env file's path to the packages it holds)."""
    problems = []
    used: dict[str, set[str]] = {env: set() for env in envs}
    for rule in rules:
        runs = RUNNERS & rule.directives.keys()
        if not runs:
            continue  # a target rule (`rule all`): nothing runs, no env is made
        if not runs <= CHECKED:
            problems.append(f"{rule}: {sorted(runs)} cannot be checked here: use a script: or shell:")
            continue
        if "conda" not in rule.directives:
            problems.append(f"{rule} has no conda env")
            continue
        env = str((_base(rule, root) / rule.literal("conda")).resolve())
        if env not in envs:
            problems.append(f"{rule}: {rule.literal('conda')} is not one of envs/*.yaml")
            continue
        if "script" not in rule.directives:
            continue  # a shell command: the env holds its programs (printf, for the plan rules)
        script = (_base(rule, root) / rule.literal("script")).resolve()
        needs = needed_packages(package.imports(script))
        used[env] |= needs
        if missing := sorted(needs - envs[env]):
            problems.append(f"{rule}: {script.name} imports {missing}, which {Path(env).name} lacks")
    for env, held in envs.items():
        if unused := sorted(held - used[env] - BASE):
            problems.append(f"{Path(env).name} holds {unused}, which none of its rules' scripts imports")
    return problems


@functools.cache
def _package() -> Package:
    """The workflow's package, read once for all the tests below."""
    return Package()


def _envs() -> dict[str, set[str]]:
    return {str(path.resolve()): set(_env_pins(path)) for path in ENVS}


# -- tests ------------------------------------------------------------------------------------------------


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


def test_every_package_an_import_maps_to_is_pinned_in_requirements():
    assert set(PACKAGES.values()) <= _requirements().keys()


def test_every_rule_declares_an_existing_env_and_a_log():
    for rule in workflow_rules():
        if RUNNERS & rule.directives.keys():
            assert "conda" in rule.directives, f"{rule} has no conda env"
            assert "log" in rule.directives, f"{rule} has no log"
            env = _base(rule, ROOT) / rule.literal("conda")
            assert env.resolve().is_file(), f"{rule}: {env} missing"


def test_every_script_is_some_rules_script():
    """Guards the reading of the rules: a script no rule names is dead, or a rule this test did not see."""
    rules = [r for r in workflow_rules() if "script" in r.directives]
    named = {(_base(r, ROOT) / r.literal("script")).resolve() for r in rules}
    assert named == {p.resolve() for p in SCRIPTS.glob("*.py")}


def test_every_rules_env_holds_what_its_script_imports_and_no_more():
    assert env_problems(workflow_rules(), _envs(), _package()) == []


def test_the_plotting_scripts_need_scipy_and_no_torch():
    """The package's own reach, as the plotting env depends on it: the figures and the analysis reach
    ``toroids.stats`` (scipy); ``jobs.load_data`` would import torch, but no plotting script calls it."""
    package = _package()
    for name in ("figure", "analysis"):
        imports = package.imports(SCRIPTS / f"{name}.py")
        assert "scipy" in imports and "torch" not in imports, (name, imports)
    assert "jsonschema" in package.imports(SCRIPTS / "study_config.py")  # toroids.config validates
    assert {"torch", "sklearn", "torchvision"} <= package.imports(SCRIPTS / "train_block.py")


def test_an_env_without_a_package_a_script_imports_fails():
    envs = _envs()
    plot = str((ROOT / "envs" / "plot.yaml").resolve())
    envs[plot] -= {"scipy"}
    problems = env_problems(workflow_rules(), envs, _package())
    assert problems and all("scipy" in p and "plot.yaml lacks" in p for p in problems), problems
    assert {p.split(" rule ")[1].split(":")[0] for p in problems} >= {"analysis", "_name"}


def test_an_env_with_a_package_no_script_imports_fails():
    envs = _envs()
    torch = str((ROOT / "envs" / "torch.yaml").resolve())
    envs[torch] |= {"seaborn"}
    assert env_problems(workflow_rules(), envs, _package()) == [
        "torch.yaml holds ['seaborn'], which none of its rules' scripts imports"
    ]


SMK = """\
rule plain:
    log:
        "x.log",
    conda:
        "../envs/plot.yaml"
    shell:
        "printf x > {output}"


for _x in X:

    rule:
        name:
            f"made_{_x}"
        # a comment
        log:
            "y.log",
        script:
            "../workflow/scripts/{}.py"


rule all:
    input:
        "x",
"""


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_generated_rule_without_an_env_fails(tmp_path):
    root = _tree(
        tmp_path,
        {"Snakefile": "", "rules/a.smk": SMK.replace("{}", "s"), "workflow/scripts/s.py": "import numpy\n"},
    )
    (root / "envs").mkdir()
    rules = workflow_rules(root)
    assert [(r.name, sorted(r.directives)) for r in rules] == [
        ("plain", ["conda", "log", "shell"]),
        ('f"made_{_x}"', ["log", "name", "script"]),
        ("all", ["input"]),
    ]
    envs = {str((root / "envs" / "plot.yaml").resolve()): {"numpy"}}
    assert env_problems(rules, envs, Package(root / "workflow" / "scripts"), root) == [
        'rules/a.smk:12 rule f"made_{_x}" has no conda env',
        "plot.yaml holds ['numpy'], which none of its rules' scripts imports",
    ]


def test_imports_are_followed_through_the_package_name_by_name(tmp_path):
    scripts = _tree(
        tmp_path,
        {
            "toroids/__init__.py": '"""the package"""\n',
            "toroids/lazy.py": (
                "import numpy\n\n\ndef cheap():\n    return 1\n\n\n"
                "def heavy():\n    from toroids import deep\n\n    return deep.f()\n"
            ),
            "toroids/deep.py": "import torch.nn\n\n\ndef f():\n    from scipy import stats\n",
            "toroids/sub/__init__.py": "from .inner import g\n",
            "toroids/sub/inner.py": "def g():\n    import seaborn\n\n\ndef h():\n    import matplotlib\n",
            "cheap.py": "from toroids import lazy\n\nlazy.cheap()\n",
            "heavy.py": "from toroids.lazy import heavy\n\nheavy()\n",
            "value.py": "from toroids import lazy\n\ngetattr(lazy, snakemake.rule)()\n",
            "reexport.py": "import toroids.sub\n\ntoroids.sub.g()\n",
            "guarded.py": (
                "import json\nfrom typing import TYPE_CHECKING\n\nimport yaml\n\n"
                "if TYPE_CHECKING:\n    import sklearn\ntry:\n    import PIL\nexcept ImportError:\n    pass\n"
                "import importlib.util\n\nimportlib.util.find_spec('jsonschema')\n"
            ),
        },
    )
    package = Package(scripts)
    assert package.imports(scripts / "cheap.py") == {"numpy"}
    assert package.imports(scripts / "heavy.py") == {"numpy", "torch", "scipy"}
    assert package.imports(scripts / "value.py") == {"numpy", "torch", "scipy"}
    assert package.imports(scripts / "reexport.py") == {"seaborn"}
    assert package.imports(scripts / "guarded.py") == {"yaml", "jsonschema"}
    with pytest.raises(AssertionError, match=r"\['PIL'\] have no conda package"):
        needed_packages({"PIL", "numpy"})
