"""What every rule script shares: the job's log, its thread count, its data, and atomic CSV output."""

from __future__ import annotations

import datetime as _dt
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from toroids.files import atomic_write_text

if TYPE_CHECKING:
    from toroids.data import Dataset

__all__ = ["load_data", "load_splits", "start", "write_csv"]

Log = Callable[[str], None]


def start(snakemake: Any) -> Log:
    """Set the job's torch threads and return ``log(msg)``: timestamped lines to the rule's log and stderr."""
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

    def log(msg: str) -> None:
        line = f"[{_dt.datetime.now().isoformat(timespec='seconds')}] {msg}"
        if stream is not None:
            stream.write(line + "\n")
        print(line, file=sys.stderr, flush=True)

    log(f"job {snakemake.rule}: threads={threads} pid={os.getpid()}")
    return log


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
