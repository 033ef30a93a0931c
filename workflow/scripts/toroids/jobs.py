"""What every rule script shares: the job's log (or its models' logs), its thread count, its data, the
operational settings, and atomic CSV output."""

from __future__ import annotations

import datetime as _dt
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TextIO

import pandas as pd

from toroids.files import atomic_write_text

if TYPE_CHECKING:
    from toroids.data import Dataset

__all__ = [
    "Block",
    "block",
    "load_data",
    "load_splits",
    "read_data",
    "model_log",
    "operational",
    "remake_hint",
    "start",
    "write_csv",
]

Log = Callable[[str], None]


def start(snakemake: Any) -> Log:
    """Set the job's torch threads and return ``log(msg)``: timestamped lines to the rule's log (its first
    ``log:`` file) and to stderr."""
    log, _ = _start(snakemake)
    return log


def _start(snakemake: Any) -> tuple[Log, TextIO | None]:
    threads = max(1, int(getattr(snakemake, "threads", 1) or 1))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # the plotting environment has no torch, and needs none
        pass
    stream: TextIO | None = None
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        stream = open(snakemake.log[0], "a", buffering=1)  # noqa: SIM115 -- lives as long as the job
    log = _logger([stream] if stream else [])
    log(f"job {snakemake.rule}: threads={threads} pid={os.getpid()}")
    sys.excepthook = _with_remake_hint
    return log, stream


def remake_hint(message: str) -> str:
    """How to make again the checkpoint a :class:`toroids.checkpoint.CheckpointError` names (its message
    starts with the path). Deleting the file is not enough: Snakemake sees its consumers up to date."""
    path = message.split(": ", 1)[0]
    files = os.environ.get("TOROIDS_CONFIGFILES", "").split()
    study = "".join(f" --configfile {f}" for f in files)  # the study's files: nothing is merged any more
    return (
        f"to make {path} again: snakemake --cores all{study} --force {path}, then snakemake --cores all"
        f"{study} (deleting the file is not enough: the files made from it are newer, so Snakemake would "
        "have nothing to do)"
    )


def _with_remake_hint(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    sys.__excepthook__(kind, exc, tb)
    if kind.__name__ == "CheckpointError":  # by name: the plotting env has no torch to import it from
        print(f"toroids: {remake_hint(str(exc))}", file=sys.stderr)


def _logger(streams: list[TextIO], prefix: str = "", stderr: bool = True) -> Log:
    def log(msg: str) -> None:
        line = f"{prefix}[{_dt.datetime.now().isoformat(timespec='milliseconds')}] {msg}"
        for stream in streams:
            stream.write(line + "\n")
        if stderr:
            print(line, file=sys.stderr, flush=True)

    return log


@contextmanager
def model_log(path: str | os.PathLike[str], model_id: str, also: TextIO | None = None) -> Iterator[Log]:
    """``log(msg)`` for one model of a block job: lines to the model's own log file and, prefixed with its
    id, to stderr and to the stream ``also`` (the block's log)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as stream:
        model = _logger([stream], stderr=False)
        rest = _logger([also] if also else [], f"{model_id} ")

        def log(msg: str) -> None:
            model(msg)
            rest(msg)

        yield log


class Block(NamedTuple):
    """What a block job (``train_*``, ``measure_*``) knows about itself."""

    log: Log  # the job's own lines: its log (``logs/blocks/{rule}.log``) and stderr
    stream: TextIO | None  # that log, which its models' lines go to as well
    ops: dict[str, Any]  # :func:`operational`
    models: list[str]  # its model ids, in order
    folders: dict[str, Path]  # model id → its folder, results/{study}/models/{model_id}
    logs: dict[str, str]  # model id → its log file

    def model_log(self, model_id: str) -> AbstractContextManager[Log]:
        return model_log(self.logs[model_id], model_id, self.stream)

    def fail(self, message: str) -> NoReturn:
        """End the job with ``message``, written to its log first (a cluster's job log may be elsewhere)."""
        self.log(f"ERROR: {message}")
        raise SystemExit(message)


def block(snakemake: Any, name: str) -> Block:
    """Start a block job whose outputs include ``…/models/{model_id}/{name}`` for each of its models (in
    order) and whose ``log:`` files are the block's own, then ``…/{model_id}.log`` for each model."""
    log, stream = _start(snakemake)
    folders = [Path(p).parent for p in snakemake.output if Path(p).name == name]
    return Block(
        log,
        stream,
        operational(snakemake.config),
        [f.name for f in folders],
        {f.name: f for f in folders},
        {Path(p).stem: p for p in snakemake.log[1:]},
    )


def operational(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change no result, read from the config by the job itself (not params, which
    Snakemake would take for rerun triggers): device, chunk size, the Hessian trace's memory budget
    (``sharpness.memory_mb``), data root and download, and the epoch checkpoint's cadence
    (``TOROIDS_CHECKPOINT_EVERY_S``, seconds, for the resume tests)."""
    from toroids.train import CHECKPOINT_EVERY_S

    return {
        "device": config["device"],
        "chunk_size": config["evaluate"]["chunk_size"],
        "hessian_memory_mb": config["sharpness"]["memory_mb"],
        "data": {"root": config["data"]["root"], "download": config["data"]["download"]},
        "checkpoint_every_s": float(os.environ.get("TOROIDS_CHECKPOINT_EVERY_S", CHECKPOINT_EVERY_S)),
    }


def load_data(params: Mapping[str, Any]) -> Dataset:
    """Load the data set described by ``params`` (name, options, root, download) from its original files or
    memory: the data rules' work; the network jobs read the materialized file (:func:`read_data`)."""
    from toroids.data import load_dataset

    return load_dataset(
        params["name"], params.get("options", {}), root=params["root"], download=params["download"]
    )


def read_data(path: str | os.PathLike[str]) -> Dataset:
    """The study's materialized data set ``path`` (rule dataset; :func:`toroids.data.read_dataset`)."""
    from toroids.data import read_dataset

    return read_dataset(path)


def load_splits(path: str | os.PathLike[str], device: Any) -> tuple[Dataset, dict[str, tuple[Any, Any]]]:
    """The materialized data set ``path`` and its ``{"train", "test"}`` splits as tensors on ``device``
    (moved once per job, for the evaluation engine)."""
    data = read_data(path)
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
