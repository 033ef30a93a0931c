"""Tests of toroids.data: the offline data sets, the teacher task, and torchvision's on-disk formats."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from tests.conftest import DEBIAN_FMNIST, needs_real_fmnist
from toroids import datafiles
from toroids.data import DATASETS, DataError, Dataset, load_dataset, teacher_draws
from toroids.seeds import derive

SMALL_TEACHER = {"D": 31, "P": 200, "N": 50, "n_test": 120, "seed": 3}


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std over samples and pixels (float64)."""
    flat = x.double().transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(1), flat.std(1, correction=0)


# ----------------------------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_split_sizes():
    d = load_dataset("digits")
    assert isinstance(d, Dataset) and d.name == "digits" and d.n_classes == 10
    assert d.input_shape == (1, 8, 8)
    assert d.x_train.dtype == d.x_test.dtype == torch.float32
    assert d.y_train.dtype == d.y_test.dtype == torch.int64
    assert len(d.y_train) + len(d.y_test) == 1797
    assert len(d.y_test) == 450  # ceil(0.25 * 1797)
    assert set(d.y_train.tolist()) == set(d.y_test.tolist()) == set(range(10))
    assert len(load_dataset("digits", {"test_fraction": 0.5}).y_test) == 899


def test_digits_split_is_fixed_by_the_seed():
    a, b = load_dataset("digits", {"split_seed": 1}), load_dataset("digits", {"split_seed": 1})
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.fingerprint() == b.fingerprint()
    c = load_dataset("digits", {"split_seed": 2})
    assert not torch.equal(a.y_train, c.y_train)
    assert a.fingerprint() != c.fingerprint()


def test_digits_standardized_with_train_statistics_only():
    d = load_dataset("digits")
    mean, std = _channel_stats(d.x_train)
    # With all-data statistics the train mean would be off by ~1e-4 (test mean below): 1e-6 tells them apart.
    assert abs(float(mean)) < 1e-6 and abs(float(std) - 1) < 1e-6
    assert abs(float(_channel_stats(d.x_test)[0])) > 1e-5

    # Undo the affine map without assuming how it was computed: pixels are integers 0..16 and both extremes
    # occur in the train split, so min ↦ 0 and max ↦ 16 fix the scale s and offset m of x = (raw − m)/s.
    lo, hi = float(d.x_train.min()), float(d.x_train.max())
    s = 16.0 / (hi - lo)
    m = -lo * s
    raw_train = d.x_train.double() * s + m
    raw_test = d.x_test.double() * s + m
    for raw in (raw_train, raw_test):
        assert torch.allclose(raw, raw.round(), atol=1e-4)  # really an affine image of the integer pixels
    # m and s are the statistics of the TRAIN pixels, not of all pixels.
    assert m == pytest.approx(float(raw_train.round().mean()), abs=2e-5)
    assert s == pytest.approx(float(raw_train.round().std(correction=0)), abs=2e-5)
    everything = load_digits().images
    # ... and the checks above can fail: the all-data mean differs by ~6e-4 (for this seed).
    assert abs(everything.mean() - m) > 2e-4
    # The two splits partition the data set (as multisets of images).
    got = np.concatenate([raw_train.round().numpy(), raw_test.round().numpy()]).reshape(1797, -1)
    assert sorted(map(tuple, got.astype(int))) == sorted(map(tuple, everything.reshape(1797, -1).astype(int)))


def test_digits_parity_labels():
    d, p = load_dataset("digits", {"split_seed": 4}), load_dataset("digits_parity", {"split_seed": 4})
    assert p.n_classes == 2
    assert torch.equal(p.x_train, d.x_train) and torch.equal(p.x_test, d.x_test)
    assert torch.equal(p.y_train, d.y_train % 2) and torch.equal(p.y_test, d.y_test % 2)
    assert set(p.y_train.tolist()) == {0, 1}


def test_dataset_checks_its_contract():
    x, y = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])
    d = Dataset("toy", x, y, x[:2], y[:2], n_classes=2)
    assert d.input_shape == (3,) and len(d.fingerprint()) == 64
    with pytest.raises(DataError, match="int64"):
        Dataset("toy", x, y.float(), x, y, n_classes=2)
    with pytest.raises(DataError, match="outside"):
        Dataset("toy", x, y, x, y + 1, n_classes=2)
    with pytest.raises(DataError, match="shape"):
        Dataset("toy", x, y, torch.zeros(4, 5), y, n_classes=2)


