"""Symmetry removal (paper §3): normalization onto the toroid (Algorithm 1) and permutation alignment
(Algorithm 2), for any network whose unit structure :func:`structure` can derive from its module graph.

Unit structure
    A *producer* is an ``nn.Linear`` or ``nn.Conv1d/2d/3d`` (``groups=1``). Every producer but the last is a
    hidden layer whose units are its output features / filters (dim 0 of its weight); the last one is the
    output layer. :func:`structure` traces the model with ``torch.fx``, propagates the shape of a zero input
    and follows each hidden producer's output to the next producer. On the way only ops that act channel-wise
    and commute with a per-unit factor are allowed (:data:`PASS_THROUGH_MODULES`, ``_FUNCTIONS``,
    ``_METHODS``; each with its :class:`Law`): ReLU/LeakyReLU, max/avg pooling, dropout, identity, sign-type
    activations (extend :data:`PASS_THROUGH_MODULES` with a class name), a flatten/view ``(N, C, *S) -> (N,
    C·prod S)`` (unit c then owns the block of ``prod S`` consecutive input columns of the next Linear), and
    ``BatchNorm1d/2d/3d`` with ``affine=True`` and running stats (attached to the unit group). Anything else
    on that path (a residual ``add``, ``cat``, Tanh, a fan-out to two layers, a Linear on a 3-D tensor) raises
    :class:`UnsupportedGraphError` naming the fx node.

Methods paragraph (README)
    *Normalization* (Algorithm 1) runs from the first hidden layer upward. For unit k of hidden layer l,
    n_k is the L2 norm of its incoming weights only (the weight row, or the flattened ``in×k×k`` filter),
    taken after layer l−1's compensation was applied to them. The unit's weight row and bias are multiplied by
    c_k = 1/n_k. The input columns of layer l+1 that read unit k are multiplied by n_k; after a conv→flatten
    these are the whole block of H·W columns of channel k (after a sign activation, whose output does not
    change, they are left as they are). Batch norm is evaluated in eval mode (running
    statistics), and a BN layer on the unit's path has its per-channel tensors rescaled so that the BN output
    is also multiplied by c_k: running_mean ×c_k, β ×c_k, γ ×c_k, and running_var ← c_k²(running_var + ε) − ε,
    which scales var + ε by exactly c_k² and so keeps the eval-mode function exact, ε included. If that
    running_var would become negative (a near-constant channel with n_k > 1), it is set to 0 and γ absorbs the
    remainder: γ ← γ·sqrt(ε/(running_var + ε)). The last layer is rescaled globally: its weight and
    bias are multiplied by sqrt(H_L)/‖W_L‖_F, where H_L is the number of outputs. This changes the logits by a
    positive factor and leaves the argmax unchanged. A unit whose weights are all zero is left as it is.
    *Alignment* (Algorithm 2) works on normalized copies of both networks. Layer by layer, from the first
    hidden layer, the cosine matrix between the reference's weight rows and the other network's weight rows
    is computed; the other network's rows already carry the permutation of the previous layer on their
    inputs. ``scipy.optimize.linear_sum_assignment`` maximizes the summed cosine. The resulting permutation
    moves every per-unit tensor: the weight row, bias, BN γ, β, running_mean and running_var. It also moves
    the next layer's input columns, whole blocks after a flatten. The output layer is never permuted, and
    biases and BN parameters do not enter the matching. The permutation is then applied to the network as it
    was given, so a raw network gives the "Linear-Aligned" endpoint and a normalized one the
    "Normalized-Aligned" endpoint. For binary networks (``signs=True``) the matching maximizes |cos|. A unit
    whose matched cosine is negative is then sign-flipped: its weight row, bias, BN β and running_mean, and
    the next layer's input columns are negated, while BN γ and running_var stay unchanged. This keeps the
    BN output exactly negated.

Only permutations, positive per-unit rescalings and the global output scale are symmetries of a ReLU net.
Sign flips are a symmetry only when every op on the path is odd, for example sign; the group's ``odd`` flag
says whether that holds. The ``match``/``permute`` machinery applies flips either way.
"""

