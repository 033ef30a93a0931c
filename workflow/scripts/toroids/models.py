"""Network architectures of the paper, and a registry so that the config names them.

Every model is an ``nn.Sequential`` of standard layers (Linear, Conv2d, BatchNorm, ReLU, MaxPool2d,
Flatten; the ResNet's residual blocks), so that :mod:`toroids.units` can derive its unit structure from the
module graph. Each model carries ``input_shape`` (C, H, W) and ``spec`` (the registry call that rebuilds
it), which :mod:`toroids.checkpoint` stores next to the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["MODELS", "BasicBlock", "Network", "build_model", "register"]


class Network(nn.Sequential):
    """An ``nn.Sequential`` that remembers its input shape and how it was built."""

    input_shape: tuple[int, ...]
    spec: dict[str, Any]

    def __init__(self, *layers: nn.Module, input_shape: Sequence[int], spec: dict[str, Any]) -> None:
        super().__init__(*layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.spec = spec

    def __getitem__(self, idx: int | slice) -> nn.Module:
        # nn.Sequential rebuilds its own class for a slice, which needs input_shape and spec: a slice of a
        # Network is a plain Sequential (its input shape is not this network's).
        if isinstance(idx, slice):
            return nn.Sequential(*list(self._modules.values())[idx])
        return super().__getitem__(idx)


Builder = Callable[..., list[nn.Module]]
MODELS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Register a builder ``f(input_shape, n_classes, **options) -> list of layers`` under ``name``."""

    def wrap(fn: Builder) -> Builder:
        MODELS[name] = fn
        return fn

    return wrap


def build_model(
    arch: str, input_shape: Sequence[int], n_classes: int, seed: int | None = None, **options: Any
) -> Network:
    """Build ``arch`` from the registry; ``seed`` makes the initialization reproducible."""
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(MODELS)}")
    spec = {"arch": arch, "input_shape": list(input_shape), "n_classes": n_classes, "options": dict(options)}
    if seed is None:
        layers = MODELS[arch](tuple(input_shape), n_classes, **options)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers = MODELS[arch](tuple(input_shape), n_classes, **options)
    return Network(*layers, input_shape=input_shape, spec=spec)


def build_from_spec(spec: dict[str, Any]) -> Network:
    """Rebuild an (uninitialized-weights) network from its stored ``spec``."""
    return build_model(spec["arch"], spec["input_shape"], spec["n_classes"], **spec.get("options", {}))


def _flat_size(layers: list[nn.Module], input_shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        out = nn.Sequential(*layers).eval()(torch.zeros(1, *input_shape))
    return int(out[0].numel())


@register("mlp")
def mlp(input_shape: tuple[int, ...], n_classes: int, widths: Sequence[int] = (512, 512), bias: bool = True):
    """Fully connected ReLU network: flatten → [Linear → ReLU] × len(widths) → Linear (paper §5.2 (a))."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = 1
    for s in input_shape:
        fan_in *= int(s)
    for w in widths:
        layers += [nn.Linear(fan_in, int(w), bias=bias), nn.ReLU()]
        fan_in = int(w)
    layers.append(nn.Linear(fan_in, n_classes, bias=bias))
    return layers


@register("lenet")
def lenet(
    input_shape: tuple[int, ...],
    n_classes: int,
    channels: Sequence[int] = (20, 50),
    kernel_size: int = 5,
    padding: int = 0,
    pool: str = "each",
    fc: int = 500,
    bias: bool = True,
):
    """LeNet-like net (paper §5.2 (b)): conv(20, 5×5) → conv(50, 5×5) → FC 500 → linear output.

    ``pool`` places the 2×2 max-pools: ``each`` (after every conv, classic LeNet, the default reading) or
    ``last`` (one pool after the last conv, the literal reading of the paper's sentence).
    """
    if pool not in ("each", "last"):
        raise ValueError(f"lenet pool must be 'each' or 'last', got {pool!r}")
    layers: list[nn.Module] = []
    c_in = int(input_shape[0])
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(c_in, int(c), kernel_size, padding=padding, bias=bias), nn.ReLU()]
        if pool == "each" or i == len(channels) - 1:
            layers.append(nn.MaxPool2d(2))
        c_in = int(c)
    layers.append(nn.Flatten())
    flat = _flat_size(layers, input_shape)
    layers += [nn.Linear(flat, fc, bias=bias), nn.ReLU(), nn.Linear(fc, n_classes, bias=bias)]
    return layers


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@register("vgg16_bn")
def vgg16_bn(input_shape: tuple[int, ...], n_classes: int, width: float = 1.0):
    """VGG16 with BatchNorm for 32×32 inputs (Zhang et al. 2015's CIFAR variant): 13 conv3×3-BN-ReLU
    layers, 5 max-pools, one linear classifier. ``width`` multiplies every channel count; a pool that would
    shrink the feature map below 1×1 (small inputs) is skipped."""
    layers: list[nn.Module] = []
    c_in, size = int(input_shape[0]), int(input_shape[-1])
    for v in VGG16:
        if v == "M":
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            continue
        c = max(1, round(int(v) * width))
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
        c_in = c
    layers.append(nn.Flatten())
    layers.append(nn.Linear(_flat_size(layers, input_shape), n_classes))
    return layers


class BasicBlock(nn.Module):
    """He et al.'s basic residual block, relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the shortcut is
    the identity, or a 1×1 conv with BN where the stride or the width changes (option B)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, batchnorm: bool = True) -> None:
        super().__init__()
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d if batchnorm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not batchnorm)
        self.bn1 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not batchnorm)
        self.bn2 = norm(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=not batchnorm), norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@register("resnet")
def resnet(
    input_shape: tuple[int, ...],
    n_classes: int,
    depth: int = 20,
    planes: int = 16,
    batchnorm: bool = True,
):
    """CIFAR-style ResNet (He et al. 2016, §4.2): a 3×3 stem, three stages of (depth − 2)/6 basic blocks of
    ``planes``, 2·``planes``, 4·``planes`` channels (stride 2 into stages 2 and 3), global average pooling,
    one linear classifier. ``depth=20, planes=16`` is ResNet-20. Not in the paper: its units are tied across
    blocks by the residual additions (one permutation group per stage)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet depth must be 6n + 2 with n ≥ 1 (8, 14, 20, …), got {depth}")
    n = (depth - 2) // 6
    c_in = int(input_shape[0])
    layers: list[nn.Module] = [nn.Conv2d(c_in, planes, 3, 1, 1, bias=not batchnorm)]
    layers += [nn.BatchNorm2d(planes) if batchnorm else nn.Identity(), nn.ReLU()]
    c = planes
    for stage in range(3):
        for b in range(n):
            out = planes * 2**stage
            layers.append(BasicBlock(c, out, 2 if stage > 0 and b == 0 else 1, batchnorm))
            c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_classes)]
    return layers


# The binary architectures register themselves on import (they need this module's registry).
from toroids import binary  # noqa: E402, F401