# ---------------------------------------------------------------------------------------------- teacher


def test_teacher_shapes_and_values():
    t = load_dataset("teacher", SMALL_TEACHER)
    assert t.n_classes == 2 and t.input_shape == (50,)
    assert t.x_train.shape == (200, 50) and t.x_test.shape == (120, 50)
    assert t.x_train.dtype == torch.float32 and t.y_train.dtype == torch.int64
    for x in (t.x_train, t.x_test):
        assert set(x.unique().tolist()) == {-1.0, 1.0}
    for y in (t.y_train, t.y_test):
        assert set(y.unique().tolist()) == {0, 1}
        assert 0.2 < y.double().mean() < 0.8


def test_teacher_defaults_are_the_papers():
    assert dict(DATASETS["teacher"].defaults) == {"D": 501, "P": 1503, "N": 1000, "n_test": 1000, "seed": 0}


def test_teacher_is_deterministic_per_seed():
    a, b = load_dataset("teacher", SMALL_TEACHER), load_dataset("teacher", SMALL_TEACHER)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, key), getattr(b, key))
    assert a.fingerprint() == b.fingerprint()
    c = load_dataset("teacher", {**SMALL_TEACHER, "seed": 4})
    assert not torch.equal(a.x_train, c.x_train) and not torch.equal(a.y_train, c.y_train)
    assert a.fingerprint() != c.fingerprint()


def test_teacher_labels_are_the_teacher_perceptron_on_the_hidden_patterns():
    o = SMALL_TEACHER
    t = load_dataset("teacher", o)
    # Redraw independently, each kind from its own generator, as documented.
    def redraw(what, *shape):
        gen = torch.Generator().manual_seed(derive(o["seed"], what))
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    rows = torch.Generator().manual_seed(derive(o["seed"], "features"))
    f = torch.stack([torch.randn(o["D"], generator=rows, dtype=torch.float64) for _ in range(o["N"])])
    w = redraw("teacher", o["D"])
    xi_train, xi_test = redraw("train", o["P"], o["D"]), redraw("test", o["n_test"], o["D"])
    draws = teacher_draws(o["D"], o["P"], o["N"], o["n_test"], o["seed"])
    assert torch.equal(draws.teacher, w) and torch.equal(draws.features, f)
    assert torch.equal(draws.xi_train, xi_train) and torch.equal(draws.xi_test, xi_test)
    # y = [w_T·ξ > 0] and x = sign(F ξ), with the same teacher and the same F for train and test.
    for xi, x, y in ((xi_train, t.x_train, t.y_train), (xi_test, t.x_test, t.y_test)):
        assert torch.equal(y, (xi @ w > 0).long())
        assert torch.equal(x, torch.sign(xi @ f.T).float())


def test_teacher_task_depends_only_on_seed_d_p_and_the_sweep_changes_only_the_features():
    """Over N (the paper's over-parameterization sweeps) the patterns and labels stay the same: the labels of
    a sweep's sizes agreed on 51 % of the patterns when ξ was drawn after F."""
    a = teacher_draws(20, 10, 30, 5, seed=7)
    b = teacher_draws(20, 99, 30, 17, seed=7)
    assert torch.equal(a.teacher, b.teacher) and torch.equal(a.features, b.features)
    wide = teacher_draws(20, 10, 90, 5, seed=7)
    assert torch.equal(wide.teacher, a.teacher) and torch.equal(wide.xi_train, a.xi_train)
    assert torch.equal(wide.xi_test, a.xi_test) and torch.equal(wide.features[:30], a.features)
    opts = {"D": 20, "P": 40, "n_test": 30, "seed": 3}
    small, large = (load_dataset("teacher", {**opts, "N": n}) for n in (25, 75))
    assert torch.equal(small.y_train, large.y_train) and torch.equal(small.y_test, large.y_test)
    assert not torch.equal(teacher_draws(20, 10, 30, 5, seed=8).xi_train, a.xi_train)