from __future__ import annotations

import copy
import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "PASS_THROUGH_MODULES",
    "BatchNormRef",
    "Coupled",
    "Law",
    "Permutation",
    "Structure",
    "UnitGroup",
    "UnsupportedGraphError",
    "align",
    "match",
    "match_state",
    "normalize",
    "normalize_state",
    "permute",
    "permute_state",
    "structure",
    "unit_norms",
]

State = Mapping[str, Tensor]


class UnsupportedGraphError(ValueError):
    """The module graph has an op whose effect on hidden units is not known; the message names the fx node."""


class Law(NamedTuple):
    """How an op ``f`` transforms a per-unit factor: ``f(c·x) = c**degree · f(x)`` for c > 0, and
    ``f(−x) = −f(x)`` if ``odd``. ReLU is (1, False), sign is (0, True), average pooling is (1, True)."""

    degree: int
    odd: bool


_RELU, _LINEAR, _MAXPOOL, _SIGN = Law(1, False), Law(1, True), Law(1, False), Law(0, True)

#: Pass-through modules by class name; extend it (e.g. with a binary net's activation) to allow more.
PASS_THROUGH_MODULES: dict[str, Law] = {
    "ReLU": _RELU,
    "LeakyReLU": _RELU,
    "Identity": _LINEAR,
    "Dropout": _LINEAR,
    "Dropout1d": _LINEAR,
    "Dropout2d": _LINEAR,
    "Dropout3d": _LINEAR,
    "AvgPool1d": _LINEAR,
    "AvgPool2d": _LINEAR,
    "AvgPool3d": _LINEAR,
    "AdaptiveAvgPool1d": _LINEAR,
    "AdaptiveAvgPool2d": _LINEAR,
    "AdaptiveAvgPool3d": _LINEAR,
    "MaxPool1d": _MAXPOOL,
    "MaxPool2d": _MAXPOOL,
    "MaxPool3d": _MAXPOOL,
    "AdaptiveMaxPool1d": _MAXPOOL,
    "AdaptiveMaxPool2d": _MAXPOOL,
    "AdaptiveMaxPool3d": _MAXPOOL,
    "Sign": _SIGN,
    "SignActivation": _SIGN,
}
_FUNCTIONS: dict[Callable[..., Any], Law] = {
    F.relu: _RELU,
    F.relu_: _RELU,
    torch.relu: _RELU,
    torch.relu_: _RELU,
    F.leaky_relu: _RELU,
    F.dropout: _LINEAR,
    F.avg_pool1d: _LINEAR,
    F.avg_pool2d: _LINEAR,
    F.avg_pool3d: _LINEAR,
    F.adaptive_avg_pool1d: _LINEAR,
    F.adaptive_avg_pool2d: _LINEAR,
    F.max_pool1d: _MAXPOOL,
    F.max_pool2d: _MAXPOOL,
    F.max_pool3d: _MAXPOOL,
    F.adaptive_max_pool1d: _MAXPOOL,
    F.adaptive_max_pool2d: _MAXPOOL,
    torch.sign: _SIGN,
}
_METHODS: dict[str, Law] = {"relu": _RELU, "relu_": _RELU, "sign": _SIGN, "contiguous": _LINEAR}
# Reshapes are allowed only when they flatten (N, C, *S) to (N, C·prod S); checked on propagated shapes.
_RESHAPE_MODULES = {"Flatten"}
_RESHAPE_FUNCTIONS: set[Callable[..., Any]] = {torch.flatten, torch.reshape}
_RESHAPE_METHODS = {"view", "reshape", "flatten"}
_PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MERGES = {operator.add, operator.iadd, operator.sub, operator.mul, torch.add, torch.cat, torch.stack}


@dataclass(frozen=True)
class Coupled:
    """A tensor that moves with a unit: ``state[key]`` indexed along ``dim``, each unit owning ``block``
    consecutive entries (``block = H·W`` for the Linear after a conv→flatten)."""

    key: str
    dim: int
    block: int = 1


