"""Where the files of the image data sets are found, without importing torch (the config validator asks
before any job runs).

A data set is looked for, in order:

1. under ``data.root`` in torchvision's layout: ``{root}/MNIST/raw/``, ``{root}/FashionMNIST/raw/`` (the
   four idx files, uncompressed, as torchvision's download leaves them) or ``{root}/cifar-10-batches-py/``;
2. for Fashion-MNIST only, in the folder of Debian's package ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``), whose four files are gzipped idx files with other gzip headers
   than upstream's but the same bytes once decompressed.

:func:`locate` answers with the first place that holds every file; :func:`not_found` is the message when
none does: the places looked in and the commands that would fill one of them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEBIAN",
    "SYSTEM_FOLDERS",
    "TORCHVISION",
    "Location",
    "download_into",
    "locate",
    "not_found",
    "source_folder",
    "torchvision_files",
]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")

#: data set → (folder under data.root, file names) as torchvision reads and downloads them
TORCHVISION: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("MNIST/raw", MNIST_FILES),
    "mnist_parity": ("MNIST/raw", MNIST_FILES),
    "fashion_mnist": ("FashionMNIST/raw", MNIST_FILES),
    "cifar10": ("cifar-10-batches-py", CIFAR_FILES),
}

#: data set → the Debian package that installs it, and the command that does
DEBIAN = {"fashion_mnist": ("dataset-fashion-mnist", "apt-get install dataset-fashion-mnist")}
#: data set → the folders that package installs it into: the idx files, gzipped (``name.gz``)
SYSTEM_FOLDERS: dict[str, tuple[Path, ...]] = {"fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),)}


@dataclass(frozen=True)
class Location:
    """Where a data set was found: ``layout`` is ``"torchvision"`` (read by torchvision's class under
    ``root``) or ``"idx.gz"`` (gzipped idx files read directly); ``files`` are the files that will be read."""

    layout: str
    root: Path
    files: tuple[Path, ...]


def source_folder(name: str) -> str:
    """The top folder under ``data.root`` of torchvision data set ``name`` (``MNIST`` for mnist and its parity
    task, ``FashionMNIST``, ``cifar-10-batches-py``): what one download fills."""
    return TORCHVISION[name][0].split("/")[0]


def torchvision_files(name: str, root: str | Path) -> tuple[Path, tuple[Path, ...]]:
    """The folder under ``root`` and the files in it that torchvision reads (and downloads) for ``name``."""
    folder, names = TORCHVISION[name]
    return Path(root) / folder, tuple(Path(root) / folder / n for n in names)


def locate(name: str, root: str | Path) -> Location | None:
    """The first place (see the module's docstring) holding every file of data set ``name``, or None."""
    root = Path(root)
    names = TORCHVISION[name][1]
    files = torchvision_files(name, root)[1]
    if all(f.is_file() for f in files):
        return Location("torchvision", root, files)
    for system in SYSTEM_FOLDERS.get(name, ()):
        files = tuple(system / f"{n}.gz" for n in names)
        if all(f.is_file() for f in files):
            return Location("idx.gz", system, files)
    return None


def not_found(name: str, root: str | Path) -> str:
    """Why data set ``name`` cannot be read with download off: every place looked in, what each lacks, and
    how to fill one (install the system package, download with torchvision, or copy the files)."""
    root = Path(root)
    folder, files = torchvision_files(name, root)
    missing = [f.name for f in files if not f.is_file()]
    more = " …" if len(missing) > 2 else ""
    places = [f"data.root = {str(root)!r}: {str(folder)!r} lacks {missing[:2]}{more}"]
    fixes = []
    for system in SYSTEM_FOLDERS.get(name, ()):
        state = "incomplete" if system.is_dir() else "absent"
        places.append(f"{str(system)!r} ({DEBIAN[name][0]}) is {state}")
    if name in DEBIAN:
        fixes.append(f"`{DEBIAN[name][1]}` (Debian, as root)")
    fixes += [
        "set data.download: true on a machine with internet",
        f"or copy the files into {str(folder)!r}",
    ]
    return f"data set {name!r} not found; looked in " + "; ".join(places) + ". To get it: " + ", ".join(fixes)


def download_into(name: str, root: str | Path, fetch: Callable[[Path], object]) -> Location:
    """Download data set ``name`` into ``root`` atomically: ``fetch(tmp)`` (torchvision's download, in the
    workflow) fills a temporary folder inside ``root``, and only then is each file torchvision reads moved
    into place (``os.replace``, on the same file system): a reader sees no file or a whole one, never the
    half of an interrupted download. The archives and the temporary folder go. Raises ``FileNotFoundError``
    when ``fetch`` left a file missing."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        fetch(Path(tmp))
        fetched = torchvision_files(name, tmp)[1]
        missing = [str(f) for f in fetched if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{name}: the download left {missing} missing")
        folder, files = torchvision_files(name, root)
        folder.mkdir(parents=True, exist_ok=True)
        for src, dst in zip(fetched, files):
            os.replace(src, dst)
    found = locate(name, root)
    assert found is not None and found.layout == "torchvision"
    return found