# ------------------------------------------------------------------------------------ options and names


def test_unknown_name_and_option_are_named():
    with pytest.raises(DataError, match=r"'svhn'.*cifar10.*digits"):
        load_dataset("svhn")
    with pytest.raises(DataError, match="n_train"):
        load_dataset("digits", {"n_train": 10})
    with pytest.raises(DataError, match="test_fraction"):
        load_dataset("digits", {"test_fraction": 1.5})
    with pytest.raises(DataError, match="'P'"):
        load_dataset("teacher", {"P": True})


def test_registry_matches_the_config_schema():
    import yaml

    schema_path = Path(__file__).parents[1] / "config" / "schema" / "config.schema.yaml"
    if not schema_path.exists():
        pytest.skip("no config schema")
    schema = yaml.safe_load(schema_path.read_text())
    names = schema["properties"]["experiments"]["items"]["properties"]["dataset"]["enum"]
    assert set(names) == set(DATASETS)
    for name, entry in schema["properties"]["datasets"]["properties"].items():
        props = schema["$defs"][entry["$ref"].split("/")[-1]] if "$ref" in entry else entry
        assert set(props["properties"]) == set(DATASETS[name].defaults), name


# ------------------------------------------------------------------- torchvision formats, written for real

IMG = 28


def _write_idx(path: Path, array: np.ndarray) -> None:
    """idx format: big-endian magic (0x0800 | ndim: 2051 images, 2049 labels), big-endian sizes, bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">i", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(
    root: Path,
    folder: str,
    rng: np.random.Generator,
    n_train: int = 30,
    n_test: int = 12,
    test_offset: int = 128,
) -> dict[str, np.ndarray]:
    # Test pixels live in [test_offset, 255]: statistics that looked at them would be visibly wrong.
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, IMG, IMG)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(test_offset, 256, (n_test, IMG, IMG)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    raw = root / folder / "raw"
    for name, array in arrays.items():
        _write_idx(raw / name, array)
    assert struct.unpack(">i", (raw / "train-images-idx3-ubyte").read_bytes()[:4])[0] == 2051
    assert struct.unpack(">i", (raw / "train-labels-idx1-ubyte").read_bytes()[:4])[0] == 2049
    return arrays


def _expected(raw_train: np.ndarray, raw_test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw − μ_c)/σ_c with per-channel statistics of the train images, for (n, C, H, W) arrays."""
    tr, te = torch.from_numpy(raw_train).double(), torch.from_numpy(raw_test).double()
    mean, std = _channel_stats(tr)
    shape = (1, -1) + (1,) * (tr.ndim - 2)
    return (tr - mean.view(shape)) / std.view(shape), (te - mean.view(shape)) / std.view(shape)


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_round_trips(tmp_path, name, folder):
    arrays = _write_mnist(tmp_path, folder, np.random.default_rng(0))
    d = load_dataset(name, root=tmp_path)
    assert d.input_shape == (1, IMG, IMG) and d.n_classes == 10
    assert torch.equal(d.y_train, torch.from_numpy(arrays["train-labels-idx1-ubyte"]))
    assert torch.equal(d.y_test, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]))
    want_train, want_test = _expected(
        arrays["train-images-idx3-ubyte"][:, None], arrays["t10k-images-idx3-ubyte"][:, None]
    )
    assert torch.allclose(d.x_train.double(), want_train, atol=1e-5)
    assert torch.allclose(d.x_test.double(), want_test, atol=1e-5)


def test_train_tensors_do_not_depend_on_the_test_data(tmp_path):
    _write_mnist(tmp_path / "a", "MNIST", np.random.default_rng(1), test_offset=0)
    _write_mnist(tmp_path / "b", "MNIST", np.random.default_rng(1), test_offset=200)  # same train files
    a, b = load_dataset("mnist", root=tmp_path / "a"), load_dataset("mnist", root=tmp_path / "b")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_test, b.x_test)
    mean, std = _channel_stats(a.x_train)
    assert abs(float(mean)) < 1e-6 and abs(float(std) - 1) < 1e-5