@dataclass(frozen=True)
class BatchNormRef:
    """A BatchNorm on a unit group's path. ``degree`` is the power of the unit factor c reaching its input
    (1 after ReLU/pooling, 0 after a sign activation); ``block`` as in :class:`Coupled` (BN1d after a
    flatten)."""

    prefix: str
    eps: float
    block: int = 1
    degree: int = 1

    @property
    def keys(self) -> tuple[str, str, str, str]:
        """(γ, β, running_mean, running_var) state-dict keys."""
        p = self.prefix
        return f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"


@dataclass(frozen=True)
class UnitGroup:
    """One hidden layer's units (neurons or filters), along dim 0 of ``weight``.

    ``outgoing_scaled``: this layer's own per-unit tensors (bias, and γ, β, running_mean, running_var of each
    BN in ``batchnorms``), permuted with the unit and rescaled with it (BN by the rule in the module doc).
    ``consumers``: the next layer's input columns (dim 1), compensated by ``c**-degree``. ``degree`` and
    ``odd`` are the composed :class:`Law` of the ops between this layer and the next; ``odd`` says whether
    sign flips preserve the function.
    """

    weight: str
    size: int
    outgoing_scaled: tuple[Coupled, ...]
    consumers: tuple[Coupled, ...]
    batchnorms: tuple[BatchNormRef, ...] = ()
    degree: int = 1
    odd: bool = False


@dataclass(frozen=True)
class Structure:
    """Hidden unit groups in forward order (layers 1..L−1) and the output layer (never permuted)."""

    hidden: tuple[UnitGroup, ...]
    output_weight: str
    output_bias: str | None
    output_size: int

    def sphere_keys(self) -> tuple[str, ...]:
        """Weight keys that live on spheres: each hidden weight (one unit sphere per row / flattened filter,
        ``state[k].flatten(1)``), then the output weight (one sphere of radius sqrt(output_size))."""
        return (*(g.weight for g in self.hidden), self.output_weight)

    @property
    def sizes(self) -> tuple[int, ...]:
        """H_1..H_{L−1}, H_L."""
        return (*(g.size for g in self.hidden), self.output_size)


@dataclass(frozen=True, eq=False)
class Permutation:
    """New unit k of a layer is old unit ``index[k]``, then multiplied by ``signs[k]`` (±1) if given."""

    index: Tensor
    signs: Tensor | None = None


# ---------------------------------------------------------------------------------------------------------
# Structure from the fx graph


_CACHE: OrderedDict[tuple[Any, ...], Structure] = OrderedDict()
_CACHE_SIZE = 64


def structure(model: nn.Module, input_shape: Sequence[int] | None = None) -> Structure:
    """Unit structure of ``model`` (see the module doc), derived from its fx graph with a zero input of shape
    ``(1, *input_shape)`` (default ``model.input_shape``). Cached on the module tree and input shape."""
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError(f"{type(model).__name__} has no input_shape attribute; pass input_shape")
    shape = tuple(int(s) for s in shape)
    key = (
        type(model),
        shape,
        tuple((name, type(m), m.extra_repr()) for name, m in model.named_modules()),
        tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()),
    )
    hit = _CACHE.get(key)
    if hit is None:
        hit = _derive(model, shape)
        _CACHE[key] = hit
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return hit


class _Chain(NamedTuple):
    consumer: fx.Node | None  # the next producer, or None when the path reaches the graph output
    last: fx.Node  # the node whose output the consumer reads
    block: int
    degree: int
    odd: bool
    batchnorms: tuple[BatchNormRef, ...]
    not_scalable: fx.Node | None  # first op that forbids a global output rescale, if any


