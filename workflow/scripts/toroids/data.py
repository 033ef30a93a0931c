"""Data sets of the paper as in-memory tensors, standardized with training-set statistics only.

:func:`load_dataset` returns a :class:`Dataset` of four tensors: inputs are float32 of shape
``(n, *input_shape)`` (``(C, H, W)`` for images, ``(D,)`` for vectors), labels are int64 class indices.

* ``digits``, ``digits_parity``: scikit-learn's 8×8 digits (shipped with scikit-learn, so offline), split
  by a seeded stratified ``train_test_split``; parity labels are ``digit % 2``.
* ``teacher``: the random-features ("hidden manifold") teacher–student task, see :func:`teacher_draws`.
* ``mnist``, ``mnist_parity``, ``fashion_mnist``, ``cifar10``: through torchvision's data set classes,
  materialized from their ``.data``/``.targets`` arrays (never sample by sample through a DataLoader);
  Fashion-MNIST also from Debian's package folder, its gzipped idx files read directly (where each is
  looked for: :mod:`toroids.datafiles`).
  ``n_train``/``n_test`` keep the samples at the first n positions of a permutation drawn from
  ``torch.Generator().manual_seed(split_seed)`` (kept in file order); absent, the whole split is used.

Image inputs are standardized per channel, ``x ← (x − μ_c) / σ_c``, with ``μ_c`` and ``σ_c`` the mean and
(population) standard deviation of channel ``c`` over all pixels of the TRAIN images that are kept; the test
images never enter the statistics. The teacher inputs are ±1 and are not standardized.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import torch

from toroids import datafiles
from toroids.seeds import derive

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "TeacherDraws",
    "load_dataset",
    "read_dataset",
    "save_dataset",
    "teacher_draws",
]


class DataError(ValueError):
    """A data set that is unknown, misconfigured, missing on disk or unreadable."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no boolean equality; identity is what we want
class Dataset:
    """Train and test tensors of one data set; inputs float32 ``(n, *input_shape)``, labels int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    #: per input channel, the value a raw 0 takes after standardization, −μ_c/σ_c (what ADV's zeroed
    #: entries are set to); None for inputs that were not standardized (a raw 0 is 0)
    raw_zero: torch.Tensor | None = None
    #: the files the data were read from (empty for data made in memory: digits, teacher)
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Checked once here so that no consumer has to guess dtypes or shapes.
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or y.dtype != torch.int64:
                raise DataError(
                    f"{self.name}: x_{split} must be float32 and y_{split} int64, got {x.dtype} and {y.dtype}"
                )
            if y.ndim != 1 or x.ndim < 2 or x.shape[0] != y.shape[0]:
                raise DataError(
                    f"{self.name}: x_{split} {tuple(x.shape)} and y_{split} {tuple(y.shape)} "
                    "must be (n, *input_shape) and (n,)"
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise DataError(f"{self.name}: y_{split} outside [0, {self.n_classes})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"{self.name}: train inputs {tuple(self.x_train.shape[1:])} and test inputs "
                f"{tuple(self.x_test.shape[1:])} differ in shape"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: ``(C, H, W)`` for images, ``(D,)`` for vectors."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the name, ``n_classes`` and each tensor's dtype, shape and bytes (computed once:
        the tensors are never modified in place by the package)."""
        done = self.__dict__.get("_fingerprint")
        if done is not None:
            return done
        h = hashlib.sha256(f"{self.name}\0{self.n_classes}\0".encode())
        for key in ("x_train", "y_train", "x_test", "y_test"):
            t = getattr(self, key).detach().cpu().contiguous()
            h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.numpy().data)  # the buffer itself: no copy of a possibly 600 MB tensor
        object.__setattr__(self, "_fingerprint", h.hexdigest())  # frozen dataclass: its one cached field
        return self.__dict__["_fingerprint"]


