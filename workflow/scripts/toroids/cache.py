"""Results kept beside their outputs, keyed by everything that made them, so that redoing a job redoes
only what changed.

A block job (several models, or several pairs, per job) reruns as a whole whenever one of its members
changes: a seed added to an experiment rewrites its group's plan file, and Snakemake deletes every output of
the block before running it again. So each member's outputs are also kept under hidden names,
``.{name}.{key}.kept`` beside ``{name}``, as hard links (no copy, no extra disk): Snakemake's deletion of
the output leaves them. When the job runs again, a member whose key is unchanged gets its outputs back as
links and is not computed again; a member whose plan, inputs or code changed has a new key and is.

    key = sha256(json(parts), code_version())

``code_version()`` hashes the source of the ``toroids`` package, so that a change of the library (which
Snakemake does not see: it tracks only the rule's script) invalidates every kept result. Each write of a
member's outputs replaces its older kept copies.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["code_version", "file_digest", "keep", "key", "restore"]


@functools.cache
def code_version() -> str:
    """sha256 of the ``toroids`` package's Python sources (their paths and bytes), in sorted order."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def key(*parts: Any) -> str:
    """The key of a result: ``parts`` (anything JSON can write, keys sorted) and the code version."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(f"{text}\0{code_version()}".encode()).hexdigest()[:20]


def _kept(path: Path, k: str) -> Path:
    return path.with_name(f".{path.name}.{k}.kept")


def restore(outputs: Sequence[str | os.PathLike[str]], k: str) -> bool:
    """Link every output back from its kept copy of key ``k``; False (and nothing linked) unless all of
    them are kept."""
    paths = [Path(p) for p in outputs]
    kept = [_kept(p, k) for p in paths]
    if not all(c.is_file() for c in kept):
        return False
    for p, c in zip(paths, kept):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.unlink(missing_ok=True)
        _link(c, p)
        os.utime(p)  # newer than the plan file that made Snakemake rerun the job, or it would again
    return True


def keep(outputs: Sequence[str | os.PathLike[str]], k: str) -> None:
    """Keep ``outputs`` (just written) under key ``k``, dropping their kept copies of other keys."""
    for p in map(Path, outputs):
        for old in p.parent.glob(f".{p.name}.*.kept"):
            old.unlink(missing_ok=True)
        _link(p, _kept(p, k))


def _link(src: Path, dst: Path) -> None:
    """A hard link, or a copy on a file system without them."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (an input's identity in a key)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