def test_mnist_parity_and_subsets(tmp_path):
    arrays = _write_mnist(tmp_path, "MNIST", np.random.default_rng(2))
    full = load_dataset("mnist", root=tmp_path)
    parity = load_dataset("mnist_parity", root=tmp_path)
    assert parity.n_classes == 2 and torch.equal(parity.y_train, full.y_train % 2)

    opts = {"n_train": 10, "n_test": 5, "split_seed": 3}
    sub, again = load_dataset("mnist", opts, root=tmp_path), load_dataset("mnist", opts, root=tmp_path)
    assert sub.x_train.shape == (10, 1, IMG, IMG) and sub.x_test.shape == (5, 1, IMG, IMG)
    assert sub.fingerprint() == again.fingerprint()
    other = load_dataset("mnist", {**opts, "split_seed": 4}, root=tmp_path)
    assert not torch.equal(sub.y_train, other.y_train) or not torch.equal(sub.x_train, other.x_train)

    # The kept samples are the first n of a permutation seeded by split_seed (in file order), standardized
    # with the statistics of the kept train samples only.
    def kept(n_keep: int, n_total: int) -> np.ndarray:
        perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(opts["split_seed"]))
        return perm[:n_keep].sort().values.numpy()

    k_train, k_test = kept(10, 30), kept(5, 12)
    assert torch.equal(sub.y_train, torch.from_numpy(arrays["train-labels-idx1-ubyte"][k_train]))
    assert torch.equal(sub.y_test, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"][k_test]))
    want_train, want_test = _expected(
        arrays["train-images-idx3-ubyte"][k_train, None], arrays["t10k-images-idx3-ubyte"][k_test, None]
    )
    assert torch.allclose(sub.x_train.double(), want_train, atol=1e-5)
    assert torch.allclose(sub.x_test.double(), want_test, atol=1e-5)
    with pytest.raises(DataError, match="n_train"):
        load_dataset("mnist", {"n_train": 31}, root=tmp_path)


CIFAR_TRAIN_PER_BATCH = 4


def _write_cifar(root: Path, rng: np.random.Generator) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    """The CIFAR-10 python format: pickled dicts, ``data`` uint8 (n, 3072) rows R|G|B of 32×32, ``labels``.

    The published files are Python 2 pickles whose keys load as ``str`` with encoding="latin1" (what
    torchvision uses); a Python 3 pickle with ``str`` keys loads identically.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    # Channels get different ranges so that one global (not per-channel) standardization is caught.
    lows, highs = np.array([0, 60, 120])[:, None], np.array([100, 200, 256])[:, None]

    def batch(n: int) -> tuple[np.ndarray, list[int]]:
        data = rng.integers(lows, highs, (n, 3, 1024)).reshape(n, 3072).astype(np.uint8)
        return data, rng.integers(0, 10, n).tolist()

    train_data, train_labels = [], []
    for i in range(1, 6):
        data, labels = batch(CIFAR_TRAIN_PER_BATCH)
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps({"data": data, "labels": labels}))
        train_data.append(data)
        train_labels += labels
    test_data, test_labels = batch(6)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": test_data, "labels": test_labels}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return np.concatenate(train_data), train_labels, test_data, test_labels


def test_cifar10_format_round_trips(tmp_path):
    train, train_labels, test, test_labels = _write_cifar(tmp_path, np.random.default_rng(0))
    d = load_dataset("cifar10", root=tmp_path, verify_checksums=False)
    assert d.input_shape == (3, 32, 32) and d.n_classes == 10
    assert d.y_train.tolist() == train_labels and d.y_test.tolist() == test_labels
    want_train, want_test = _expected(train.reshape(-1, 3, 32, 32), test.reshape(-1, 3, 32, 32))
    assert torch.allclose(d.x_train.double(), want_train, atol=1e-5)
    assert torch.allclose(d.x_test.double(), want_test, atol=1e-5)
    mean, std = _channel_stats(d.x_train)
    assert torch.allclose(mean, torch.zeros(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(std, torch.ones(3, dtype=torch.float64), atol=1e-5)


def test_cifar10_checksums_are_verified_by_default(tmp_path):
    _write_cifar(tmp_path, np.random.default_rng(0))
    with pytest.raises(DataError, match="checksum"):
        load_dataset("cifar10", root=tmp_path)


def test_unreadable_files_are_a_data_error(tmp_path):
    _write_mnist(tmp_path, "MNIST", np.random.default_rng(0))
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="could not be read"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("cifar10", "cifar-10-batches-py")])
def test_missing_data_names_the_config_keys(tmp_path, name, folder):
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset(name, root=root)
    message = str(info.value)
    assert "data.root" in message and str(root) in message and folder in message
    assert "data.download: true" in message
    assert not root.exists()  # nothing was created or fetched


# ------------------------------------------------------------------------ Fashion-MNIST from Debian's package


def _gzip_folder(raw: Path, dest: Path) -> None:
    """The four idx files of ``raw`` gzipped into ``dest``, as Debian's package installs them."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in raw.iterdir():
        (dest / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes(), mtime=0))