def save_dataset(data: Dataset, path: str | os.PathLike[str]) -> None:
    """Write ``data`` to one safetensors file, atomically (:func:`toroids.checkpoint.save_state`: its tensors,
    with the name, class count, source files and fingerprint as metadata): the workflow's materialized data
    set, which every network job of a study reads instead of the original files."""
    from toroids.checkpoint import save_state

    tensors = {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    if data.raw_zero is not None:
        tensors["raw_zero"] = data.raw_zero
    meta = {"name": data.name, "n_classes": data.n_classes, "files": list(data.files),
            "fingerprint": data.fingerprint()}  # fmt: skip
    save_state(path, tensors, meta)


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """The data set :func:`save_dataset` wrote; the file's checksum is verified on reading
    (:func:`toroids.checkpoint.load_state`), and the tensors' fingerprint against the recorded one."""
    from toroids.checkpoint import load_state

    tensors, meta = load_state(path)
    data = Dataset(meta["name"], tensors["x_train"], tensors["y_train"], tensors["x_test"], tensors["y_test"],
                   int(meta["n_classes"]), tensors.get("raw_zero"), tuple(meta["files"]))  # fmt: skip
    if data.fingerprint() != meta["fingerprint"]:
        raise DataError(f"{path}: the tensors are not the data set it was written from (fingerprint differs)")
    return data


Loader = Callable[[str, dict[str, Any], Path, bool, bool], Dataset]


@dataclass(frozen=True)
class DatasetSpec:
    """Registry entry: ``loader(name, options, root, download, verify_checksums)``, its option defaults (the
    complete set of option keys) and ``check(name, options)``, which raises :class:`DataError` on a bad value.
    """

    loader: Loader
    defaults: Mapping[str, Any]
    description: str
    check: Callable[[str, dict[str, Any]], None]


DATASETS: dict[str, DatasetSpec] = {}


def load_dataset(
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    root: str | Path = "data",
    download: bool = False,
    verify_checksums: bool = True,
) -> Dataset:
    """Load data set ``name`` with ``options`` (keys of ``DATASETS[name].defaults``; missing ones default).

    ``root`` and ``download`` are the config's ``data.root`` and ``data.download`` (torchvision data sets
    only). ``verify_checksums=False`` skips the per-file MD5 check that torchvision's CIFAR-10 class makes
    (MNIST-like classes only check that the files exist): it exists so that tests can load small files
    written in the real CIFAR format, which cannot match the published checksums. The workflow never
    sets it.
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {sorted(DATASETS)}")
    spec = DATASETS[name]
    given = dict(options or {})
    unknown = sorted(set(given) - set(spec.defaults))
    if unknown:
        raise DataError(f"unknown option(s) {unknown} for data set {name!r}; known: {sorted(spec.defaults)}")
    opts = {**spec.defaults, **given}
    spec.check(name, opts)
    return spec.loader(name, opts, Path(root), download, verify_checksums)


# ---------------------------------------------------------------------------------------------- options


def _check_int(name: str, opts: dict[str, Any], key: str, minimum: int, optional: bool = False) -> None:
    value = opts[key]
    if optional and value is None:
        return
    # bool is an int subclass; `n_train: true` is a config mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"data set {name!r}: option {key!r} must be an integer ≥ {minimum}, got {value!r}")


def _check_digits(name: str, opts: dict[str, Any]) -> None:
    frac = opts["test_fraction"]
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
        raise DataError(f"data set {name!r}: option 'test_fraction' must be in (0, 1), got {frac!r}")
    _check_int(name, opts, "split_seed", 0)


def _check_teacher(name: str, opts: dict[str, Any]) -> None:
    for key in ("D", "P", "N", "n_test"):
        _check_int(name, opts, key, 1)
    _check_int(name, opts, "seed", 0)


def _check_vision(name: str, opts: dict[str, Any]) -> None:
    _check_int(name, opts, "n_train", 1, optional=True)
    _check_int(name, opts, "n_test", 1, optional=True)
    _check_int(name, opts, "split_seed", 0)


# ---------------------------------------------------------------------------------------- standardizing


def _standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 ``(n, C, ...)`` → float32 ``(x − μ_c) / σ_c``, with μ_c, σ_c from the TRAIN images only; also
    returns the standardized raw 0 of each channel, ``−μ_c / σ_c`` (float32, shape ``(C,)``).

    The statistics are exact: computed in float64 from the histogram of the 256 byte values of each
    channel, which also avoids a float64 copy of CIFAR-10. The usual ``/255`` is left out because it
    cancels in ``(x/255 − μ/255) / (σ/255)``.
    """
    values = torch.arange(256, dtype=torch.float64)
    x_train, x_test = train.to(torch.float32), test.to(torch.float32)
    raw_zero = torch.zeros(train.shape[1], dtype=torch.float32)
    for c in range(train.shape[1]):
        counts = torch.bincount(train[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = counts.sum()
        mean = (counts * values).sum() / n
        std = ((counts * (values - mean) ** 2).sum() / n).sqrt()
        if not std > 0:
            raise DataError(f"channel {c} of the training images is constant: cannot standardize")
        for x in (x_train, x_test):
            x[:, c].sub_(float(mean)).div_(float(std))
        # the same float32 operations as the images', so that a raw 0 maps to exactly this value
        raw_zero[c : c + 1] = torch.zeros(1).sub_(float(mean)).div_(float(std))
    return x_train, x_test, raw_zero


# ----------------------------------------------------------------------------------------------- digits


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 images of 8×8 integers 0..16, labels 0..9), read from the CSV file the
    package ships: the same data as ``sklearn.datasets.load_digits`` without importing scikit-learn (about
    2 s per job on a laptop CPU, more than the digits study's work in most jobs)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data set 'digits' needs scikit-learn installed (it ships the digits file)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1]


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified split, as scikit-learn sizes it: ⌈test_fraction · n⌉ test samples, shared
    among the classes in proportion to their sizes (the floor of each share, the remainder to the largest
    fractional parts), each class's test samples a seeded random choice. Sorted: each split keeps the file's
    order."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = test_fraction * counts
    n_test = np.floor(share).astype(int)
    extra = int(np.ceil(test_fraction * len(labels))) - int(n_test.sum())
    n_test[np.argsort(-(share - n_test), kind="stable")[:extra]] += 1
    test = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, n_test)]
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


def _load_digits(name: str, opts: dict[str, Any], root: Path, download: bool, verify: bool) -> Dataset:
    images_np, labels_np = _digits_arrays()
    images = torch.from_numpy(images_np.astype(np.uint8)).unsqueeze(1)  # integers 0..16 → (n, 1, 8, 8)
    labels = torch.from_numpy(labels_np.astype(np.int64))
    idx_train, idx_test = _stratified_split(labels_np, opts["test_fraction"], opts["split_seed"])
    idx_train, idx_test = torch.from_numpy(idx_train), torch.from_numpy(idx_test)
    x_train, x_test, raw_zero = _standardize(images[idx_train], images[idx_test])
    y_train, y_test = labels[idx_train], labels[idx_test]
    parity = name.endswith("_parity")
    if parity:
        y_train, y_test = y_train % 2, y_test % 2
    return Dataset(name, x_train, y_train, x_test, y_test, 2 if parity else 10, raw_zero)


# ---------------------------------------------------------------------------------------------- teacher


class TeacherDraws(NamedTuple):
    """The random draws of the teacher–student task (float64)."""

    teacher: torch.Tensor  # w_T, (D,)
    features: torch.Tensor  # F, (N, D)
    xi_train: torch.Tensor  # ξ of the training patterns, (P, D)
    xi_test: torch.Tensor  # ξ of the test patterns, (n_test, D)


def teacher_draws(D: int, P: int, N: int, n_test: int, seed: int) -> TeacherDraws:
    """All draws of ``teacher``: i.i.d. standard Gaussians, each kind from its own ``torch.Generator``
    seeded by :func:`toroids.seeds.derive` of ``seed``: ``w_T`` (D) from ``(seed, "teacher")``, ``F`` (N×D,
    drawn row by row) from ``(seed, "features")``, ``ξ_train`` (P×D) from ``(seed, "train")``, ``ξ_test``
    (n_test×D) from ``(seed, "test")``.

    So the task — the teacher, the patterns and their labels — depends only on (seed, D, P, n_test), never
    on N: an over-parameterization sweep over N (the paper's Figs. 6 and 18) changes the student's features
    and nothing else, and the features of a smaller N are the first rows of a larger one's.
    """

    def gen(what: str) -> torch.Generator:
        return torch.Generator().manual_seed(derive(int(seed), what))

    def draw(what: str, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen(what), dtype=torch.float64)

    rows = gen("features")  # one row at a time: a larger N extends a smaller one's features
    features = torch.stack([torch.randn(D, generator=rows, dtype=torch.float64) for _ in range(N)])
    return TeacherDraws(draw("teacher", D), features, draw("train", P, D), draw("test", n_test, D))


def _teacher_split(draws: TeacherDraws, xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # x = sign(F ξ) ∈ {−1, +1}^N (a zero pre-activation, probability 0, goes to −1 so inputs stay ±1);
    # y = 1 if w_T·ξ > 0 else 0.
    x = torch.where(xi @ draws.features.T > 0, 1.0, -1.0).to(torch.float32)
    y = (xi @ draws.teacher > 0).to(torch.int64)
    return x, y


def _load_teacher(name: str, opts: dict[str, Any], root: Path, download: bool, verify: bool) -> Dataset:
    draws = teacher_draws(opts["D"], opts["P"], opts["N"], opts["n_test"], opts["seed"])
    x_train, y_train = _teacher_split(draws, draws.xi_train)
    x_test, y_test = _teacher_split(draws, draws.xi_test)
    return Dataset(name, x_train, y_train, x_test, y_test, 2)


# ------------------------------------------------------------------------------------------ torchvision

# name → (torchvision class name, labels mod 2?)
_VISION: dict[str, tuple[str, bool]] = {
    "mnist": ("MNIST", False),
    "mnist_parity": ("MNIST", True),
    "fashion_mnist": ("FashionMNIST", False),
    "cifar10": ("CIFAR10", False),
}


def _vision_class(class_name: str, verify: bool) -> type:
    import torchvision.datasets as tvd

    cls = getattr(tvd, class_name)
    if verify or class_name != "CIFAR10":
        return cls

    # torchvision's check_integrity(path, md5=None) only tests that the file exists; everything else
    # (file names, pickle layout, reshaping) stays torchvision's own code.
    class UncheckedCIFAR10(cls):  # type: ignore[misc, valid-type]
        train_list = [[f, None] for f, _ in cls.train_list]
        test_list = [[f, None] for f, _ in cls.test_list]
        meta = {**cls.meta, "md5": None}

    return UncheckedCIFAR10


def _open_vision(name: str, cls: type, root: Path, download: bool) -> tuple[Any, Any]:
    try:
        return cls(str(root), train=True, download=download), cls(str(root), train=False)
    except Exception as err:  # any failure of the third-party reader becomes a DataError
        # without download the caller found every file first (datafiles.locate): they exist and failed to read
        folder = datafiles.torchvision_files(name, root)[0]
        if download:
            raise DataError(
                f"data set {name!r}: download into data.root = {str(root)!r} failed ({err}); "
                "check the internet connection, or copy the files into "
                f"{str(folder)!r}"
            ) from err
        raise DataError(
            f"data set {name!r}: the files in {str(folder)!r} (data.root = {str(root)!r}) could "
            f"not be read or failed their checksum ({err}); delete them and download again "
            "with `data.download: true`."
        ) from err


def _read_idx_gz(path: Path) -> np.ndarray:
    """A gzipped idx file (LeCun's format: two zero bytes, type 0x08 = uint8, the number of dimensions,
    then each dimension as a big-endian int32, then the data) as a uint8 array of those dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:  # zlib.error: a damaged deflate block
        raise DataError(f"{path}: not a readable gzip file ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an idx file of unsigned bytes (header {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DataError(f"{path}: {len(raw) - offset} data bytes for dimensions {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _read_idx_folder(loc: datafiles.Location) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """((train images (n, 1, H, W), labels), (test images, labels)) from the four gzipped idx files."""
    arrays = [_read_idx_gz(f) for f in loc.files]  # train images, train labels, test images, test labels
    splits = []
    for images, labels in (arrays[0:2], arrays[2:4]):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{loc.root}: images {images.shape} and labels {labels.shape} do not match")
        x = torch.from_numpy(images.copy()).unsqueeze(1)  # a writable copy: frombuffer's array is read-only
        splits.append((x, torch.from_numpy(labels.astype(np.int64))))
    return tuple(splits)


def _as_tensors(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (n, C, H, W), int64 labels (n,)) straight from ``ds.data``/``ds.targets``."""
    data = ds.data if isinstance(ds.data, torch.Tensor) else torch.from_numpy(np.asarray(ds.data))
    if data.dtype != torch.uint8:
        raise DataError(f"{type(ds).__name__}: expected uint8 images, got {data.dtype}")
    # MNIST-like .data is (n, H, W); CIFAR's is NHWC.
    data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
    targets = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return data.contiguous(), targets


def _subset(n_keep: int | None, n_total: int, seed: int, what: str, name: str) -> torch.Tensor | None:
    """Indices of ``n_keep`` of ``n_total`` samples: the first ``n_keep`` of a seeded permutation, sorted."""
    if n_keep is None:
        return None
    if n_keep > n_total:
        raise DataError(f"data set {name!r}: option {what!r} = {n_keep} exceeds the {n_total} samples")
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(int(seed)))
    return perm[:n_keep].sort().values


def _load_vision(name: str, opts: dict[str, Any], root: Path, download: bool, verify: bool) -> Dataset:
    class_name, parity = _VISION[name]
    loc = None if download else datafiles.locate(name, root)
    if loc is None and not download:
        raise DataError(datafiles.not_found(name, root))
    if loc is not None and loc.layout == "idx.gz":
        (img_train, y_train), (img_test, y_test) = _read_idx_folder(loc)
        files = tuple(str(f) for f in loc.files)
    else:
        cls = _vision_class(class_name, verify)
        train_ds, test_ds = _open_vision(name, cls, root, download)
        (img_train, y_train), (img_test, y_test) = _as_tensors(train_ds), _as_tensors(test_ds)
        files = tuple(str(f) for f in datafiles.torchvision_files(name, root)[1])
    # Subsample before standardizing, so that the statistics are those of the training set actually used.
    keep = _subset(opts["n_train"], len(y_train), opts["split_seed"], "n_train", name)
    if keep is not None:
        img_train, y_train = img_train[keep], y_train[keep]
    keep = _subset(opts["n_test"], len(y_test), opts["split_seed"], "n_test", name)
    if keep is not None:
        img_test, y_test = img_test[keep], y_test[keep]
    x_train, x_test, raw_zero = _standardize(img_train, img_test)
    if parity:
        y_train, y_test = y_train % 2, y_test % 2
    return Dataset(name, x_train, y_train, x_test, y_test, 2 if parity else 10, raw_zero, files)


# --------------------------------------------------------------------------------------------- registry

# Read-only: the registry's defaults are shared by every call.
_DIGITS_DEFAULTS = MappingProxyType({"test_fraction": 0.25, "split_seed": 0})
_VISION_DEFAULTS = MappingProxyType({"n_train": None, "n_test": None, "split_seed": 0})

DATASETS.update(
    {
        "digits": DatasetSpec(
            _load_digits, _DIGITS_DEFAULTS, "scikit-learn 8×8 digits, 10 classes", _check_digits
        ),
        "digits_parity": DatasetSpec(
            _load_digits, _DIGITS_DEFAULTS, "8×8 digits, labels digit % 2", _check_digits
        ),
        "teacher": DatasetSpec(
            _load_teacher,
            MappingProxyType({"D": 501, "P": 1503, "N": 1000, "n_test": 1000, "seed": 0}),
            "random-features teacher–student task: x = sign(F ξ), y = [w_T·ξ > 0]",
            _check_teacher,
        ),
        "mnist": DatasetSpec(_load_vision, _VISION_DEFAULTS, "MNIST (torchvision), 1×28×28", _check_vision),
        "mnist_parity": DatasetSpec(_load_vision, _VISION_DEFAULTS, "MNIST, labels digit % 2", _check_vision),
        "fashion_mnist": DatasetSpec(
            _load_vision, _VISION_DEFAULTS, "Fashion-MNIST (torchvision), 1×28×28", _check_vision
        ),
        "cifar10": DatasetSpec(
            _load_vision, _VISION_DEFAULTS, "CIFAR-10 (torchvision), 3×32×32", _check_vision
        ),
    }
)