class _Tracer(fx.Tracer):
    """Keeps subclasses of the producers (e.g. binary layers that binarize their weight in ``forward``) and
    the allowed pass-through modules as single nodes, whatever module they are defined in."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _PRODUCERS) or type(m).__name__ in PASS_THROUGH_MODULES:
            return True
        return super().is_leaf_module(m, qualname)


def _derive(model: nn.Module, input_shape: tuple[int, ...]) -> Structure:
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as err:  # fx raises many types for untraceable control flow
        raise UnsupportedGraphError(f"cannot trace {type(model).__name__} with torch.fx: {err}") from err
    first = next(iter(model.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.get_default_dtype()
    device = first.device if first is not None else torch.device("cpu")
    modes = [(m, m.training) for m in gm.modules()]
    gm.eval()  # BN1d refuses a batch of one in training mode; shapes do not depend on the mode
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros((1, *input_shape), dtype=dtype, device=device))
    except Exception as err:
        raise ValueError(
            f"cannot run {type(model).__name__} on an input of shape {input_shape}: {err}"
        ) from err
    finally:
        for m, training in modes:
            m.training = training
    return _Graph(gm).structure()


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _is_shape_query(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in ("size", "dim")
    return node.op == "call_function" and node.target is getattr and node.args[1] in ("shape", "ndim")


class _Graph:
    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())

    def describe(self, node: fx.Node) -> str:
        if node.op == "call_module":
            kind = type(self.modules[node.target]).__name__
            return f"node {node.name!r} (call_module {node.target!r}: {kind})"
        if node.op in ("call_function", "call_method"):
            target = getattr(node.target, "__name__", node.target)
            return f"node {node.name!r} ({node.op} {target})"
        return f"node {node.name!r} ({node.op} {node.target!r})"

    def fail(self, node: fx.Node, why: str) -> UnsupportedGraphError:
        return UnsupportedGraphError(f"{self.describe(node)}: {why}")

    def is_producer(self, node: fx.Node) -> bool:
        return node.op == "call_module" and isinstance(self.modules[node.target], _PRODUCERS)

    def structure(self) -> Structure:
        producers = [n for n in self.gm.graph.nodes if self.is_producer(n)]
        if not producers:
            raise UnsupportedGraphError("the graph has no Linear or Conv layer")
        seen: set[str] = set()
        for p in producers:
            m = self.modules[p.target]
            if p.target in seen:
                raise self.fail(p, "the layer is called more than once (shared weights)")
            seen.add(p.target)
            if isinstance(m, nn.modules.conv._ConvNd) and m.groups != 1:
                raise self.fail(p, f"grouped convolution (groups={m.groups}) is not supported")
        chains = {p: self.walk(p) for p in producers}
        outputs = [p for p in producers if chains[p].consumer is None]
        if len(outputs) != 1:
            raise UnsupportedGraphError(
                f"expected one output layer, found {len(outputs)}: {[self.describe(p) for p in outputs]}"
            )
        out = outputs[0]
        if chains[out].not_scalable is not None:
            raise self.fail(
                chains[out].not_scalable, "after the output layer only scale-equivariant ops are allowed"
            )
        hidden = []
        for p in producers:
            if p is out:
                continue
            ch = chains[p]
            assert ch.consumer is not None
            hidden.append(self.group(p, ch))
        # Each chain has one consumer and each consumer one input, so the producers form one path; checking
        # the order guards the sequential normalization, which assumes group l's consumer is group l+1.
        order = [*(g.weight for g in hidden[1:]), f"{out.target}.weight"]
        for g, nxt in zip(hidden, order):
            if g.consumers[0].key != nxt:
                raise UnsupportedGraphError(
                    f"layers are not a single chain: {g.weight} feeds {g.consumers[0].key}"
                )
        om = self.modules[out.target]
        return Structure(
            hidden=tuple(hidden),
            output_weight=f"{out.target}.weight",
            output_bias=f"{out.target}.bias" if om.bias is not None else None,
            output_size=int(om.weight.shape[0]),
        )

    def group(self, p: fx.Node, ch: _Chain) -> UnitGroup:
        m = self.modules[p.target]
        size = int(m.weight.shape[0])
        q = ch.consumer
        assert q is not None
        qm = self.modules[q.target]
        s_in = _shape(ch.last)
        if s_in is None:
            raise self.fail(q, "no propagated shape for its input")
        if isinstance(qm, nn.Linear):
            if len(s_in) != 2 or s_in[1] != size * ch.block:
                raise self.fail(q, f"Linear reads a tensor of shape {s_in}; expected (N, {size}·{ch.block})")
            consumer = Coupled(f"{q.target}.weight", 1, ch.block)
        else:
            if ch.block != 1 or len(s_in) < 3 or s_in[1] != size:
                raise self.fail(
                    q, f"conv reads a tensor of shape {s_in}; expected (N, {size}, ...) unflattened"
                )
            consumer = Coupled(f"{q.target}.weight", 1, 1)
        if m.bias is not None and getattr(m, "weight_degree", 1) != 1:
            raise self.fail(p, "a layer whose output does not scale with its weights cannot have a bias")
        own = [Coupled(f"{p.target}.bias", 0)] if m.bias is not None else []
        for bn in ch.batchnorms:
            own += [Coupled(k, 0, bn.block) for k in bn.keys]
        return UnitGroup(
            weight=f"{p.target}.weight",
            size=size,
            outgoing_scaled=tuple(own),
            consumers=(consumer,),
            batchnorms=ch.batchnorms,
            degree=ch.degree,
            odd=ch.odd,
        )

    def walk(self, p: fx.Node) -> _Chain:
        """Follow producer ``p``'s output through pass-through ops to the next producer or the output."""
        if isinstance(self.modules[p.target], nn.Linear):
            s = _shape(p)
            if s is None or len(s) != 2:
                raise self.fail(p, f"Linear output of shape {s}; units must be dim 1 of an (N, H) tensor")
        # A binary layer computes with sign(w): its output does not scale with its latent weights
        # (weight_degree 0) and is odd in them.
        cur, block, degree, odd = p, 1, getattr(self.modules[p.target], "weight_degree", 1), True
        bns: list[BatchNormRef] = []
        not_scalable: fx.Node | None = None
        while True:
            users = [u for u in cur.users if not _is_shape_query(u)]
            if len(users) != 1:
                names = ", ".join(self.describe(u) for u in users) or "nothing"
                raise self.fail(cur, f"on the path of {p.name!r} it feeds {len(users)} nodes ({names})")
            u = users[0]
            if u.op == "output":
                if u.args[0] is not cur:
                    raise self.fail(u, f"returns {p.name!r}'s units inside a container")
                return _Chain(None, cur, block, degree, odd, tuple(bns), not_scalable)
            # Classify first so that a merge (add, cat) is reported as such, not as an odd argument.
            law, kind = (_LINEAR, "producer") if self.is_producer(u) else self.classify(u)
            others = [*u.args[1:], *u.kwargs.values()]
            if not u.args or u.args[0] is not cur or any(a is cur for a in others):
                raise self.fail(u, f"uses {cur.name!r} other than as its only tensor input")
            if kind == "producer":
                return _Chain(u, cur, block, degree, odd, tuple(bns), not_scalable)
            s_in, s_out = _shape(cur), _shape(u)
            if s_in is None or s_out is None:
                raise self.fail(u, "no propagated tensor shape")
            if kind == "reshape":
                if not (len(s_out) == 2 and s_out[0] == s_in[0] and s_out[1] == math.prod(s_in[1:])):
                    raise self.fail(
                        u, f"reshape {s_in} -> {s_out} mixes units; only (N, C, *S) -> (N, C·|S|)"
                    )
                block *= math.prod(s_in[2:])
            elif kind == "bn":
                bn = self.modules[u.target]
                if not bn.affine or bn.running_var is None:
                    raise self.fail(u, "BatchNorm needs affine=True and track_running_stats=True")
                if s_in[1] != bn.num_features:
                    raise self.fail(u, f"BatchNorm over {bn.num_features} features reads shape {s_in}")
                # After a flatten, BN1d has one feature per column: each unit owns `block` of them.
                bns.append(BatchNormRef(str(u.target), float(bn.eps), block, degree))
                if not_scalable is None:
                    not_scalable = u
            else:
                if s_out[:2] != s_in[:2]:
                    raise self.fail(u, f"changes the unit dimension: {s_in} -> {s_out}")
                degree *= law.degree
                odd = odd and law.odd
                if law.degree != 1 and not_scalable is None:
                    not_scalable = u
            cur = u

    def classify(self, u: fx.Node) -> tuple[Law, str]:
        if u.op == "call_module":
            m = self.modules[u.target]
            name = type(m).__name__
            if isinstance(m, _BatchNorm):
                return _LINEAR, "bn"
            if name in _RESHAPE_MODULES:
                return _LINEAR, "reshape"
            if name in PASS_THROUGH_MODULES:
                return PASS_THROUGH_MODULES[name], "pass"
        elif u.op == "call_function":
            if u.target in _RESHAPE_FUNCTIONS:
                return _LINEAR, "reshape"
            if u.target in _FUNCTIONS:
                return _FUNCTIONS[u.target], "pass"
        elif u.op == "call_method":
            if u.target in _RESHAPE_METHODS:
                return _LINEAR, "reshape"
            if u.target in _METHODS:
                return _METHODS[u.target], "pass"
        why = (
            "a residual/merge op between two layers"
            if u.op == "call_function" and u.target in _MERGES
            else "not an op that acts channel-wise and commutes with per-unit rescaling"
        )
        raise self.fail(u, f"{why}; see symmetry.PASS_THROUGH_MODULES")


