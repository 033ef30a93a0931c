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

Measurements on binary networks (paper §5; digest §2.3, §3.2, §4.2), all over the *binary keys*
(:func:`binary_keys`: the trainable binary layers' latent weights, pooled across layers; the committee
machine's fixed output weights are not among them):

* flatness, :func:`local_energy_flips`: δE(ε) = E[E_train(w with a random fraction ε of the weights
  sign-flipped)] − E_train(w);
* Hamming distance (:func:`hamming_distance`), random shortest paths (:func:`random_path`: the differing
  weights flipped one at a time in a random order), and both measured on a pair of solutions, raw and
  aligned (:func:`measure_binary_pair`, :func:`align_binary`);
* the binary single bend's starting point, :func:`equal_distance_midpoint`;
* BinaryNet's latent-weight clipping, :func:`clip_latent_`, for the samplers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toroids import symmetry
from toroids.evaluate import evaluate, evaluate_many
from toroids.flatness import energy_rows
from toroids.models import register

__all__ = [
    "BINARY_PATHS",
    "BinaryConv2d",
    "BinaryLinear",
    "FixedOnes",
    "MATCH_ON",
    "RandomPath",
    "SignActivation",
    "align_binary",
    "binarize",
    "binary_keys",
    "binary_path_summary",
    "clip_latent_",
    "equal_distance_midpoint",
    "flip_weights",
    "hamming_count",
    "hamming_distance",
    "is_binary",
    "local_energy_flips",
    "measure_binary_pair",
    "random_path",
    "sign_ste",
]

State = Mapping[str, torch.Tensor]


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


def _fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()


class BinaryLinear(nn.Linear):
    """A linear layer computing Σ_i sign(w_i) x_i / sqrt(fan-in); no bias by default.

    The positive factor 1/sqrt(fan-in) changes no sign, hence no binary unit's output and no
    classification; it keeps the pre-activations of order 1, so that the straight-through window |Δ| ≤ 1
    of the next sign activation is not empty for a wide layer without BatchNorm (the committee machine)."""

    #: the output does not change when the latent weights are scaled by c > 0 (toroids.symmetry)
    weight_degree = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, sign_ste(self.weight), self.bias) / _fan_in(self.weight) ** 0.5


class BinaryConv2d(nn.Conv2d):
    """A 2-D convolution computing with sign(weight), divided by sqrt(fan-in) as :class:`BinaryLinear`."""

    weight_degree = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, sign_ste(self.weight), self.bias) / _fan_in(self.weight) ** 0.5


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

    #: not a degree of freedom: excluded from :func:`binary_keys`, :func:`clip_latent_` and sign flips
    fixed_weight = True

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


# ---------------------------------------------------------------------------------------------------------
# Which weights are binary


def _is_binary_module(m: nn.Module) -> bool:
    return getattr(m, "weight_degree", None) == 0 and isinstance(getattr(m, "weight", None), torch.Tensor)


def _is_free(m: nn.Module) -> bool:
    """A binary layer whose latent weights are trained (not the committee machine's fixed output)."""
    return _is_binary_module(m) and not getattr(m, "fixed_weight", False)


def is_binary(model: nn.Module) -> bool:
    """True when ``model`` has a binary layer (a module with ``weight_degree == 0``)."""
    return any(_is_binary_module(m) for m in model.modules())


def binary_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the trainable binary layers' latent weights, in module order.

    Excluded: layers marked ``fixed_weight`` (the committee machine's :class:`FixedOnes` output). The test
    is structural, not ``requires_grad``, so a model frozen for evaluation keeps its keys.
    """
    return [f"{name}.weight" if name else "weight" for name, m in model.named_modules() if _is_free(m)]


@torch.no_grad()
def clip_latent_(model: nn.Module, bound: float = 1.0) -> None:
    """BinaryNet's clipping, in place: w ← clamp(w, −bound, bound) for the latent weights of every trainable
    binary layer (:func:`binary_keys`). Other parameters (BatchNorm, a continuous layer) and the committee
    machine's fixed output weights are left as they are. Call it after every optimizer step."""
    if not bound > 0:
        raise ValueError(f"bound must be > 0, got {bound}")
    for m in model.modules():
        if _is_free(m):
            m.weight.clamp_(-bound, bound)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.state_dict().items()}


def _signs_flat(state: State, keys: Sequence[str]) -> torch.Tensor:
    return torch.cat([binarize(state[k]).reshape(-1) for k in keys]) if keys else torch.zeros(0)


