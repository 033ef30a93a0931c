import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

#: Debian's dataset-fashion-mnist: the real data the real-data tests read. CI installs it (.ci/run) and sets
#: TOROIDS_REQUIRE_REAL_DATA, so that there a missing package fails those tests instead of skipping them.
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_real_fmnist = pytest.mark.skipif(
    not DEBIAN_FMNIST.is_dir() and not os.environ.get("TOROIDS_REQUIRE_REAL_DATA"),
    reason=f"Debian's dataset-fashion-mnist is not installed ({DEBIAN_FMNIST}): "
    "apt-get install dataset-fashion-mnist",
)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests' networks are tiny: torch's intra-op threads only add contention (ops 10-50× slower on a
    loaded 2-core machine). Subprocesses (Snakemake jobs) set their own."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def default_config() -> dict:
    """The default study's config, as written (before validation)."""
    return copy.deepcopy(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))


def make_blobs():
    """A small separable 4-class problem as a toroids Dataset (no files needed)."""
    import torch

    from toroids.data import Dataset

    g = torch.Generator().manual_seed(0)
    centers = 3 * torch.randn(4, 10, generator=g)
    y = torch.arange(4).repeat_interleave(60)
    x = centers[y] + 0.5 * torch.randn(len(y), 10, generator=g)
    perm = torch.randperm(len(y), generator=g)
    x, y = x[perm], y[perm]
    return Dataset("blobs", x[:180], y[:180], x[180:], y[180:], 4)


@pytest.fixture
def blobs():
    return make_blobs()