# ---------------------------------------------------------------------------------------------------------
# Transformations of a state dict (never in place: untouched entries are shared with the input)


def _take(t: Tensor, dim: int, index: Tensor, block: int) -> Tensor:
    index = index.to(device=t.device, dtype=torch.long)
    if block > 1:
        index = (index[:, None] * block + torch.arange(block, device=t.device)).reshape(-1)
    return t.index_select(dim, index)


def _along(t: Tensor, dim: int, factor: Tensor, block: int) -> Tensor:
    """``factor`` (one per unit) repeated over each block and shaped to broadcast along ``dim`` of ``t``."""
    f = factor.to(device=t.device, dtype=t.dtype)
    if block > 1:
        f = f.repeat_interleave(block)
    shape = [1] * t.dim()
    shape[dim] = -1
    return f.view(shape)


def _transform(
    state: dict[str, Tensor],
    g: UnitGroup,
    *,
    index: Tensor | None = None,
    scale: Tensor | None = None,
    sign: Tensor | None = None,
) -> None:
    """Permute group ``g``'s units by ``index``, then multiply unit k by ``f_k = sign_k·scale_k`` (scale > 0):
    weight row and bias ×f, BN by the exact rule below, consumers ×sign·scale**−degree. Replaces entries."""
    if index is not None:
        for c in (Coupled(g.weight, 0), *g.outgoing_scaled, *g.consumers):
            state[c.key] = _take(state[c.key], c.dim, index, c.block)
    if scale is None and sign is None:
        return
    ref = state[g.weight]
    one = torch.ones(g.size, dtype=ref.dtype, device=ref.device)
    c = one if scale is None else scale.to(ref)
    s = one if sign is None else sign.to(ref)
    f = s * c
    state[g.weight] = ref * _along(ref, 0, f, 1)
    bn_keys = {k for bn in g.batchnorms for k in bn.keys}
    for cp in g.outgoing_scaled:
        if cp.key not in bn_keys:
            state[cp.key] = state[cp.key] * _along(state[cp.key], cp.dim, f, cp.block)
    for bn in g.batchnorms:
        _transform_bn(state, bn, s * c**bn.degree)
    back = s * c ** (-g.degree)
    for cp in g.consumers:
        state[cp.key] = state[cp.key] * _along(state[cp.key], cp.dim, back, cp.block)