def test_fashion_mnist_is_read_from_the_system_folder_as_from_torchvision_layout(tmp_path, monkeypatch):
    arrays = _write_mnist(tmp_path / "tv", "FashionMNIST", np.random.default_rng(5))
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    _gzip_folder(tmp_path / "tv" / "FashionMNIST" / "raw", system)
    monkeypatch.setitem(datafiles.SYSTEM_FOLDERS, "fashion_mnist", (system,))
    # data.root is empty: the package's folder is read, its .gz files directly
    d = load_dataset("fashion_mnist", {"n_train": 20}, root=tmp_path / "empty")
    ref = load_dataset("fashion_mnist", {"n_train": 20}, root=tmp_path / "tv")  # torchvision's reader
    assert d.fingerprint() == ref.fingerprint()
    assert torch.equal(d.y_test, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]))
    assert d.files == tuple(str(system / f"{n}.gz") for n in datafiles.MNIST_FILES)
    tv_files = tuple(str(tmp_path / "tv" / "FashionMNIST" / "raw" / n) for n in datafiles.MNIST_FILES)
    assert ref.files == tv_files
    assert not (tmp_path / "empty").exists()  # nothing written where nothing was asked for
    # data.root in torchvision's layout comes first
    assert load_dataset("fashion_mnist", root=tmp_path / "tv").files == tv_files


