"""The unit structure of a network: which tensors move together when its hidden units are permuted, rescaled
or sign-flipped, derived from the module's ``torch.fx`` graph (the paper's §3 symmetries on any graph).

One pass over the traced graph follows the channel axis (dim 1) of every tensor. A *producer*
(``nn.Linear``, ``nn.Conv1d/2d/3d`` with ``groups=1``) creates fresh units along it. Each op adds links:

* channel-wise ops carry the units on, each with its :class:`Law` (``f(c·x) = c**degree·f(x)``, odd or not):
  ReLU, pooling, dropout, spatial means, spatial slicing, sign (degree 0), Tanh/GELU/… (not homogeneous);
* ``BatchNorm`` (affine, running stats) is carried with the units (its per-channel tensors move with them);
* a flatten ``(N, C, *S) -> (N, C·prod S)`` gives each unit a block of ``prod S`` columns;
* an addition (or a concatenation along another dim) ties its operands' units together: a union-find merges
  them into one permutation group, so a residual stream is one group however many blocks write to it;
* a concatenation along dim 1 lays its operands' units side by side (each keeps its own group);
* a producer reading the axis becomes a *consumer*: its input columns move with the units they read.

A positive per-unit scale c is a symmetry of a group when every path from its sources (the producers'
weight rows, and under ``batchnorm="own"`` the BN γ) to its consumers is positively homogeneous of degree 1,
and every operand of every addition it passes carries the same power of c: a union-find over *scale
groups* merges the scales that additions tie, and a scale that meets a non-homogeneous op (Tanh), a constant
offset or a mixed addition (c·x + x_0) is *broken*: its units keep their permutation, not their scale, and
:attr:`Structure.notes` says why. Units tied to the network input or output (``x + f(x)`` on the input) have
no symmetry at all and are left as they are (also noted). Sign flips are a symmetry of a group when every
op on every one of its paths is odd (:attr:`UnitGroup.odd`).

BatchNorm's own scale (``batchnorm``): BN in eval mode is the per-channel affine map
γ (x − μ)/sqrt(var + ε) + β. ``"carry"`` (the paper's reading, digest §1.3, the default): BN carries the
unit's scale, its input and output both ×c (γ, β, μ ×c, var + ε ×c²). ``"own"``: the producer's scale is
absorbed by the BN (μ ×c, var + ε ×c², output unchanged) and BN's γ, β start a scale of their own, which its
consumers compensate; normalization then sets |γ| = 1 as well, so networks that differ only by a BN
rescaling map to the same point.

An op whose effect on units is not known (a product of two hidden tensors, LayerNorm, a grouped conv, a
parameter used outside a layer) stops with :class:`UnsupportedGraphError`, which names the fx node.
"""

from __future__ import annotations

import contextlib
import io
import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "BATCHNORM_MODES",
    "PASS_THROUGH_MODULES",
    "BatchNormRef",
    "BatchNormScale",
    "Coupled",
    "Law",
    "Scale",
    "Sphere",
    "Structure",
    "UnitGroup",
    "UnsupportedGraphError",
    "resolve",
    "structure",
]

BATCHNORM_MODES = ("carry", "own")


class UnsupportedGraphError(ValueError):
    """The module graph has an op whose effect on hidden units is not known; the message names the fx node."""


class Law(NamedTuple):
    """How an op ``f`` transforms a per-unit factor: ``f(c·x) = c**degree · f(x)`` for c > 0 (``degree`` None:
    no such law), and ``f(−x) = −f(x)`` if ``odd``. ReLU is (1, False), sign (0, True), Tanh (None, True)."""

    degree: int | None
    odd: bool


_RELU, _LINEAR, _SIGN, _ODD, _EVEN = (
    Law(1, False),
    Law(1, True),
    Law(0, True),
    Law(None, True),
    Law(None, False),
)

