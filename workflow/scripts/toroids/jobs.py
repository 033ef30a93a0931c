"""What every rule script shares: the job's log (or its models' logs), its thread count, its data, the
operational settings, and atomic CSV output."""

from __future__ import annotations

import datetime as _dt
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

import pandas as pd

from toroids.files import atomic_write_text

if TYPE_CHECKING:
    from toroids.data import Dataset

__all__ = [
    "Block",
    "block",
    "load_data",
    "load_splits",
    "model_log",
    "operational",
    "remake_hint",
    "start",
    "write_csv",
]

Log = Callable[[str], None]


def start(snakemake: Any, own_log: bool = True) -> Log:
    """Set the job's torch threads and return ``log(msg)``: timestamped lines to the rule's log (its first
    ``log:`` file; none with ``own_log=False``, for a block job whose models have a log each, see
    :func:`model_log`) and to stderr."""
    threads = max(1, int(getattr(snakemake, "threads", 1) or 1))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # the plotting environment has no torch, and needs none
        pass
    stream: TextIO | None = None
    if own_log and snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        stream = open(snakemake.log[0], "a", buffering=1)  # noqa: SIM115 -- lives as long as the job
    log = _logger(stream)
    log(f"job {snakemake.rule}: threads={threads} pid={os.getpid()}")
    sys.excepthook = _with_remake_hint
    return log


def remake_hint(message: str) -> str:
    """How to make again the checkpoint a :class:`toroids.checkpoint.CheckpointError` names (its message
    starts with the path). Deleting the file is not enough: Snakemake sees its consumers up to date."""
    path = message.split(": ", 1)[0]
    return (
        f"to make {path} again: snakemake --cores all --force {path}, then snakemake --cores all (deleting "
        "the file is not enough: the files made from it are newer, so Snakemake would have nothing to do)"
    )


def _with_remake_hint(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    sys.__excepthook__(kind, exc, tb)
    if kind.__name__ == "CheckpointError":  # by name: the plotting env has no torch to import it from
        print(f"toroids: {remake_hint(str(exc))}", file=sys.stderr)


def _logger(stream: TextIO | None, prefix: str = "") -> Log:
    def log(msg: str) -> None:
        line = f"[{_dt.datetime.now().isoformat(timespec='milliseconds')}] {msg}"
        if stream is not None:
            stream.write(line + "\n")
        print(f"{prefix}{line}", file=sys.stderr, flush=True)

    return log


@contextmanager
def model_log(path: str | os.PathLike[str], model_id: str) -> Iterator[Log]:
    """``log(msg)`` for one model of a block job: lines to the model's own log file and, prefixed with its
    id, to stderr."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as stream:
        yield _logger(stream, f"{model_id} ")


class Block(NamedTuple):
    """What a block job (``train_*``, ``measure_*``) knows about itself."""

    log: Log  # the job's own lines (stderr)
    ops: dict[str, Any]  # :func:`operational`
    models: list[str]  # its model ids, in order
    folders: dict[str, Path]  # model id → its folder, results/{study}/models/{model_id}
    logs: dict[str, str]  # model id → its log file

    def model_log(self, model_id: str) -> AbstractContextManager[Log]:
        return model_log(self.logs[model_id], model_id)


def block(snakemake: Any, name: str) -> Block:
    """Start a block job whose outputs include ``…/models/{model_id}/{name}`` for each of its models (in
    order) and whose ``log:`` files are ``…/{model_id}.log``."""
    log = start(snakemake, own_log=False)
    folders = [Path(p).parent for p in snakemake.output if Path(p).name == name]
    return Block(
        log,
        operational(snakemake.config),
        [f.name for f in folders],
        {f.name: f for f in folders},
        {Path(p).stem: p for p in snakemake.log},
    )


def operational(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change no result, read from the config by the job itself (not params, which
    Snakemake would take for rerun triggers): device, chunk size, data root and download, and the epoch
    checkpoint's cadence (``TOROIDS_CHECKPOINT_EVERY_S``, seconds, for the resume tests)."""
    from toroids.train import CHECKPOINT_EVERY_S

    return {
        "device": config["device"],
        "chunk_size": config["evaluate"]["chunk_size"],
        "data": {"root": config["data"]["root"], "download": config["data"]["download"]},
        "checkpoint_every_s": float(os.environ.get("TOROIDS_CHECKPOINT_EVERY_S", CHECKPOINT_EVERY_S)),
    }


def load_data(params: Mapping[str, Any]) -> Dataset:
    """Load the data set described by a rule's ``data`` params (name, options, root, download)."""
    from toroids.data import load_dataset

    return load_dataset(
        params["name"], params.get("options", {}), root=params["root"], download=params["download"]
    )


def load_splits(params: Mapping[str, Any], device: Any) -> tuple[Dataset, dict[str, tuple[Any, Any]]]:
    """The data set of a rule's ``data`` params and its ``{"train", "test"}`` splits as tensors on ``device``
    (materialized once per job, for the evaluation engine)."""
    data = load_data(params)
    splits = {
        "train": (data.x_train.to(device), data.y_train.to(device)),
        "test": (data.x_test.to(device), data.y_test.to(device)),
    }
    return data, splits


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Write rows as a tidy CSV, atomically (a failed job leaves no partial table)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))
    return frame
