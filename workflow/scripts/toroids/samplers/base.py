"""The sampler interface, and the pieces every sampler shares (minibatch order, cosine schedule, state).

A sampler owns its networks and optimizers. :func:`toroids.train.train` drives it one epoch at a time and
saves :meth:`Sampler.state` after every epoch; a resumed run calls :meth:`Sampler.load_state` first. The
minibatch order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run replays exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from toroids.binary import clip_latent_, is_binary
from toroids.data import Dataset
from toroids.models import Network
from toroids.schedules import schedule_problem, scheduled_lr
from toroids.seeds import derive

__all__ = [
    "Sampler",
    "TrainingDiverged",
    "batch_indices",
    "batch_loss",
    "checked",
    "count_wrong",
    "flatten_parameters",
    "frozen_bn_stats",
    "make_optimizer",
    "OPTIMIZER_DEFAULTS",
]

ModelFactory = Callable[[int], Network]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}, step {step}: loss = {loss}")
        self.epoch, self.step, self.loss = epoch, step, loss


#: the optimizer's options of the samplers that step with SGD or Adam (:func:`make_optimizer`); adam's
#: momentum and nesterov are not read
OPTIMIZER_DEFAULTS: dict[str, Any] = {"optimizer": "sgd", "betas": [0.9, 0.999], "eps": 1e-8}


def make_optimizer(params: Iterable[Any], options: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer ``options["optimizer"]`` names over ``params``, at lr ``options["lr"]``, no weight decay:
    ``sgd`` (torch.optim.SGD, ``momentum``, Nesterov when ``nesterov`` and momentum > 0) or ``adam``
    (torch.optim.Adam, ``betas``, ``eps``)."""
    o = {**OPTIMIZER_DEFAULTS, **options}
    if o["optimizer"] == "adam":
        b1, b2 = (float(b) for b in o["betas"])
        return torch.optim.Adam(params, lr=o["lr"], betas=(b1, b2), eps=o["eps"])
    if o["optimizer"] != "sgd":
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {o['optimizer']!r}")
    return torch.optim.SGD(
        params, lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"] and o["momentum"] > 0
    )