#: Channel-wise modules by class name; extend it (e.g. with a binary net's activation) to allow more.
PASS_THROUGH_MODULES: dict[str, Law] = {
    **dict.fromkeys(("ReLU", "LeakyReLU", "MaxPool1d", "MaxPool2d", "MaxPool3d"), _RELU),
    **dict.fromkeys(("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"), _RELU),
    **dict.fromkeys(("Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d"), _LINEAR),
    **dict.fromkeys(("AvgPool1d", "AvgPool2d", "AvgPool3d"), _LINEAR),
    **dict.fromkeys(("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"), _LINEAR),
    **dict.fromkeys(("Sign", "SignActivation"), _SIGN),
    **dict.fromkeys(("Tanh", "Hardtanh", "Softsign", "Tanhshrink"), _ODD),
    **dict.fromkeys(("Sigmoid", "GELU", "SiLU", "ELU", "SELU", "CELU", "Softplus", "Mish"), _EVEN),
    **dict.fromkeys(("ReLU6", "Hardswish", "Hardsigmoid", "Softmax", "LogSoftmax"), _EVEN),
}
_FUNCTIONS: dict[Callable[..., Any], Law] = {
    **dict.fromkeys((F.relu, F.relu_, torch.relu, torch.relu_, F.leaky_relu), _RELU),
    **dict.fromkeys((F.max_pool1d, F.max_pool2d, F.max_pool3d), _RELU),
    **dict.fromkeys((F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d), _RELU),
    **dict.fromkeys((F.dropout, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d), _LINEAR),
    **dict.fromkeys((F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d), _LINEAR),
    torch.sign: _SIGN,
    **dict.fromkeys((torch.tanh, F.tanh, F.hardtanh, F.softsign), _ODD),
    **dict.fromkeys((torch.sigmoid, F.sigmoid, F.gelu, F.silu, F.elu, F.selu, F.softplus, F.mish), _EVEN),
    F.relu6: _EVEN,  # relu6(c·x) ≠ c·relu6(x) above 6: a permutation survives, a scale does not
    **dict.fromkeys((F.softmax, F.log_softmax, torch.softmax, torch.log_softmax), _EVEN),
}
_METHODS: dict[str, Law] = {
    "relu": _RELU, "relu_": _RELU, "sign": _SIGN, "contiguous": _LINEAR, "clone": _LINEAR,
    "float": _LINEAR, "double": _LINEAR, "to": _LINEAR,
    "tanh": _ODD, "sigmoid": _EVEN, "softmax": _EVEN, "log_softmax": _EVEN,
}  # fmt: skip
# Reshapes are allowed only when they flatten (N, C, *S) to (N, C·prod S); checked on propagated shapes.
_RESHAPE_MODULES = {"Flatten"}
_RESHAPE_FUNCTIONS: set[Callable[..., Any]] = {torch.flatten, torch.reshape, torch.squeeze}
_RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze"}
_REDUCTIONS: set[Any] = {torch.mean, torch.sum, "mean", "sum", torch.amax, "amax"}
_ADDS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_SCALARS = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div}
_PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Coupled:
    """A tensor that moves with a group's units: ``state[key]`` along ``dim``, unit k owning the ``block``
    consecutive entries from ``offset + k·block`` (``block = H·W`` for the Linear after a conv→flatten,
    ``offset`` > 0 after a concatenation)."""

    key: str
    dim: int
    block: int = 1
    offset: int = 0


@dataclass(frozen=True)
class BatchNormRef:
    """A BatchNorm on a group's path; ``block``/``offset`` as in :class:`Coupled` (BN1d after a flatten or a
    concatenation)."""

    prefix: str
    eps: float
    block: int = 1
    offset: int = 0

    @property
    def keys(self) -> tuple[str, str, str, str]:
        """(γ, β, running_mean, running_var) state-dict keys."""
        p = self.prefix
        return f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"


@dataclass(frozen=True)
class BatchNormScale:
    """A BatchNorm under a scale c: its input carries ``c**degree_in``, its output ``c**degree_out``
    ((1, 1) carried, (1, 0) absorbed, (0, 1) the BN's own scale, (0, 0) after a sign: nothing to do)."""

    bn: BatchNormRef
    degree_in: int
    degree_out: int


@dataclass(frozen=True)
class Scale:
    """One positive scale freedom per unit of a group: multiplying unit k's ``weights`` rows and ``biases``
    by c_k > 0, its ``batchnorms`` by their rule and dividing its ``consumers`` columns by c_k keeps the
    function.

    ``sphere``: the rows that normalization puts on the unit sphere (concatenated per unit; with none, the
    own-scale BN γ): the *opening* ``weights``, whose inputs do not depend on this scale (see
    ``_Graph.opening_rows``). In a chain that is every row; in a residual stream it is the rows of the
    layers that open it (the stem; a stage's first block and shortcut conv), not those of the later blocks
    that read the stream and write back to it. With those included, unit norms of 1 can be out of reach
    (that part of the norm does not change when the stream and the block are scaled together), and
    normalizing one layer would undo another."""

    weights: tuple[str, ...]
    biases: tuple[str, ...]
    batchnorms: tuple[BatchNormScale, ...]
    consumers: tuple[Coupled, ...]
    sphere: tuple[str, ...] = ()

    @property
    def gammas(self) -> tuple[BatchNormRef, ...]:
        """The BNs whose γ starts this scale (``batchnorm="own"``)."""
        return tuple(b.bn for b in self.batchnorms if (b.degree_in, b.degree_out) == (0, 1))


@dataclass(frozen=True)
class UnitGroup:
    """``size`` hidden units that are permuted together (one permutation group).

    ``weights``/``biases``: the producers whose output units these are (dim 0); ``batchnorms``: every BN on
    their paths; ``consumers``: the input columns that read them. ``scales``: the group's positive scale
    freedoms (one, several under ``batchnorm="own"``, none where it is broken). ``odd``: sign flips are a
    symmetry (every op on every path is odd)."""

    size: int
    weights: tuple[str, ...]
    biases: tuple[str, ...]
    batchnorms: tuple[BatchNormRef, ...]
    consumers: tuple[Coupled, ...]
    scales: tuple[Scale, ...]
    odd: bool

    @property
    def weight(self) -> str:
        """The first producer's weight key (the group's name)."""
        return self.weights[0]

    @property
    def degree(self) -> int:
        """1 if a scale of the group reaches a consumer (it must compensate), else 0 (e.g. after a sign)."""
        return int(any(s.consumers for s in self.scales))

    @property
    def outgoing_scaled(self) -> tuple[Coupled, ...]:
        """The group's own per-unit tensors besides the weight rows: biases and BN γ, β, μ, var."""
        bns = (Coupled(k, 0, b.block, b.offset) for b in self.batchnorms for k in b.keys)
        return (*(Coupled(k, 0) for k in self.biases), *bns)


