"""The model registry: shapes, seeds, options, and a clear error for an unknown name."""

import pytest
import torch

from toroids.models import MODELS, build_from_spec, build_model


@pytest.mark.parametrize(
    "arch, shape, options",
    [
        ("mlp", (1, 8, 8), {"widths": [16, 8]}),
        ("lenet", (1, 8, 8), {"channels": [4, 6], "kernel_size": 3, "padding": 1, "fc": 12}),
        ("lenet", (1, 28, 28), {"pool": "last"}),
        ("vgg16_bn", (3, 32, 32), {"width": 1 / 16}),
        ("vgg16_bn", (1, 8, 8), {"width": 1 / 16}),
    ],
)
def test_models_build_and_run(arch, shape, options):
    m = build_model(arch, shape, 10, seed=0, **options).eval()
    assert m(torch.zeros(2, *shape)).shape == (2, 10)
    again = build_from_spec(m.spec)
    assert [t.shape for t in again.state_dict().values()] == [t.shape for t in m.state_dict().values()]


def test_seed_fixes_the_initialization():
    a, b = build_model("mlp", (4,), 2, seed=3), build_model("mlp", (4,), 2, seed=3)
    c = build_model("mlp", (4,), 2, seed=4)
    assert torch.equal(a[1].weight, b[1].weight) and not torch.equal(a[1].weight, c[1].weight)


def test_lenet_pools():
    each = build_model("lenet", (1, 28, 28), 10)
    last = build_model("lenet", (1, 28, 28), 10, pool="last")
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in each) == 2
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in last) == 1
    assert each[-3].in_features == 50 * 4 * 4  # 28 -5+1=24 -> 12 -5+1=8 -> 4


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="densenet"):
        build_model("densenet", (1, 8, 8), 10)
    assert {"mlp", "lenet", "vgg16_bn"} <= set(MODELS)


def test_network_slices_are_plain_sequentials():
    m = build_model("mlp", (4,), 3, widths=[5])
    head = m[:2]
    assert isinstance(head, torch.nn.Sequential) and len(head) == 2
    assert head(torch.zeros(1, 4)).shape == (1, 5)


def test_the_study_plan_knows_every_architectures_options():
    """toroids.study.ARCH_OPTIONS (read at config time, without torch) matches the builders' signatures."""
    import inspect

    from toroids.study import ARCH_OPTIONS

    for arch, builder in MODELS.items():
        params = list(inspect.signature(builder).parameters)[2:]  # after input_shape, n_classes
        assert tuple(params) == ARCH_OPTIONS[arch], arch