def test_a_corrupt_system_file_is_a_data_error_that_names_it(tmp_path, monkeypatch):
    _write_mnist(tmp_path / "tv", "FashionMNIST", np.random.default_rng(5))
    system = tmp_path / "pkg"
    _gzip_folder(tmp_path / "tv" / "FashionMNIST" / "raw", system)
    monkeypatch.setitem(datafiles.SYSTEM_FOLDERS, "fashion_mnist", (system,))
    (system / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion_mnist", root=tmp_path / "empty")
    (system / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_dataset("fashion_mnist", root=tmp_path / "empty")
    good = gzip.compress(bytes(range(256)) * 40, mtime=0)
    damaged = good[:12] + bytes(b ^ 0xFF for b in good[12:40]) + good[40:]  # a broken deflate block
    (system / "t10k-images-idx3-ubyte.gz").write_bytes(damaged)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: not a readable gzip file"):
        load_dataset("fashion_mnist", root=tmp_path / "empty")


def test_missing_fashion_mnist_names_every_place_and_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(datafiles.SYSTEM_FOLDERS, "fashion_mnist", (tmp_path / "no-package",))
    with pytest.raises(DataError) as info:
        load_dataset("fashion_mnist", root=tmp_path / "nowhere")
    message = str(info.value)
    for part in (str(tmp_path / "nowhere" / "FashionMNIST" / "raw"), str(tmp_path / "no-package"),
                 "apt-get install dataset-fashion-mnist", "data.download: true"):
        assert part in message, part


@pytest.mark.parametrize("name", sorted(datafiles.TORCHVISION))
def test_the_torchvision_layout_is_torchvisions_own(tmp_path, name):
    """datafiles.TORCHVISION (read without importing torch) is what torchvision's classes read."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, {"mnist": "MNIST", "mnist_parity": "MNIST", "fashion_mnist": "FashionMNIST",
                        "cifar10": "CIFAR10"}[name])  # fmt: skip
    if hasattr(cls, "resources"):  # MNIST family: root/<ClassName>/raw/<file without .gz>
        folder = tmp_path / cls.__name__ / "raw"
        files = [folder / Path(url).name.removesuffix(".gz") for url, _ in cls.resources]
    else:  # CIFAR: root/cifar-10-batches-py/<batches>
        folder = tmp_path / cls.base_folder
        files = [folder / f for f, _ in cls.train_list + cls.test_list] + [folder / cls.meta["filename"]]
    assert datafiles.torchvision_files(name, tmp_path) == (folder, tuple(files))


def test_the_test_suite_looks_where_the_library_does():
    assert datafiles.SYSTEM_FOLDERS["fashion_mnist"] == (DEBIAN_FMNIST,)


@needs_real_fmnist
def test_the_real_fashion_mnist_from_debian(tmp_path):
    d = load_dataset("fashion_mnist", root=tmp_path / "empty")
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10
    assert len(d.y_train) == 60_000 and len(d.y_test) == 10_000
    assert torch.bincount(d.y_train).tolist() == [6_000] * 10
    assert torch.bincount(d.y_test).tolist() == [1_000] * 10
    assert all(f.startswith(str(DEBIAN_FMNIST)) for f in d.files) and len(d.files) == 4
    mean, std = _channel_stats(d.x_train)
    assert abs(float(mean[0])) < 1e-5 and abs(float(std[0]) - 1) < 1e-4
    # the published statistics of the raw training pixels (mean 72.94, std 90.02 of 255)
    raw_zero = float(d.raw_zero[0])
    assert abs(raw_zero - (-72.94 / 90.02)) < 1e-3


def test_a_materialized_data_set_reads_back_as_it_was(tmp_path):
    """The workflow's data file (rule dataset): every tensor, the class count, the source files and the
    fingerprint come back; a file whose tensors changed is refused."""
    from toroids.checkpoint import load_state, save_state
    from toroids.data import read_dataset, save_dataset

    data = load_dataset("teacher", {"D": 12, "P": 30, "N": 20, "n_test": 10, "seed": 1})
    data = Dataset(data.name, data.x_train, data.y_train, data.x_test, data.y_test, data.n_classes,
                   torch.tensor([0.5]), ("a/b.gz",))  # fmt: skip
    save_dataset(data, tmp_path / "d.safetensors")
    back = read_dataset(tmp_path / "d.safetensors")
    assert back.fingerprint() == data.fingerprint() and back.files == ("a/b.gz",) and back.n_classes == 2
    assert torch.equal(back.x_test, data.x_test) and torch.equal(back.raw_zero, data.raw_zero)
    tensors, meta = load_state(tmp_path / "d.safetensors")
    tensors["y_train"] = 1 - tensors["y_train"]  # a valid file of other labels, under the old fingerprint
    kept = {k: meta[k] for k in ("name", "n_classes", "files", "fingerprint")}
    save_state(tmp_path / "bad.safetensors", tensors, kept)
    with pytest.raises(DataError, match="fingerprint differs"):
        read_dataset(tmp_path / "bad.safetensors")


def test_a_download_lands_whole_or_not_at_all(tmp_path):
    """datafiles.download_into: the files appear in data.root only once the whole download is there; an
    interrupted one leaves neither a file nor its temporary folder (rule data_files downloads through it)."""
    from toroids import datafiles

    def fetch(tmp, stop_after=None):
        folder, files = datafiles.torchvision_files("mnist", tmp)
        folder.mkdir(parents=True)
        (folder / "train-images-idx3-ubyte.gz").write_bytes(b"archive")  # what torchvision also leaves
        for i, f in enumerate(files):
            if i == stop_after:
                raise ConnectionError("the network went away")
            f.write_bytes(b"idx" + bytes([i]))

    with pytest.raises(ConnectionError):
        datafiles.download_into("mnist", tmp_path, lambda tmp: fetch(tmp, stop_after=2))
    assert datafiles.locate("mnist", tmp_path) is None and list(tmp_path.rglob("*")) == []
    found = datafiles.download_into("mnist", tmp_path, fetch)
    assert found.layout == "torchvision"
    assert [f.read_bytes() for f in found.files] == [b"idx" + bytes([i]) for i in range(4)]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(f.name for f in found.files)
    with pytest.raises(FileNotFoundError, match="left .* missing"):
        datafiles.download_into("cifar10", tmp_path, lambda tmp: None)