def _unflatten(flat: torch.Tensor, state: State, keys: Sequence[str]) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for k in keys:
        n = state[k].numel()
        out[k] = flat[i : i + n].reshape(state[k].shape)
        i += n
    return out


def hamming_count(a: State, b: State, keys: Sequence[str]) -> int:
    """Number of binarized weights (over ``keys``) whose signs differ."""
    return sum(int((binarize(a[k]) != binarize(b[k])).sum()) for k in keys)


# ---------------------------------------------------------------------------------------------------------
# Flatness: local energy by sign flips (digest §3.2)


def flip_weights(state: State, keys: Sequence[str], positions: torch.Tensor) -> dict[str, torch.Tensor]:
    """``state`` with the latent weights at ``positions`` (indices into the concatenation of the flattened
    ``keys`` tensors, distinct) sign-flipped: w ← −w, which keeps |w| and flips sign(w); an exact zero
    (sign(0) = +1) becomes −tiny (the dtype's smallest normal number), so its sign flips too and its
    magnitude stays ~0. Other entries are shared with ``state``."""
    flat = torch.cat([state[k].reshape(-1) for k in keys]).clone()
    pos = positions.to(device=flat.device, dtype=torch.long)
    w = flat[pos]
    tiny = torch.finfo(w.dtype).tiny
    flat[pos] = torch.where(w == 0, torch.full_like(w, -tiny), -w)
    out = dict(state)
    out.update(_unflatten(flat, state, keys))
    return out


@torch.no_grad()
def local_energy_flips(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    fractions: Sequence[float],
    n_samples: int = 10,
    seed: int = 0,
    chunk_size: int = 8192,
) -> list[dict[str, float]]:
    """Local energy of a binary network under sign flips (digest §3.2):

        δE(ε) = E[ E_train(w with round(ε·n) of its n binary weights sign-flipped) ] − E_train(w),

    round half up, the flipped weights drawn uniformly without replacement among all :func:`binary_keys`
    weights pooled across layers (see :func:`flip_weights` for a flip). Draw s takes one permutation π_s of
    the n weights from ``torch.Generator().manual_seed(seed)`` and flips its first round(ε·n) entries at
    every ε (common random numbers: nested flip sets, δE(0) = 0 exactly without evaluation). The model is
    evaluated in eval mode (BatchNorm running statistics untouched) on the whole (x, y).

    Rows, one per ε, with the columns of :func:`toroids.flatness.local_energy`: ``sigma`` (= ε),
    ``train_error`` (of w), ``delta_mean``, ``delta_std`` (over the draws, unbiased; 0 for one draw),
    ``n_samples``.
    """
    keys = binary_keys(model)
    if not keys:
        raise ValueError(f"{type(model).__name__} has no trainable binary layer")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    for eps in fractions:
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"flip fractions must lie in [0, 1], got {eps}")
    model = model.eval()
    base_state = _state(model)
    base = evaluate(model, x, y, chunk_size).error
    n = sum(base_state[k].numel() for k in keys)
    counts = [int(eps * n + 0.5) for eps in fractions]  # round(ε·n), half up
    gen = torch.Generator().manual_seed(seed)
    deltas = torch.zeros(len(fractions), n_samples, dtype=torch.float64)
    for s in range(n_samples):
        perm = torch.randperm(n, generator=gen)
        for i, count in enumerate(counts):
            if count == 0:
                continue  # nothing flipped: δE = 0 by definition
            state = flip_weights(base_state, keys, perm[:count])
            deltas[i, s] = evaluate(model, x, y, chunk_size, state).error - base
    return energy_rows(fractions, base, deltas)


# ---------------------------------------------------------------------------------------------------------
# Random shortest paths (digest §2.3) and the binary single bend (§4.2)


class RandomPath(NamedTuple):
    """A random shortest path: its states, their positions x = flips done / d, and d (the Hamming count)."""

    states: list[dict[str, torch.Tensor]]
    xs: list[float]
    hamming: int


def _lerp(ta: torch.Tensor, tb: torch.Tensor, x: float) -> torch.Tensor:
    if not ta.is_floating_point():  # BatchNorm's num_batches_tracked: not a coordinate of the network
        return ta.clone()
    return (1 - x) * ta + x * tb