def _transform_bn(state: dict[str, Tensor], bn: BatchNormRef, f: Tensor) -> None:
    """Make the eval-mode BN output exactly ``f``× the old one when its input is ``f``× the old one.

    With μ' = fμ and var' + ε = f²(var + ε), (x' − μ')/sqrt(var' + ε) = sign(f)·(x − μ)/sqrt(var + ε), so
    γ' = |f|γ and β' = fβ. A var' < 0 is clamped to 0 and γ' = γ·sqrt((var' + ε)/(var + ε)) (the general
    form, which equals |f|γ when nothing is clamped).
    """
    kw, kb, km, kv = bn.keys
    var = state[kv]
    fb = f.to(var).repeat_interleave(bn.block) if bn.block > 1 else f.to(var)
    f2 = fb * fb
    # For flips (f² = 1) keep running_var bit-identical: (var + ε) − ε can round differently.
    new_var = torch.where(f2 == 1, var, f2 * (var + bn.eps) - bn.eps)
    clamped = new_var < 0
    gamma_factor = fb.abs()
    if bool(clamped.any()):
        new_var = new_var.clamp_min(0)
        gamma_factor = torch.where(clamped, torch.sqrt((new_var + bn.eps) / (var + bn.eps)), gamma_factor)
    state[kv] = new_var
    state[km] = state[km] * fb
    state[kb] = state[kb] * fb
    state[kw] = state[kw] * gamma_factor


