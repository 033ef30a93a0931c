"""Binary networks (BinaryNet, Hubara et al. 2016; the paper's §5): ±1 weights and sign activations.

Each binary layer keeps *latent* continuous weights w and computes with sign(w) (sign(0) = +1). Gradients
pass through the binarization with the straight-through estimator clipped to the range [−1, 1]:

    forward  b = sign(w),      backward  ∂L/∂w = ∂L/∂b · 1{|w| ≤ 1},

and the same for the sign activation of the hidden units. The output layer is binary too (the paper's
difference from the original BinaryNet). A network with one output unit classifies by the sign of its
output (binary tasks); with several, by the argmax. Since sign(c·w) = sign(w) for c > 0, the function depends
on the latent weights only through their signs: a per-unit positive rescaling of the latent weights, and a
flip of a hidden unit's incoming and outgoing signs where the path to the next layer is odd, leave it
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from toroids.models import register

__all__ = ["BinaryConv2d", "BinaryLinear", "SignActivation", "binarize", "hamming_distance", "sign_ste"]


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """sign(x) ∈ {−1, +1} (sign(0) = +1) with the clipped straight-through gradient 1{|x| ≤ 1}."""
    return _SignSTE.apply(x)


def binarize(w: torch.Tensor) -> torch.Tensor:
    """The ±1 weights a binary layer computes with (no gradient)."""
    return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)


class SignActivation(nn.Module):
    """The hidden units' activation: sign with the straight-through gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x)


class BinaryLinear(nn.Linear):
    """A linear layer computing with sign(weight); no bias by default."""

    #: the output does not change when the latent weights are scaled by c > 0 (toroids.symmetry)
    weight_degree = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, sign_ste(self.weight), self.bias)


class BinaryConv2d(nn.Conv2d):
    """A 2-D convolution computing with sign(weight); no bias by default."""

    weight_degree = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, sign_ste(self.weight), self.bias)


def hamming_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys: Sequence[str]) -> float:
    """Fraction of binarized weights (over ``keys``) whose signs differ."""
    diff = sum(int((binarize(a[k]) != binarize(b[k])).sum()) for k in keys)
    return diff / sum(a[k].numel() for k in keys)


def _n_out(n_classes: int) -> int:
    return 1 if n_classes == 2 else n_classes  # a binary task: one output unit, classified by its sign


def _flat(input_shape: tuple[int, ...]) -> int:
    n = 1
    for s in input_shape:
        n *= int(s)
    return n


@register("binary_perceptron")
def binary_perceptron(input_shape: tuple[int, ...], n_classes: int) -> list[nn.Module]:
    """sign(Σ_i sign(w_i) x_i): N binary weights, no hidden unit (paper §5.3 (i))."""
    return [nn.Flatten(), BinaryLinear(_flat(input_shape), _n_out(n_classes), bias=False)]


class FixedOnes(BinaryLinear):
    """The committee machine's output layer: weights fixed to +1 (not trained)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        nn.init.ones_(self.weight)
        self.weight.requires_grad_(False)


@register("committee")
def committee(input_shape: tuple[int, ...], n_classes: int, hidden: int = 101) -> list[nn.Module]:
    """Committee machine: H binary perceptrons, their signs summed by output weights fixed to 1
    (paper §5.3 (i)). H odd avoids ties. Its hidden units have no sign-flip symmetry (the output weights
    are fixed), only permutations."""
    return [
        nn.Flatten(),
        BinaryLinear(_flat(input_shape), hidden, bias=False),
        SignActivation(),
        FixedOnes(hidden, _n_out(n_classes)),
    ]


@register("binary_mlp")
def binary_mlp(
    input_shape: tuple[int, ...], n_classes: int, widths: Sequence[int] = (101, 101), batchnorm: bool = True
) -> list[nn.Module]:
    """Binary MLP: [BinaryLinear → BatchNorm → sign] × len(widths) → BinaryLinear (paper §5.3 (ii), (iii)).
    BatchNorm (as in BinaryNet; the paper does not say) is odd and per unit, so sign flips stay exact."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = _flat(input_shape)
    for w in widths:
        layers.append(BinaryLinear(fan_in, int(w), bias=False))
        if batchnorm:
            layers.append(nn.BatchNorm1d(int(w)))
        layers.append(SignActivation())
        fan_in = int(w)
    layers.append(BinaryLinear(fan_in, _n_out(n_classes), bias=False))
    return layers


@register("binary_convnet")
def binary_convnet(
    input_shape: tuple[int, ...],
    n_classes: int,
    channels: Sequence[int] = (20, 50),
    kernel_size: int = 5,
    fc: Sequence[int] = (2001, 2001),
    batchnorm: bool = True,
) -> list[nn.Module]:
    """Binary ConvNet (paper §5.3 (iv)): [BinaryConv → 2×2 max-pool → BatchNorm → sign] per conv, then
    [BinaryLinear → BatchNorm → sign] per FC layer, then a binary output layer. Max-pooling is not odd, so
    the conv filters have no sign-flip symmetry; the FC units do."""
    layers: list[nn.Module] = []
    c_in = int(input_shape[0])
    for c in channels:
        layers += [BinaryConv2d(c_in, int(c), kernel_size, bias=False), nn.MaxPool2d(2)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(int(c)))
        layers.append(SignActivation())
        c_in = int(c)
    layers.append(nn.Flatten())
    with torch.no_grad():
        fan_in = int(nn.Sequential(*layers).eval()(torch.zeros(1, *input_shape)).shape[1])
    for w in fc:
        layers.append(BinaryLinear(fan_in, int(w), bias=False))
        if batchnorm:
            layers.append(nn.BatchNorm1d(int(w)))
        layers.append(SignActivation())
        fan_in = int(w)
    layers.append(BinaryLinear(fan_in, _n_out(n_classes), bias=False))
    return layers