def _flip_order(
    a_state: State, b_state: State, keys: Sequence[str], seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Signs of a and b (flattened over ``keys``), the rank of every weight in a random flip order
    (differing weights 0..d−1, in the order of ``randperm(d)`` from ``Generator(seed)``; others d), d."""
    for k in keys:
        if a_state[k].shape != b_state[k].shape:
            raise ValueError(f"{k}: shapes {tuple(a_state[k].shape)} and {tuple(b_state[k].shape)}")
    sa, sb = _signs_flat(a_state, keys), _signs_flat(b_state, keys)
    diff = (sa != sb).nonzero().reshape(-1)
    d = int(diff.numel())
    order = diff[torch.randperm(d, generator=torch.Generator().manual_seed(seed)).to(diff.device)]
    rank = torch.full_like(sa, d, dtype=torch.long)
    rank[order] = torch.arange(d, device=rank.device)
    return sa, sb, rank, d


def _flip_counts(d: int, n_points: int) -> list[int]:
    """round(i·d / (n_points − 1)) for i = 0..n_points−1 (half up, in integers)."""
    m = n_points - 1
    return [(2 * i * d + m) // (2 * m) for i in range(n_points)]


def _path_points(
    a_state: State, b_state: State, keys: Sequence[str], n_points: int, seed: int
) -> tuple[Iterator[dict[str, torch.Tensor]], list[float], int]:
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    if set(a_state) != set(b_state):
        raise ValueError("the two states have different keys")
    sa, sb, rank, d = _flip_order(a_state, b_state, keys, seed)
    counts = _flip_counts(d, n_points)
    xs = [c / d if d else i / (n_points - 1) for i, c in enumerate(counts)]
    key_set = set(keys)

    def points() -> Iterator[dict[str, torch.Tensor]]:
        for count, x in zip(counts, xs):
            signs = _unflatten(torch.where(rank < count, sb, sa), a_state, keys)
            yield {k: signs[k] if k in key_set else _lerp(a_state[k], b_state[k], x) for k in a_state}

    return points(), xs, d


def random_path(a_state: State, b_state: State, keys: Sequence[str], n_points: int, seed: int) -> RandomPath:
    """A random shortest path in Hamming space from a to b (digest §2.3).

    The d binary weights (over ``keys``) whose signs differ between a and b are flipped one at a time, in
    the order of ``torch.randperm(d, generator=torch.Generator().manual_seed(seed))`` over their positions
    in the concatenation of the flattened ``keys``. Point i (of ``n_points`` ≥ 2) has f_i = round(i·d /
    (n_points − 1)) flips done, and x_i = f_i / d (x_i = i / (n_points − 1) when d = 0). Its ``keys``
    tensors are ±1 (sign(a) with the first f_i weights of the order set to sign(b), in the latent dtype);
    every other tensor (BatchNorm parameters and running statistics, a continuous layer) is
    (1 − x_i)·a + x_i·b, integer buffers are a's. With ``n_points = d + 1`` consecutive points differ by
    exactly one flip. Returns ``RandomPath(states, xs, hamming=d)``.
    """
    points, xs, d = _path_points(a_state, b_state, keys, n_points, seed)
    return RandomPath(list(points), xs, d)


def equal_distance_midpoint(
    a_state: State, b_state: State, keys: Sequence[str], seed: int, *, binarized: bool = False
) -> dict[str, torch.Tensor]:
    """The binary single bend's starting point (digest §4.2): k = ⌊d/2⌋ of the d differing weights of a,
    chosen at random, flipped towards b, so it lies at Hamming count k from a and d − k from b.

    The flipped weights are the first k of :func:`random_path`'s order for the same ``seed`` (the midpoint
    is on that path). Latent values: b's where flipped, a's elsewhere (so SGD restarts from the solutions'
    latent magnitudes); ``binarized=True`` gives ±1 instead, as on the path. Other tensors (BatchNorm) are
    interpolated linearly at x = k/d (0.5 when d = 0); integer buffers are a's.
    """
    if set(a_state) != set(b_state):
        raise ValueError("the two states have different keys")
    sa, sb, rank, d = _flip_order(a_state, b_state, keys, seed)
    k = d // 2
    x = k / d if d else 0.5
    key_set = set(keys)
    take_b = rank < k
    if binarized:
        flat = torch.where(take_b, sb, sa)
    else:
        la = torch.cat([a_state[n].reshape(-1) for n in keys])
        lb = torch.cat([b_state[n].reshape(-1) for n in keys])
        flat = torch.where(take_b, lb, la)
    new = _unflatten(flat.clone(), a_state, keys)
    return {k: new[k] if k in key_set else _lerp(a_state[k], b_state[k], x) for k in a_state}


# ---------------------------------------------------------------------------------------------------------
# Alignment with sign flips where they are symmetries, and the pair measurements

MATCH_ON = ("latent", "sign")
BINARY_PATHS = ("random", "random_aligned")


def _flip_structure(model: nn.Module) -> symmetry.Structure:
    """``structure(model)`` with ``odd`` cleared for the unit groups whose consumer layer has fixed weights
    (the committee machine): a flip would also negate the fixed +1 output weights, leaving the model family,
    so it is not a symmetry there."""
    s = symmetry.structure(model)
    fixed = {f"{n}.weight" for n, m in model.named_modules() if getattr(m, "fixed_weight", False)}
    hidden = tuple(
        dataclasses.replace(g, odd=g.odd and not any(c.key in fixed for c in g.consumers)) for g in s.hidden
    )
    return dataclasses.replace(s, hidden=hidden)


def _binary_perms(
    reference: nn.Module, model: nn.Module, match_on: str
) -> tuple[symmetry.Structure, list[symmetry.Permutation]]:
    if match_on not in MATCH_ON:
        raise ValueError(f"match_on must be one of {MATCH_ON}, got {match_on!r}")
    s = _flip_structure(model)
    if _flip_structure(reference) != s:
        raise ValueError("reference and model have different unit structures")
    ref, other = _state(reference), _state(model)
    if match_on == "sign":
        for k in binary_keys(model):
            ref[k], other[k] = binarize(ref[k]), binarize(other[k])
    ref, other = symmetry.normalize_state(ref, s), symmetry.normalize_state(other, s)
    return s, symmetry.match_state(ref, other, s, signs=True)


def binary_perms(
    reference: nn.Module, model: nn.Module, *, match_on: str = "latent"
) -> list[symmetry.Permutation]:
    """The permutations (and sign flips) of :func:`align_binary`, to apply with ``symmetry.permute_state``."""
    return _binary_perms(reference, model, match_on)[1]


def align_binary(reference: nn.Module, model: nn.Module, *, match_on: str = "latent") -> nn.Module:
    """``model`` permuted, and sign-flipped where a flip is a symmetry, to match ``reference``.

    Algorithm 2 with ``signs=True`` on the normalized networks: per hidden layer the assignment maximizing
    Σ|cos| where the unit group's path is odd (sign activations, per-unit BatchNorm) and its consumer is
    trainable, then a flip of every unit whose matched cosine is negative; plain cosines (no flips) in the
    other groups (filters before max-pooling, the committee machine's hidden units, whose output weights are
    fixed to +1). ``match_on``: cosines of the ``latent`` weights (default), or of their ``sign``\\ s (then
    the per-layer assignment minimizes the Hamming distance). Applied to ``model`` as given; function
    unchanged."""
    s, perms = _binary_perms(reference, model, match_on)
    new = copy.deepcopy(model)
    new.load_state_dict(symmetry.permute_state(_state(model), s, perms))
    return new


def measure_binary_pair(
    left: nn.Module,
    right: nn.Module,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    n_points: int,
    n_orders: int,
    seed: int,
    chunk_size: int = 8192,
    bn_policy: str = "interpolate",
    *,
    match_on: str = "latent",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return ``(path_rows, distance_rows)`` for one pair of binary networks; ``right`` is aligned to ``left``
    with :func:`align_binary`.

    Paths (:data:`BINARY_PATHS`): ``random`` (left → right) and ``random_aligned`` (left → aligned right),
    each a :func:`random_path` with ``n_points`` points over :func:`binary_keys`, for every order
    o = 0..n_orders−1, drawn with seed ``SeedSequence([seed, o])`` (the same for both paths). Path rows, one
    per (path, order, point): ``path, order, x, flips`` (done at that point), ``hamming`` (d of the path),
    ``n_orders, bn_policy, {split}_error, {split}_loss`` for each split. The paper's barrier is the maximum
    train error along a path, averaged over orders (see :func:`binary_path_summary`).

    Distance rows, ``between = "endpoints"``: ``representation`` ∈ {``hamming``, ``hamming_aligned``},
    ``distance`` (fraction of the n binary weights), ``count`` (the Hamming count d), ``n_weights`` (n).
    """
    if n_orders < 1:
        raise ValueError(f"n_orders must be >= 1, got {n_orders}")
    keys = binary_keys(left)
    if not keys:
        raise ValueError(f"{type(left).__name__} has no trainable binary layer")
    a, b, b_al = _state(left), _state(right), _state(align_binary(left, right, match_on=match_on))
    n = sum(a[k].numel() for k in keys)
    ends = {"random": b, "random_aligned": b_al}
    distances = []
    for path, rep in (("random", "hamming"), ("random_aligned", "hamming_aligned")):
        count = hamming_count(a, ends[path], keys)
        distances.append(
            {
                "between": "endpoints",
                "representation": rep,
                "distance": count / n,
                "count": count,
                "n_weights": n,
            }
        )
    bn_data = splits["train"][0] if "train" in splits else None
    rows: list[dict[str, Any]] = []
    for path in BINARY_PATHS:
        for o in range(n_orders):
            order_seed = int(np.random.SeedSequence([seed, o]).generate_state(1)[0])
            points, xs, d = _path_points(a, ends[path], keys, n_points, order_seed)
            scores = evaluate_many(
                left, points, splits, chunk_size=chunk_size, bn_policy=bn_policy, bn_data=bn_data
            )
            for x, flips, point in zip(xs, _flip_counts(d, n_points), scores):
                row: dict[str, Any] = {
                    "path": path,
                    "order": o,
                    "x": float(x),
                    "flips": flips,
                    "hamming": d,
                    "n_orders": n_orders,
                    "bn_policy": bn_policy,
                }
                for split, sc in point.items():
                    row[f"{split}_error"], row[f"{split}_loss"] = sc.error, sc.loss
                rows.append(row)
    return rows, distances