def _check_state(state: State, s: Structure) -> None:
    for k in (*s.sphere_keys(), *(c.key for g in s.hidden for c in (*g.outgoing_scaled, *g.consumers))):
        if k not in state:
            raise KeyError(f"state has no {k!r}: not the architecture of this structure")


def normalize_state(state: State, s: Structure) -> dict[str, Tensor]:
    """Algorithm 1 on a state dict: hidden units to unit norm (sequentially, compensating the next layer),
    output weight and bias scaled by sqrt(H_L)/‖W_L‖_F. Returns a new dict; the input is not modified."""
    _check_state(state, s)
    out = dict(state)
    for g in s.hidden:
        n = out[g.weight].flatten(1).norm(dim=1)
        # A zero row has no direction; leaving it unscaled keeps the function and avoids 1/0.
        c = torch.where(n > 0, 1 / n.clamp_min(torch.finfo(n.dtype).tiny), torch.ones_like(n))
        _transform(out, g, scale=c)
    w = out[s.output_weight]
    norm = w.norm()
    if norm > 0:
        a = math.sqrt(s.output_size) / norm
        out[s.output_weight] = w * a
        if s.output_bias is not None:
            out[s.output_bias] = out[s.output_bias] * a
    return out


def _cosines(a: Tensor, b: Tensor) -> np.ndarray:
    """Cosine matrix between the rows of ``a`` and ``b`` (float64; a zero row has cosine 0 with all)."""
    # numpy: small float64 products in torch's threaded CPU path were ~100x slower on a busy 2-core box.
    a_, b_ = (t.detach().flatten(1).to("cpu", torch.float64).numpy() for t in (a, b))
    a_ = a_ / np.maximum(np.linalg.norm(a_, axis=1, keepdims=True), 1e-300)
    b_ = b_ / np.maximum(np.linalg.norm(b_, axis=1, keepdims=True), 1e-300)
    return a_ @ b_.T


def match_state(reference: State, state: State, s: Structure, *, signs: bool = False) -> list[Permutation]:
    """Algorithm 2 on two (normalized) state dicts: per hidden layer, from the first, the permutation of
    ``state``'s units maximizing Σ_k cos(ref row k, row π(k)) (with ``signs``, in the layers whose units
    have the sign-flip symmetry (``odd``): |cos|, and a flip where cos < 0), each computed after the
    previous layers' permutations were applied to ``state``."""
    _check_state(reference, s)
    _check_state(state, s)
    work = dict(state)
    perms = []
    for g in s.hidden:
        if reference[g.weight].shape != work[g.weight].shape:
            raise ValueError(
                f"{g.weight}: shapes {tuple(reference[g.weight].shape)} and {tuple(work[g.weight].shape)}"
            )
        cos = _cosines(reference[g.weight], work[g.weight])
        # A sign flip is a symmetry only where every op up to the next layer is odd (e.g. sign, not ReLU
        # or max-pooling): elsewhere the matching stays on plain cosines.
        flips = signs and g.odd
        rows, cols = linear_sum_assignment(np.abs(cos) if flips else cos, maximize=True)
        index = torch.as_tensor(cols[np.argsort(rows)], dtype=torch.long)
        flip = None
        if flips:
            flip = torch.as_tensor(np.where(cos[rows, cols] < 0, -1.0, 1.0)[np.argsort(rows)])
        perm = Permutation(index, flip)
        _transform(work, g, index=perm.index, sign=perm.signs)
        perms.append(perm)
    return perms