class Sphere(NamedTuple):
    """``size`` spheres, one per unit: row k of each tensor in ``keys`` (flattened, concatenated)."""

    keys: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class Structure:
    """Hidden permutation groups in forward order and the output layer (never permuted).

    ``output_scaled``: the output layer may be rescaled globally (positive factor on the logits), false when
    an op after it is not homogeneous (e.g. ``log_softmax``). ``fixed``: weight keys of hidden layers whose
    units have no symmetry. ``notes``: why a freedom is missing, one line each."""

    hidden: tuple[UnitGroup, ...]
    output_weight: str
    output_bias: str | None
    output_size: int
    output_scaled: bool = True
    fixed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def spheres(self) -> tuple[Sphere, ...]:
        """The toroid's factors: per scale with weights, one unit sphere per unit (its rows concatenated),
        then the output layer as one sphere of radius sqrt(output_size) (if ``output_scaled``)."""
        out = [Sphere(s.sphere, g.size) for g in self.hidden for s in g.scales if s.sphere]
        if self.output_scaled:
            out.append(Sphere((self.output_weight,), 1))
        return tuple(out)

    def sphere_keys(self) -> tuple[str, ...]:
        """Weight keys that live on spheres (``spheres()`` flattened)."""
        return tuple(k for sp in self.spheres() for k in sp.keys)

    def weight_keys(self) -> tuple[str, ...]:
        """Every producer's weight key: hidden groups, fixed layers, the output layer."""
        return (*(k for g in self.hidden for k in g.weights), *self.fixed, self.output_weight)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The hidden groups' sizes, then H_L."""
        return (*(g.size for g in self.hidden), self.output_size)

    def describe(self) -> str:
        """One line per group: its size, layers, scales, flips; then the notes."""
        lines = []
        for i, g in enumerate(self.hidden):
            scales = "; ".join(
                "×c on "
                + ", ".join((*s.weights, *(f"{b.prefix} γ" for b in s.gammas)))
                + (f" (sphere: {', '.join(s.sphere)})" if s.sphere and s.sphere != s.weights else "")
                for s in g.scales
            )
            lines.append(
                f"group {i}: {g.size} units of {', '.join(g.weights)}; read by "
                f"{', '.join(sorted({c.key for c in g.consumers})) or 'nothing'}; "
                f"scales: {scales or 'none'}; sign flips: {'yes' if g.odd else 'no'}"
            )
        scaled = "rescaled to norm sqrt(H_L)" if self.output_scaled else "left as it is"
        lines.append(f"output: {self.output_weight} ({self.output_size} outputs), {scaled}")
        return "\n".join([*lines, *self.notes])


# ---------------------------------------------------------------------------------------------------------
# Deriving the structure


_CACHE: OrderedDict[tuple[Any, ...], Structure] = OrderedDict()
_CACHE_SIZE = 64
_CANDIDATE_SIZES = (32, 28, 224, 16, 8, 64, 96, 128, 12, 24, 48)


def structure(
    model: nn.Module,
    example: Tensor | Sequence[int] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    batchnorm: str = "carry",
) -> Structure:
    """Unit structure of ``model`` (see the module doc).

    The graph is traced with a zero input shaped like ``example`` (a batch ``(N, *input_shape)``), or
    ``input_shape`` (without the batch), else ``model.input_shape``; failing all three it is inferred from the
    first layer: a Linear's ``in_features``, or for a conv every square size in a short list that runs, if
    they all give one structure. Cached on the traced code, the module tree, the state shapes, the input
    shape and ``batchnorm``: a module whose ``forward`` branches on an attribute is traced anew.
    """
    return resolve(model, example, input_shape=input_shape, batchnorm=batchnorm)[1]


def resolve(
    model: nn.Module,
    example: Tensor | Sequence[int] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    batchnorm: str = "carry",
) -> tuple[tuple[int, ...], Structure]:
    """``(input_shape, structure)``: the shape :func:`structure` traced with, and its result."""
    if batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}")
    if example is not None and input_shape is not None:
        raise ValueError("pass example or input_shape, not both")
    gm = _trace(model)
    if isinstance(example, Tensor):
        if example.dim() < 2:
            raise ValueError(f"example must be a batch (N, *input_shape); got shape {tuple(example.shape)}")
        shape: Sequence[int] | None = tuple(example.shape[1:])
    else:
        shape = example if example is not None else input_shape
    if shape is None:
        shape = getattr(model, "input_shape", None)
    if shape is None:
        return _inferred(model, gm, batchnorm)
    shape = tuple(int(s) for s in shape)
    return shape, _cached(model, gm, shape, batchnorm)


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.GraphModule(model, _Tracer().trace(model))
    except Exception as err:  # fx raises many types for untraceable control flow
        raise UnsupportedGraphError(f"cannot trace {type(model).__name__} with torch.fx: {err}") from err