def batch_indices(
    n: int,
    batch_size: int,
    seed: int,
    epoch: int,
    stream: int | str = 0,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """The minibatches of one epoch: a permutation of ``range(n)`` drawn from
    ``derive(seed, "order", stream, epoch)`` (:mod:`toroids.seeds`).

    ``stream`` gives independent orders to the replicas of replicated samplers (0, 1, …) and to other
    phases of one run (ADV's ``"pretrain"``). The last, smaller batch is kept, so every example is seen once
    per epoch.
    """
    g = torch.Generator().manual_seed(derive(seed, "order", stream, epoch))
    perm = torch.randperm(n, generator=g).to(device)
    yield from perm.split(batch_size)


def batch_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss of a minibatch: cross-entropy, or binary cross-entropy on the logit of a one-output net
    (the same convention as :func:`toroids.evaluate.evaluate`)."""
    if out.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype))
    return F.cross_entropy(out, y)


def count_wrong(out: torch.Tensor, y: torch.Tensor) -> int:
    """Misclassified samples of a minibatch: argmax, or the sign of a one-output net."""
    pred = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)
    return int((pred != y).sum())


def checked(loss: torch.Tensor, epoch: int, step: int) -> float:
    """``loss`` as a float; raises :class:`TrainingDiverged` when it is NaN or infinite."""
    value = loss.item()
    if not math.isfinite(value):
        raise TrainingDiverged(epoch, step, value)
    return value


@contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Forward passes inside this block use batch statistics but leave every BatchNorm's running statistics
    (and ``num_batches_tracked``) untouched: ``track_running_stats`` is switched off and then restored.

    Used for the extra forward passes of SAM (at w + ε) and Entropy-SGD (the later SGLD steps), so that
    running statistics are updated once per optimizer step, at the current weights.
    """
    bn = nn.modules.batchnorm._BatchNorm
    bns = [m for m in module.modules() if isinstance(m, bn) and m.track_running_stats]
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True


@torch.no_grad()
def flatten_parameters(modules: Sequence[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the parameters of same-architecture ``modules`` into the rows of one ``(len(modules), N)`` tensor.

    Afterwards every parameter of module ``a`` is a view of row ``a`` of the returned ``flat`` tensor, and its
    ``.grad`` a view of row ``a`` of the returned ``grad`` tensor (zeros), so that ``backward`` accumulates
    in place into ``grad``. An update of ``flat`` (one fused op, or an optimizer over ``[flat]`` with
    ``flat.grad = grad``) is then an update of every module, and ``load_state_dict`` (which copies in place)
    writes into ``flat``. Call it after moving the modules to their device.
    """
    params = [list(m.parameters()) for m in modules]
    first = params[0]
    if any(len(ps) != len(first) or any(p.shape != q.shape for p, q in zip(ps, first)) for ps in params):
        raise ValueError("flatten_parameters: the modules do not have the same parameter shapes")
    dtypes, devices = {p.dtype for ps in params for p in ps}, {p.device for ps in params for p in ps}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(f"flatten_parameters: mixed dtypes {dtypes} or devices {devices}")
    n = sum(p.numel() for p in first)
    flat = torch.empty(len(modules), n, dtype=dtypes.pop(), device=devices.pop())
    grad = torch.zeros_like(flat)
    for a, ps in enumerate(params):
        off = 0
        for p in ps:
            k = p.numel()
            flat[a, off : off + k].copy_(p.reshape(-1))
            p.data = flat[a, off : off + k].view_as(p)
            p.grad = grad[a, off : off + k].view_as(p)
            off += k
    return flat, grad


class Sampler(ABC):
    """One training algorithm. Subclasses implement :meth:`train_epoch` and :meth:`solution`."""

    #: option names and defaults this sampler accepts (the schema has the same defaults)
    defaults: dict[str, Any] = {}

    def __init__(
        self,
        factory: ModelFactory,
        data: Dataset,
        options: dict[str, Any],
        *,
        epochs: int,
        batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown options {sorted(unknown)}")
        self.options = {**self.defaults, **options}
        if "schedule" in self.defaults and (problem := schedule_problem(self.options)):
            raise ValueError(f"{type(self).__name__}: {problem}")
        self.data, self.epochs, self.batch_size, self.seed, self.device = (
            data,
            epochs,
            batch_size,
            seed,
            device,
        )
        self.x_train = data.x_train.to(device)
        self.y_train = data.y_train.to(device)
        self.factory = factory
        self._binary: dict[int, bool] = {}  # id(module) → has binary layers, decided on first use

    @abstractmethod
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch; return at least ``loss`` and ``train_error_running``: the means over the epoch's
        minibatches (of every replica, for replicated samplers) of the loss and of the misclassified
        fraction, each taken before its step. An epoch with nothing to do returns ``{"skipped": 1.0}``."""

    @abstractmethod
    def solution(self) -> Network:
        """The network this sampler returns (for replicated samplers, e.g. the centre)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The networks whose state must be checkpointed, by name."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers whose per-parameter buffers must be checkpointed, by name."""

    def state(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume: every network's state dict and every optimizer's buffers."""
        out: dict[str, torch.Tensor] = {}
        for name, mod in self.modules().items():
            out.update({f"{name}/{k}": v for k, v in mod.state_dict().items()})
        for name, opt in self.optimizers().items():
            for i, group in enumerate(opt.param_groups):
                for j, p in enumerate(group["params"]):
                    for key, buf in opt.state.get(p, {}).items():
                        if isinstance(buf, torch.Tensor):
                            out[f"{name}.optim/{i}.{j}.{key}"] = buf
        return out

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state`; raises ``KeyError`` naming a missing tensor."""
        for name, mod in self.modules().items():
            prefix = f"{name}/"
            mod.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        for name, opt in self.optimizers().items():
            prefix = f"{name}.optim/"
            for key, buf in state.items():
                if key.startswith(prefix):
                    i, j, buf_name = key[len(prefix) :].split(".", 2)
                    p = opt.param_groups[int(i)]["params"][int(j)]
                    # Adam keeps its step counter on the CPU (unless capturable or fused)
                    cpu_step = isinstance(opt, torch.optim.Adam) and buf_name == "step"
                    opt.state[p][buf_name] = buf.to("cpu" if cpu_step else p.device).clone()

    @classmethod
    def total_epochs(cls, epochs: int, options: Mapping[str, Any]) -> int:
        """How many times the train loop calls :meth:`train_epoch` for a run of ``epochs`` (the config's
        ``training.epochs``). Equal to ``epochs`` except for samplers with an extra phase (``adv``)."""
        return epochs

    def resolved_options(self) -> dict[str, Any]:
        """The options as used, automatic values resolved (for ``meta.json``): without the settings of the
        optimizer not chosen (Adam reads no momentum or Nesterov flag, SGD no betas or eps), so that a record
        does not show a momentum that no step used."""
        out = dict(self.options)
        if "optimizer" in out:
            for key in ("momentum", "nesterov") if out["optimizer"] == "adam" else ("betas", "eps"):
                out.pop(key, None)
        return out

    def describe(self, stats: Mapping[str, float]) -> str:
        """What an epoch's log line adds to the loss and errors, from :meth:`train_epoch`'s ``stats``."""
        return ""

    def summary(self) -> dict[str, Any]:
        """What the run did beyond its weights and errors, for ``meta.json`` (e.g. ADV's random-label
        accuracy, RSGD's replica spread). Called after the last epoch."""
        return {}

    def clip_binary(self, *modules: nn.Module) -> None:
        """BinaryNet: after every update, clamp the latent weights of binary layers to [−1, 1] (their signs
        are what the network computes with; unbounded magnitudes would freeze them). No-op otherwise."""
        for m in modules:
            flag = self._binary.get(id(m))
            if flag is None:  # decided once per network: the walk over its modules is not free per step
                flag = self._binary[id(m)] = is_binary(m)
            if flag:
                clip_latent_(m)

    def lr_at(self, epoch: int) -> float:
        """The lr of (0-based) ``epoch`` of the run's ``epochs``: :func:`scheduled_lr` of the options (cosine
        for samplers without schedule options)."""
        return scheduled_lr(self.options["lr"], epoch, self.epochs, self.options)

    def _set_lr(self, opt: torch.optim.Optimizer, lr: float) -> None:
        for group in opt.param_groups:
            group["lr"] = lr