def permute_state(state: State, s: Structure, perms: Sequence[Permutation | Tensor]) -> dict[str, Tensor]:
    """Apply one :class:`Permutation` (or plain index tensor) per hidden layer; returns a new dict."""
    if len(perms) != len(s.hidden):
        raise ValueError(f"{len(perms)} permutations for {len(s.hidden)} hidden layers")
    _check_state(state, s)
    out = dict(state)
    for g, p in zip(s.hidden, perms):
        p = p if isinstance(p, Permutation) else Permutation(torch.as_tensor(p))
        idx = p.index.to(torch.long).cpu()
        if idx.shape != (g.size,) or not torch.equal(idx.sort().values, torch.arange(g.size)):
            raise ValueError(f"{g.weight}: not a permutation of {g.size} units")
        if p.signs is not None and (p.signs.shape != (g.size,) or not bool((p.signs.abs() == 1).all())):
            raise ValueError(f"{g.weight}: signs must be {g.size} values ±1")
        _transform(out, g, index=idx, sign=p.signs)
    return out


# ---------------------------------------------------------------------------------------------------------
# Model-level API (every function returns a new model; its input is never modified)


def _with_state(model: nn.Module, state: State) -> nn.Module:
    new = copy.deepcopy(model)
    new.load_state_dict(state)
    return new


def unit_norms(model: nn.Module) -> list[Tensor]:
    """Per hidden layer, the L2 norms of the units' incoming weights (rows / flattened filters)."""
    state = model.state_dict()
    return [state[g.weight].flatten(1).norm(dim=1) for g in structure(model).hidden]


def normalize(model: nn.Module) -> nn.Module:
    """Algorithm 1 (see the module doc): a new model with every hidden unit's incoming weights on the unit
    sphere and ‖W_L‖_F = sqrt(H_L). Same eval-mode function up to a positive factor on the logits."""
    return _with_state(model, normalize_state(model.state_dict(), structure(model)))


def match(reference: nn.Module, model: nn.Module, *, signs: bool = False) -> list[Permutation]:
    """Algorithm 2's permutations of ``model``'s hidden units onto ``reference``'s. Both should already be
    normalized (the cosines of layer l+1 depend on layer l's scales); :func:`align` normalizes for you."""
    return match_state(reference.state_dict(), model.state_dict(), structure(model), signs=signs)


def permute(model: nn.Module, perms: Sequence[Permutation | Tensor]) -> nn.Module:
    """A new model with ``perms`` (and their sign flips) applied; the function is unchanged by permutations
    and, for groups with ``odd`` paths, by flips. Works on raw and normalized models alike."""
    return _with_state(model, permute_state(model.state_dict(), structure(model), perms))


def align(reference: nn.Module, model: nn.Module, *, signs: bool = False) -> nn.Module:
    """``model`` permuted (and flipped if ``signs``) to match ``reference``.

    The permutations are always computed on normalized copies of both networks, ``match(normalize(ref),
    normalize(model))``, and applied to ``model`` as given. A raw ``model`` therefore stays raw ("Linear-
    Aligned"; paper footnote 4) and a normalized one stays normalized ("Normalized-Aligned")."""
    s = structure(model)
    if structure(reference) != s:
        raise ValueError("reference and model have different unit structures")
    perms = match_state(
        normalize_state(reference.state_dict(), s), normalize_state(model.state_dict(), s), s, signs=signs
    )
    return _with_state(model, permute_state(model.state_dict(), s, perms))