def _cached(model: nn.Module, gm: fx.GraphModule, shape: tuple[int, ...], batchnorm: str) -> Structure:
    key = (
        type(model),
        gm.code,
        shape,
        batchnorm,
        tuple((name, type(m), m.extra_repr()) for name, m in model.named_modules()),
        tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()),
        tuple(sorted(PASS_THROUGH_MODULES.items())),
    )
    hit = _CACHE.get(key)
    if hit is None:
        hit = _Graph(gm, model, shape, batchnorm).structure()
        _CACHE[key] = hit
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return hit


def _inferred(model: nn.Module, gm: fx.GraphModule, batchnorm: str) -> tuple[tuple[int, ...], Structure]:
    mods = dict(gm.named_modules())
    first = next(
        (
            mods[n.target]
            for n in gm.graph.nodes
            if n.op == "call_module" and isinstance(mods[n.target], _PRODUCERS)
        ),
        None,
    )
    hint = "pass an example batch or input_shape"
    if first is None:
        raise UnsupportedGraphError(f"{type(model).__name__}: the graph has no Linear or Conv layer")
    if isinstance(first, nn.Linear):
        candidates = [(first.in_features,)]
    else:
        d = first.weight.dim() - 2
        candidates = [(first.in_channels, *[s] * d) for s in _CANDIDATE_SIZES]
    found: list[tuple[tuple[int, ...], Structure]] = []
    unsupported: list[UnsupportedGraphError] = []
    for shape in candidates:
        try:
            found.append((shape, _cached(model, gm, shape, batchnorm)))
        except _ShapeError:
            continue
        except UnsupportedGraphError as err:  # e.g. x.view(-1, 400) at a size it does not fit
            unsupported.append(err)
            continue
        if len(found) == 2:
            break
    if not found and unsupported:
        raise unsupported[0]
    if not found:
        raise ValueError(f"{type(model).__name__}: cannot infer the input shape from {first}; {hint}")
    if len(found) == 2 and found[0][1] != found[1][1]:
        raise ValueError(
            f"{type(model).__name__}: inputs {found[0][0]} and {found[1][0]} both run but give "
            f"different unit structures; {hint}"
        )
    return found[0]


class _ShapeError(ValueError):
    pass


