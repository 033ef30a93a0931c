"""Atomic file writes (a temporary file beside the target, then a rename) and JSON records."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_text",
    "new_file_mode",
    "read_json",
    "remove_stale_temporaries",
    "temporary_beside",
    "write_json",
]


def temporary_beside(path: Path) -> tuple[int, str]:
    """A new temporary file (fd, name) in the folder of ``path``, so that a rename onto ``path`` is atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, new_file_mode())
    return fd, name


def remove_stale_temporaries(path: Path, keep: str | None = None) -> int:
    """Delete the temporary files of earlier writes of ``path`` that never reached their rename (a process
    killed mid-write leaves one behind); returns how many. Only one job ever writes a given output, so a
    temporary of ``path`` other than ``keep`` (the current write's) belongs to a dead writer."""
    removed = 0
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if str(stale) != keep:
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


def new_file_mode() -> int:
    """The permissions the umask gives a new file (mkstemp's 0600 would otherwise reach every output)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        remove_stale_temporaries(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a missing or malformed file raises ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read JSON ({exc})") from exc