def binary_path_summary(
    rows: Sequence[Mapping[str, Any]], split: str = "train"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Aggregate :func:`measure_binary_pair`'s path rows over the orders.

    Curve rows, one per (path, x): ``path, x, {split}_error`` (mean over orders), ``{split}_error_std``
    (unbiased; 0 for one order), ``n_orders``. Barrier rows, one per path: ``path``, ``barrier`` (the
    maximum {split} error along each order's path, averaged over orders: the paper's barrier of random
    shortest paths), ``barrier_std``, ``n_orders``.
    """
    col = f"{split}_error"
    # Keyed by order too: when d < n_points − 1 a path repeats a point (same x, same state, same error).
    by_point: dict[tuple[str, float], dict[int, float]] = {}
    by_order: dict[tuple[str, int], float] = {}
    for r in rows:
        by_point.setdefault((r["path"], float(r["x"])), {})[int(r["order"])] = float(r[col])
        key = (r["path"], int(r["order"]))
        by_order[key] = max(by_order.get(key, -np.inf), float(r[col]))

    def _mean_std(v: Sequence[float]) -> tuple[float, float]:
        arr = np.asarray(v, dtype=np.float64)
        return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0

    curves = []
    for (path, x), per_order in by_point.items():
        v = list(per_order.values())
        m, sd = _mean_std(v)
        curves.append({"path": path, "x": x, col: m, f"{col}_std": sd, "n_orders": len(v)})
    barriers = []
    for path in dict.fromkeys(p for p, _ in by_order):
        v = [b for (p, _), b in by_order.items() if p == path]
        m, sd = _mean_std(v)
        barriers.append({"path": path, "barrier": m, "barrier_std": sd, "n_orders": len(v)})
    return curves, barriers


def random_bend_path(
    a_state: State, midpoint: State, b_state: State, keys: Sequence[str], n_points: int, seed: int
) -> tuple[list[dict[str, torch.Tensor]], list[float], list[int]]:
    """A random shortest path a → midpoint → b (the binary single bend, digest §4.2): two
    :func:`random_path` segments of ``n_points`` each, the bend listed once, at the position
    d₁/(d₁ + d₂) of the Hamming counts. Returns (states, positions in [0, 1], segment 1 or 2)."""
    first = random_path(a_state, midpoint, keys, n_points, seed)
    second = random_path(midpoint, b_state, keys, n_points, seed + 1)
    total = first.hamming + second.hamming
    w1 = first.hamming / total if total else 0.5
    states = list(first.states) + list(second.states[1:])
    positions = [w1 * x for x in first.xs] + [w1 + (1 - w1) * x for x in second.xs[1:]]
    return states, positions, [1] * len(first.xs) + [2] * (len(second.xs) - 1)