class _Tracer(fx.Tracer):
    """Keeps subclasses of the producers (e.g. binary layers that binarize their weight in ``forward``) and
    the allowed pass-through modules as single nodes, whatever module they are defined in."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _PRODUCERS) or type(m).__name__ in PASS_THROUGH_MODULES:
            return True
        return super().is_leaf_module(m, qualname)


class _Seg(NamedTuple):
    """A run of ``size`` units of permutation group ``pid`` along a tensor's dim 1, each owning ``block``
    entries; scale ``sid`` reaches them with power ``e`` (0 or 1)."""

    pid: int
    sid: int
    e: int
    size: int
    block: int


class _Find:
    """Union-find with a reason per class (why it lost its freedom; None while it has it)."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.reason: list[str | None] = []

    def new(self, reason: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.reason.append(reason)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> int:
        i, j = self.find(i), self.find(j)
        if i != j:
            i, j = min(i, j), max(i, j)  # the older class names the merged one
            self.parent[j] = i
            self.reason[i] = self.reason[i] or self.reason[j]
        return i

    def lose(self, i: int, reason: str) -> None:
        i = self.find(i)
        self.reason[i] = self.reason[i] or reason


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _is_shape_query(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in ("size", "dim")
    return node.op == "call_function" and node.target is getattr and node.args[1] in ("shape", "ndim")


def _flat_nodes(a: Any) -> list[fx.Node]:
    if isinstance(a, fx.Node):
        return [a]
    if isinstance(a, (list, tuple)):
        return [n for x in a for n in _flat_nodes(x)]
    if isinstance(a, dict):
        return [n for x in a.values() for n in _flat_nodes(x)]
    return []


class _Graph:
    """One pass over the traced graph; ``streams[node]`` lists the unit runs along the node's dim 1."""

    def __init__(self, gm: fx.GraphModule, model: nn.Module, shape: tuple[int, ...], batchnorm: str) -> None:
        self.gm, self.own_bn = gm, batchnorm == "own"
        self.modules = dict(gm.named_modules())
        self.name = type(model).__name__
        self._propagate(model, shape)
        self.perm, self.scale = _Find(), _Find()
        self.odd: list[bool] = []
        self.scale_group: list[int] = []  # the permutation group each scale belongs to
        self.p_weights: dict[int, list[str]] = {}
        self.p_biases: dict[int, list[str]] = {}
        self.p_bns: dict[int, list[BatchNormRef]] = {}
        self.p_consumers: dict[int, list[Coupled]] = {}
        self.s_weights: dict[int, list[str]] = {}
        self.s_biases: dict[int, list[str]] = {}
        self.s_bns: dict[int, list[BatchNormScale]] = {}
        self.s_consumers: dict[int, list[Coupled]] = {}
        self.streams: dict[fx.Node, tuple[_Seg, ...]] = {}
        self.producer_of: dict[int, str] = {}  # the perm group a producer created -> its module name

    def _propagate(self, model: nn.Module, shape: tuple[int, ...]) -> None:
        first = next(iter(model.parameters()), None)
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.get_default_dtype()
        device = first.device if first is not None else torch.device("cpu")
        modes = [(m, m.training) for m in self.gm.modules()]
        self.gm.eval()  # BN1d refuses a batch of one in training mode; shapes do not depend on the mode
        try:
            # ShapeProp prints the traceback of a failing node; the error below says what failed
            with (
                torch.no_grad(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                ShapeProp(self.gm).propagate(torch.zeros((1, *shape), dtype=dtype, device=device))
        except Exception as err:
            raise _ShapeError(f"cannot run {self.name} on an input of shape {shape}: {err}") from err
        finally:
            for m, training in modes:
                m.training = training

    # -- naming and errors

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

    # -- groups

    def new_units(self, size: int, block: int = 1, reason: str | None = None, e: int = 1) -> _Seg:
        pid = self.perm.new(reason)
        self.odd.append(True)
        sid = self.scale.new(reason)
        self.scale_group.append(pid)
        return _Seg(pid, sid, e, size, block)

    def new_scale(self, seg: _Seg) -> _Seg:
        sid = self.scale.new()
        self.scale_group.append(seg.pid)
        return seg._replace(sid=sid, e=1)

    def tie(self, node: fx.Node, a: tuple[_Seg, ...], b: tuple[_Seg, ...]) -> tuple[_Seg, ...]:
        """Units at the same position of two operands are one unit: union their groups and scales."""
        if [(s.size, s.block) for s in a] != [(s.size, s.block) for s in b]:
            raise self.fail(
                node, "combines tensors whose units are laid out differently (a concatenation meets a layer)"
            )
        out = []
        for x, y in zip(a, b):
            odd = self.odd[self.perm.find(x.pid)] and self.odd[self.perm.find(y.pid)]
            pid = self.perm.union(x.pid, y.pid)
            self.odd[pid] = odd
            e = x.e
            if x.e == y.e == 1:
                self.scale.union(x.sid, y.sid)
            elif x.e != y.e:
                lost = x if x.e == 1 else y
                self.scale.lose(lost.sid, f"{self.describe(node)} adds a term that does not carry the scale")
                e = 0
            out.append(_Seg(pid, self.scale.find(x.sid) if e else x.sid, e, x.size, x.block))
        return tuple(out)

    def apply_law(self, node: fx.Node, segs: tuple[_Seg, ...], law: Law) -> tuple[_Seg, ...]:
        out = []
        for s in segs:
            if not law.odd:
                self.odd[self.perm.find(s.pid)] = False
            e = s.e
            if law.degree is None and s.e == 1:
                self.scale.lose(s.sid, f"{self.describe(node)} is not positively homogeneous")
                e = 0
            elif law.degree == 0:
                e = 0
            out.append(s._replace(e=e))
        return tuple(out)

    # -- the pass

    def structure(self) -> Structure:
        graph = self.gm.graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise UnsupportedGraphError(f"{self.name}: expected one input, found {len(placeholders)}")
        seen: set[str] = set()
        output: fx.Node | None = None
        for node in graph.nodes:
            if node.op == "placeholder":
                s = _shape(node)
                assert s is not None
                inp = self.new_units(s[1] if len(s) > 1 else 1, reason="tied to the network input", e=0)
                self.streams[node] = (inp,)
            elif node.op == "output":
                output = node
            elif node.op == "get_attr" or _is_shape_query(node):
                continue
            else:
                inputs = [n for n in _flat_nodes((node.args, node.kwargs)) if n in self.streams]
                if not inputs:
                    continue  # shape arithmetic, constants
                if node.op == "call_module" and isinstance(
                    self.modules[node.target], (*_PRODUCERS, _BatchNorm)
                ):
                    if node.target in seen:
                        raise self.fail(node, "the layer is called more than once (shared weights)")
                    seen.add(node.target)
                self.streams[node] = self.visit(node)
        assert output is not None
        return self.finish(output)

    def visit(self, node: fx.Node) -> tuple[_Seg, ...]:
        s_out = _shape(node)
        if s_out is None:
            raise self.fail(node, "returns no tensor (or a tuple) from a hidden tensor")
        if node.op == "call_module":
            m = self.modules[node.target]
            if isinstance(m, _PRODUCERS):
                return self.producer(node, m)
            if isinstance(m, _BatchNorm):
                return self.batchnorm(node, m)
            name = type(m).__name__
            if name in _RESHAPE_MODULES:
                return self.reshape(node)
            if name in PASS_THROUGH_MODULES:
                return self.law(node, PASS_THROUGH_MODULES[name])
        else:
            t = node.target
            kind = "function" if node.op == "call_function" else "method"
            if t in _ADDS:
                return self.add(node)
            if t in _SCALARS:
                return self.scalar(node)
            if t is torch.cat or t is torch.concat:
                return self.cat(node)
            if t is operator.getitem:
                return self.getitem(node)
            if t in _REDUCTIONS:
                return self.reduction(node)
            if (kind == "function" and t in _RESHAPE_FUNCTIONS) or (
                kind == "method" and t in _RESHAPE_METHODS
            ):
                return self.reshape(node)
            if kind == "function" and t in _FUNCTIONS:
                return self.law(node, _FUNCTIONS[t])
            if kind == "method" and t in _METHODS:
                return self.law(node, _METHODS[t])
        raise self.fail(
            node,
            "not an op that acts channel-wise and whose effect on units is known; "
            "see units.PASS_THROUGH_MODULES",
        )

    def only_input(self, node: fx.Node) -> tuple[tuple[_Seg, ...], fx.Node]:
        """The node's single tensor operand: its first argument, used nowhere else."""
        first = node.args[0] if node.args else None
        others = _flat_nodes((node.args[1:], node.kwargs))
        if (
            not isinstance(first, fx.Node)
            or first not in self.streams
            or any(n in self.streams for n in others)
        ):
            raise self.fail(node, "uses a hidden tensor other than as its only tensor input")
        if any(n.op == "get_attr" for n in others):
            raise self.fail(node, "combines a hidden tensor with a parameter outside a layer")
        return self.streams[first], first

    def law(self, node: fx.Node, law: Law) -> tuple[_Seg, ...]:
        segs, src = self.only_input(node)
        s_in, s_out = _shape(src), _shape(node)
        if s_in is None or s_out is None or s_out[:2] != s_in[:2]:
            raise self.fail(node, f"changes the unit dimension: {s_in} -> {s_out}")
        return self.apply_law(node, segs, law)

    def producer(self, node: fx.Node, m: nn.Module) -> tuple[_Seg, ...]:
        segs, src = self.only_input(node)
        key = f"{node.target}.weight"
        s_in, s_out = _shape(src), _shape(node)
        total = sum(s.size * s.block for s in segs)
        if isinstance(m, nn.Linear):
            if s_out is None or len(s_out) != 2:
                raise self.fail(
                    node, f"Linear output of shape {s_out}; units must be dim 1 of an (N, H) tensor"
                )
            if s_in is None or len(s_in) != 2 or s_in[1] != total:
                raise self.fail(node, f"Linear reads a tensor of shape {s_in}; expected (N, {total})")
        else:
            if m.groups != 1:
                raise self.fail(node, f"grouped convolution (groups={m.groups}) is not supported")
            if s_in is None or len(s_in) < 3 or any(s.block != 1 for s in segs):
                raise self.fail(node, f"conv reads a tensor of shape {s_in}, flattened; expected (N, C, ...)")
        offset = 0
        for s in segs:
            c = Coupled(key, 1, s.block, offset)
            self.p_consumers.setdefault(s.pid, []).append(c)
            if s.e == 1:
                self.s_consumers.setdefault(s.sid, []).append(c)
            offset += s.size * s.block
        degree = getattr(m, "weight_degree", 1)  # binary layers compute with sign(w): degree 0
        if m.bias is not None and degree != 1:
            raise self.fail(node, "a layer whose output does not scale with its weights cannot have a bias")
        seg = self.new_units(int(m.weight.shape[0]), e=degree)
        self.producer_of[seg.pid] = str(node.target)
        self.p_weights[seg.pid] = [key]
        self.s_weights[seg.sid] = [key]
        if m.bias is not None:
            self.p_biases[seg.pid] = [f"{node.target}.bias"]
            self.s_biases[seg.sid] = [f"{node.target}.bias"]
        return (seg,)

    def batchnorm(self, node: fx.Node, m: _BatchNorm) -> tuple[_Seg, ...]:
        segs, src = self.only_input(node)
        if not m.affine or m.running_var is None:
            raise self.fail(node, "BatchNorm needs affine=True and track_running_stats=True")
        s_in = _shape(src)
        total = sum(s.size * s.block for s in segs)
        if s_in is None or s_in[1] != m.num_features or m.num_features != total:
            raise self.fail(node, f"BatchNorm over {m.num_features} features reads shape {s_in}")
        out, offset = [], 0
        for s in segs:
            ref = BatchNormRef(str(node.target), float(m.eps), s.block, offset)
            offset += s.size * s.block
            self.p_bns.setdefault(s.pid, []).append(ref)
            if not self.own_bn:
                if s.e == 1:
                    self.s_bns.setdefault(s.sid, []).append(BatchNormScale(ref, 1, 1))
                out.append(s)
                continue
            if s.e == 1:
                self.s_bns.setdefault(s.sid, []).append(BatchNormScale(ref, 1, 0))
            own = self.new_scale(s)
            self.s_bns[own.sid] = [BatchNormScale(ref, 0, 1)]
            out.append(own)
        return tuple(out)

    def reshape(self, node: fx.Node) -> tuple[_Seg, ...]:
        segs, src = self.only_input(node)
        s_in, s_out = _shape(src), _shape(node)
        assert s_in is not None and s_out is not None
        if s_in == s_out:
            return segs
        if not (len(s_out) == 2 and s_out[0] == s_in[0] and s_out[1] == math.prod(s_in[1:])):
            raise self.fail(node, f"reshape {s_in} -> {s_out} mixes units; only (N, C, *S) -> (N, C·|S|)")
        spatial = math.prod(s_in[2:])
        return tuple(s._replace(block=s.block * spatial) for s in segs)

    def add(self, node: fx.Node) -> tuple[_Seg, ...]:
        s_out = _shape(node)
        tensors = [a for a in node.args[:2] if isinstance(a, fx.Node)]
        if any(a.op == "get_attr" or a not in self.streams for a in tensors):
            raise self.fail(node, "adds a parameter or a tensor that is not a hidden tensor")
        if len(tensors) == 1:  # x + a number: a permutation survives, a scale or a flip does not
            segs, _ = self.only_input(node)
            return self.apply_law(node, segs, _EVEN)
        a, b = tensors
        if _shape(a) != s_out or _shape(b) != s_out:
            raise self.fail(
                node, f"broadcasts {_shape(a)} and {_shape(b)}; only same-shape additions tie units"
            )
        return self.tie(node, self.streams[a], self.streams[b])

    def scalar(self, node: fx.Node) -> tuple[_Seg, ...]:
        """x·a or x/a for a number a ≠ 0: degree 1 and odd."""
        args = [*node.args, *node.kwargs.values()]
        # a number computed at run time from shapes (h.size(2) * h.size(3)) is a node without a tensor
        numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        numbers += [a for a in args if isinstance(a, fx.Node) and a not in self.streams and _shape(a) is None]
        tensors = [a for a in args if isinstance(a, fx.Node) and a not in numbers]
        if len(tensors) != 1 or tensors[0] not in self.streams or len(numbers) != 1 or numbers[0] == 0:
            raise self.fail(node, "a product with something other than a nonzero number (gating, attention)")
        if node.target in (operator.truediv, operator.itruediv, torch.div) and node.args[0] is not tensors[0]:
            raise self.fail(node, "divides by a hidden tensor")
        return self.apply_law(node, self.streams[tensors[0]], _LINEAR)

    def cat(self, node: fx.Node) -> tuple[_Seg, ...]:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        s_out = _shape(node)
        if not isinstance(tensors, (list, tuple)) or not all(
            isinstance(t, fx.Node) and t in self.streams for t in tensors
        ):
            raise self.fail(node, "concatenates something other than hidden tensors")
        assert s_out is not None
        dim = dim % len(s_out)
        if dim == 0:
            raise self.fail(node, "concatenates along the batch dimension")
        segs = [self.streams[t] for t in tensors]
        if dim == 1:
            if any(s.block != 1 for ss in segs for s in ss) and len(s_out) != 2:
                raise self.fail(node, "concatenates flattened tensors")
            return tuple(s for ss in segs for s in ss)
        out = segs[0]
        for other in segs[1:]:
            out = self.tie(node, out, other)
        return out

    def getitem(self, node: fx.Node) -> tuple[_Seg, ...]:
        segs, src = self.only_input(node)
        idx = node.args[1]
        idx = idx if isinstance(idx, tuple) else (idx,)
        full = slice(None, None, None)
        if len(idx) < 2 or idx[0] != full or idx[1] != full or any(isinstance(i, fx.Node) for i in idx):
            raise self.fail(node, "indexes the batch or unit dimension; only x[:, :, ...] slicing is allowed")
        return self.law(node, _LINEAR)

    def reduction(self, node: fx.Node) -> tuple[_Seg, ...]:
        segs, src = self.only_input(node)
        s_in = _shape(src)
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        assert s_in is not None
        dims = (dims,) if isinstance(dims, int) else dims
        if not isinstance(dims, (list, tuple)) or any(d % len(s_in) in (0, 1) for d in dims):
            raise self.fail(node, "reduces over the batch or unit dimension")
        s_out = _shape(node)
        if s_out is None or s_out[:2] != s_in[:2]:
            raise self.fail(node, f"changes the unit dimension: {s_in} -> {s_out}")
        law = _RELU if node.target in (torch.amax, "amax") else _LINEAR
        return self.apply_law(node, segs, law)

    # -- the result

    def opening_rows(self) -> dict[int, tuple[str, ...]]:
        """Per scale class, its rows whose inputs do not depend on it: a row reads scales (the layer's
        input columns compensate them), a scale depends on the scales its rows read, and on theirs. In a
        residual stream the blocks that read it and write back to it depend on it; the stem, a stage's
        first block and its shortcut do not. A scale whose every row depends on it (a block's inner layer,
        read from the stream that it feeds back to) keeps all of them: the stream is normalized first."""
        live = {
            r for r in range(len(self.scale.parent)) if self.scale.find(r) == r and not self.scale.reason[r]
        }
        reads: dict[str, set[int]] = {}
        for sid, cs in self.s_consumers.items():
            root = self.scale.find(sid)
            if root in live:
                for c in cs:
                    reads.setdefault(c.key, set()).add(root)
        rows: dict[int, list[str]] = {}
        for sid, ks in self.s_weights.items():
            rows.setdefault(self.scale.find(sid), []).extend(ks)
        deps = {r: {t for k in ks for t in reads.get(k, ())} for r, ks in rows.items()}

        def ancestors(r: int) -> set[int]:
            seen, todo = {r}, [r]
            while todo:
                for t in deps.get(todo.pop(), ()):
                    if t not in seen:
                        seen.add(t)
                        todo.append(t)
            return seen

        anc = {r: ancestors(r) for r in live}
        out = {}
        for r, ks in rows.items():
            own = tuple(k for k in ks if not any(r in anc.get(t, {t}) for t in reads.get(k, ())))
            out[r] = own or tuple(ks)
        return out

    def finish(self, output: fx.Node) -> Structure:
        ret = output.args[0]
        if not isinstance(ret, fx.Node) or ret not in self.streams:
            raise self.fail(output, "returns the output inside a container, or no hidden tensor")
        segs = self.streams[ret]
        out_pid = self.perm.find(segs[0].pid)
        layers = [self.producer_of[p] for p in self.producer_of if self.perm.find(p) == out_pid]
        if len(segs) != 1 or len(layers) != 1:
            raise self.fail(
                output, f"the output is not one layer's units (it combines {layers or 'no layer'})"
            )
        out_layer = layers[0]
        m = self.modules[out_layer]
        self.perm.lose(out_pid, "tied to the network output")
        seg = segs[0]
        out_scale = self.scale.find(seg.sid)
        scale_sources = [k for s, ks in self.s_weights.items() if self.scale.find(s) == out_scale for k in ks]
        bns_after = [b for s, bs in self.s_bns.items() if self.scale.find(s) == out_scale for b in bs]
        notes: list[str] = []
        if bns_after:
            # A BN after the output layer would have to be rescaled with it; no network of the paper has one.
            bn = next(
                n for n in self.gm.graph.nodes if n.op == "call_module" and n.target == bns_after[0].bn.prefix
            )
            raise self.fail(bn, "after the output layer only scale-equivariant ops are allowed")
        # A global factor a on the output layer multiplies the outputs by a (e = 1) or leaves them as they
        # are (e = 0, a binary layer: sign(a·w) = sign(w)); a broken scale (log_softmax after it) does not.
        output_scaled = self.scale.reason[out_scale] is None and scale_sources == [f"{out_layer}.weight"]
        if not output_scaled:
            why = self.scale.reason[out_scale] or "other layers share its scale"
            notes.append(f"output layer {out_layer} left as it is: {why}")

        opening = self.opening_rows()
        groups: list[UnitGroup] = []
        fixed: list[str] = []
        roots = sorted({self.perm.find(p) for p in self.producer_of})
        for root in roots:
            members = [p for p in self.producer_of if self.perm.find(p) == root]
            weights = [k for p in members for k in self.p_weights.get(p, [])]
            if root == out_pid:
                continue
            if self.perm.reason[root] is not None:
                fixed += weights
                notes.append(f"{', '.join(weights)}: no symmetry, {self.perm.reason[root]}")
                continue
            pmembers = [p for p in range(len(self.perm.parent)) if self.perm.find(p) == root]
            scales = []
            for sroot in sorted(
                {self.scale.find(s) for s, p in enumerate(self.scale_group) if self.perm.find(p) == root}
            ):
                sids = [s for s in range(len(self.scale.parent)) if self.scale.find(s) == sroot]
                if self.scale.reason[sroot] is not None:
                    names = [k for s in sids for k in self.s_weights.get(s, [])]
                    names += [
                        f"{b.bn.prefix} γ" for s in sids for b in self.s_bns.get(s, []) if b.degree_in == 0
                    ]
                    notes.append(f"{', '.join(names)}: no scale freedom, {self.scale.reason[sroot]}")
                    continue
                rows = tuple(k for s in sids for k in self.s_weights.get(s, []))
                sc = Scale(
                    weights=rows,
                    biases=tuple(k for s in sids for k in self.s_biases.get(s, [])),
                    batchnorms=tuple(b for s in sids for b in self.s_bns.get(s, [])),
                    consumers=tuple(c for s in sids for c in self.s_consumers.get(s, [])),
                    sphere=opening.get(sroot, rows),
                )
                if sc.weights or sc.gammas:
                    scales.append(sc)
            groups.append(
                UnitGroup(
                    size=int(self.modules[self.producer_of[members[0]]].weight.shape[0]),
                    weights=tuple(weights),
                    biases=tuple(k for p in members for k in self.p_biases.get(p, [])),
                    batchnorms=tuple(b for p in pmembers for b in self.p_bns.get(p, [])),
                    consumers=tuple(c for p in pmembers for c in self.p_consumers.get(p, [])),
                    scales=tuple(scales),
                    odd=all(self.odd[p] for p in pmembers),
                )
            )
        return Structure(
            hidden=tuple(groups),
            output_weight=f"{out_layer}.weight",
            output_bias=f"{out_layer}.bias" if m.bias is not None else None,
            output_size=int(m.weight.shape[0]),
            output_scaled=output_scaled,
            fixed=tuple(fixed),
            notes=tuple(notes),
        )
