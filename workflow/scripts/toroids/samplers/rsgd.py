"""Replicated SGD (RSGD; Pittorino et al. 2021, the robust ensemble of Baldassi et al.), the paper's "RSGD".

y replicas w_1..w_y, independently initialized (``factory(a)``), each with its own minibatch stream
(``batch_indices(..., stream=a)``: every replica sees every example once per epoch, in its own order),
coupled to their centre of mass w̄ = (1/y) Σ_a w_a. Objective of one step:

    Σ_a L(w_a; B_a) + γ_t Σ_a ‖w_a − w̄‖²

with w̄ held constant (detached; its own gradient would vanish since Σ_a (w_a − w̄) = 0), so replica a's
gradient is g_a = ∇L(w_a; B_a) + 2 γ_t (w_a − w̄). Each replica takes a Nesterov-momentum step with its own
buffer (PyTorch's form, lr η_e = cosine_lr(lr, e, E) or the ``schedule``'s, no ×y rescaling: lr is the
per-replica step), or, with
``optimizer: adam`` (the paper's deep binary nets, whose "SGD" and RSGD both step with Adam), an Adam step
on that same g_a with its own moments: the coupling enters the gradient Adam normalizes, as a replica's
data term does (``coupling_cap`` must then be null: Adam's step is not 2ηγ). All
``parameters()`` are coupled (weights, biases, BN γ/β); buffers (BN running statistics) are not, each
replica keeps its own.

Scoping: γ_t = γ0 (1 + γ1)^t, t = the 0-based epoch (``gamma_unit: epoch``, the authors' code) or the
0-based global minibatch step (``gamma_unit: step``).

* ``gamma0: null`` (automatic, computed once from the initial replicas, before any training):
  γ0 = mean_a L_train(w_a) / mean_a ‖w_a − w̄‖², the replicas' mean cross-entropy over the full train set
  (eval mode) over their mean squared distance to the centre, summed over all parameters: the coupling term
  starts equal to the data term.
* ``gamma1: null`` (automatic): γ1 = gmax^(1/T) − 1, T = epochs (or epochs × steps per epoch for
  ``gamma_unit: step``): γ grows by the factor ``gmax`` over the run.
* ``coupling_cap`` (null = none, the authors' behaviour): if set to c, γ is clipped to c / (2η) so that the
  per-step elastic contraction 2ηγ never exceeds c; epochs where the clip acted report ``coupling_capped``.

Returned network (``returns``): ``center`` (default) is a separate network whose parameters and floating
buffers (BN running mean/var) are the replica means; integer buffers (BN ``num_batches_tracked``) are
replica 0's. In binary layers the centre is the centre of the *binarized* replicas, as in Baldassi et al.'s
binary committee-machine code: its latent weights are mean_a sign(w_a), whose sign is the majority vote of
the replicas' binary weights (an even tie gives 0, i.e. +1), and its BatchNorm running statistics are
recomputed on the train data (one pass, momentum None): the replicas' mean statistics belong to no network
the vote produced. The centre of the latent weights instead,
sign(mean_a w_a), is a configuration no replica trained: it weights each sign by a magnitude that the
binary network never computes with, and was measured not to be a solution when the replicas were
(1.65 % train error against replicas at 0.22 %). ``replica`` returns (a copy of) replica 0.

Implementation. The replicas' parameters live in the rows of one ``(y, N)`` tensor (see
:func:`~toroids.samplers.base.flatten_parameters`), their gradients in another, so the coupling is one
fused update over all replicas and parameters, ``grad += 2γ flat − 2γ flat.mean(0)`` (no Python loop over
parameters), and one SGD optimizer over the y rows (one momentum buffer per replica) steps them all.
Forward/backward: ``stacked: false`` (default) runs each replica in turn; ``stacked: true`` runs all of them
in one ``torch.func.vmap`` of ``functional_call`` over stacked parameters and buffers (BatchNorm included;
architectures vmap cannot batch, such as the binary nets' custom autograd.Function, are refused at
construction). Both give the same updates up to floating-point rounding; benchmarks/bench_samplers.py
measures which is faster (on the 2-core CPU: neither pays off clearly, so the default is sequential).

Extra per-epoch stats: ``gamma`` (γ of the epoch's last step, after any clip), ``coupling_step``
(the epoch's largest 2ηγ), ``max_coupling_step`` (largest 2ηγ so far in the run), ``coupling_capped``
(0/1), ``sq_distance`` (mean_a ‖w_a − w̄‖² at the end of the epoch).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from toroids.binary import binarize, binary_keys
from toroids.evaluate import evaluate, has_batchnorm, recompute_bn_stats
from toroids.models import Network
from toroids.samplers.base import (
    OPTIMIZER_DEFAULTS,
    Sampler,
    TrainingDiverged,
    batch_indices,
    batch_loss,
    checked,
    count_wrong,
    flatten_parameters,
    frozen_bn_stats,
    make_optimizer,
)
from toroids.schedules import SCHEDULE_DEFAULTS

__all__ = ["RSGD"]


class RSGD(Sampler):
    """y coupled replicas, SGD-Nesterov each, exponential γ scoping; returns their centre of mass."""

    defaults: dict[str, Any] = {
        "replicas": 5,
        "lr": 0.05,
        "momentum": 0.9,
        "nesterov": True,
        "gamma0": None,
        "gamma1": None,
        "gmax": 1e4,
        "gamma_unit": "epoch",
        "coupling_cap": 1.0,
        "returns": "center",
        "stacked": False,
        **OPTIMIZER_DEFAULTS,
        **SCHEDULE_DEFAULTS,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        self._check_options()
        y = self.n_replicas = int(o["replicas"])
        self.replicas = [self.factory(a).to(self.device) for a in range(y)]
        self.flat, self.grad = flatten_parameters(self.replicas)
        # The optimizer steps the replicas' rows (one momentum buffer per replica): row-wise updates stay in
        # cache on the CPU, measured faster than one update of the whole (y, N) tensor.
        self.rows = list(self.flat.unbind(0))
        for row, grad in zip(self.rows, self.grad.unbind(0)):
            row.grad = grad
        # with adam, per element: each row (replica) keeps its own moments
        self.opt = make_optimizer(self.rows, o)
        # the returned network: parameters in one flat row too, so that the centre is one op
        self.out = self.factory(0).to(self.device)
        self.out_flat = flatten_parameters([self.out])[0][0]
        for p in self.out.parameters():
            p.grad = None
        self.vote_slices = self._binary_slices()
        self.has_bn = has_batchnorm(self.out)
        self.steps_per_epoch = math.ceil(len(self.y_train) / self.batch_size)
        if o["stacked"]:
            self._setup_stacked()
        self.rep_buffers = [dict(r.named_buffers()) for r in self.replicas]
        self.gamma0 = float(o["gamma0"]) if o["gamma0"] is not None else self._auto_gamma0()
        if o["gamma1"] is not None:
            self.gamma1 = float(o["gamma1"])
        else:
            horizon = self.epochs * (self.steps_per_epoch if o["gamma_unit"] == "step" else 1)
            self.gamma1 = float(o["gmax"]) ** (1.0 / horizon) - 1.0

    # ------------------------------------------------------------------------------------------ setup

    def _check_options(self) -> None:
        o = self.options
        if isinstance(o["replicas"], bool) or not isinstance(o["replicas"], int) or o["replicas"] < 1:
            raise ValueError(f"rsgd: replicas must be an integer ≥ 1, got {o['replicas']!r}")
        if o["gamma_unit"] not in ("epoch", "step"):
            raise ValueError(f"rsgd: gamma_unit must be 'epoch' or 'step', got {o['gamma_unit']!r}")
        if o["returns"] not in ("center", "replica"):
            raise ValueError(f"rsgd: returns must be 'center' or 'replica', got {o['returns']!r}")
        if not o["gmax"] > 0:
            raise ValueError(f"rsgd: gmax must be > 0, got {o['gmax']!r}")
        if o["coupling_cap"] is not None and not o["coupling_cap"] > 0:
            raise ValueError(f"rsgd: coupling_cap must be null or > 0, got {o['coupling_cap']!r}")
        if o["optimizer"] not in ("sgd", "adam"):
            raise ValueError(f"rsgd: optimizer must be 'sgd' or 'adam', got {o['optimizer']!r}")
        if o["optimizer"] == "adam" and o["coupling_cap"] is not None:
            raise ValueError(
                "rsgd: coupling_cap bounds SGD's elastic step 2ηγ, which Adam's normalized step does not "
                "take: set coupling_cap: null with optimizer: adam"
            )
        for key in ("gamma0", "gamma1"):
            if o[key] is not None and not o[key] >= 0:
                raise ValueError(f"rsgd: {key} must be null (automatic) or ≥ 0, got {o[key]!r}")

    def _setup_stacked(self) -> None:
        """Stacked buffers (the replicas' buffers become views of them) and the vmapped forward."""
        template, k = self.replicas[0], self.n_replicas
        # One autograd leaf per parameter, (y, *shape), whose data and grad are (strided) views of the flat
        # tensors: backward accumulates straight into self.grad (slicing one big leaf instead would
        # materialize a (y, N) gradient per parameter, measured 2× slower).
        self.stacked_params: dict[str, torch.Tensor] = {}
        off = 0
        for name, p in template.named_parameters():
            size = p.numel()
            leaf = torch.empty(0, dtype=self.flat.dtype, device=self.flat.device, requires_grad=True)
            leaf.data = self.flat[:, off : off + size].view(k, *p.shape)
            leaf.grad = self.grad[:, off : off + size].view(k, *p.shape)
            self.stacked_params[name] = leaf
            off += size
        self.stacked_buffers: dict[str, torch.Tensor] = {}
        for name, _ in template.named_buffers():
            stack = torch.stack([r.get_buffer(name).detach() for r in self.replicas])
            self.stacked_buffers[name] = stack
            owner, _, attr = name.rpartition(".")
            for a, r in enumerate(self.replicas):
                r.get_submodule(owner)._buffers[attr] = stack[a]

        def forward(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
            return functional_call(template, (params, buffers), (x,))

        self.vmapped = vmap(forward)
        # A dry run on two samples (no gradient, running statistics untouched): an architecture vmap cannot
        # batch (e.g. a custom autograd.Function without a vmap rule) fails here, not mid-training.
        x = self.x_train[:2].expand(self.n_replicas, *self.x_train[:2].shape)
        try:
            with torch.no_grad(), frozen_bn_stats(template):
                self.vmapped(self.stacked_params, self.stacked_buffers, x)
        except Exception as exc:  # any failure of torch.func on this architecture
            raise ValueError(
                f"rsgd: stacked: true does not support this architecture ({type(exc).__name__}: {exc}); "
                "use stacked: false"
            ) from exc

    def _binary_slices(self) -> list[slice]:
        """The columns of :attr:`flat` that hold the latent weights of trainable binary layers."""
        keys, out, off = set(binary_keys(self.replicas[0])), [], 0
        for name, p in self.replicas[0].named_parameters():
            if name in keys:
                out.append(slice(off, off + p.numel()))
            off += p.numel()
        return out

    @torch.no_grad()
    def _auto_gamma0(self) -> float:
        if self.n_replicas == 1:
            return 0.0
        losses = [evaluate(r, self.x_train, self.y_train).loss for r in self.replicas]
        dist = float(((self.flat - self.flat.mean(0)) ** 2).sum(1).mean())
        if not dist > 0:
            raise ValueError(
                "rsgd: automatic gamma0 needs distinct replica initializations (their distance to the "
                "centre is 0); set gamma0 explicitly"
            )
        return sum(losses) / len(losses) / dist

    # ------------------------------------------------------------------------------------------ schedule

    def gamma(self, epoch: int, step: int = 0) -> float:
        """γ_t of minibatch ``step`` of ``epoch`` (0-based), before any ``coupling_cap``."""
        t = epoch if self.options["gamma_unit"] == "epoch" else epoch * self.steps_per_epoch + step
        return self.gamma0 * (1.0 + self.gamma1) ** t

    def _gamma_eff(self, epoch: int, step: int, lr: float) -> tuple[float, bool]:
        g, cap = self.gamma(epoch, step), self.options["coupling_cap"]
        if cap is not None and lr > 0 and 2 * lr * g > cap:
            return cap / (2 * lr), True
        return g, False

    def _coupling_step(self, epoch: int) -> tuple[float, bool]:
        """The largest 2ηγ of ``epoch`` (at its last step: γ never decreases) and whether it was capped."""
        lr = self.lr_at(epoch)
        g, capped = self._gamma_eff(epoch, self.steps_per_epoch - 1, lr)
        return 2 * lr * g, capped

    # ------------------------------------------------------------------------------------------ training

    def train_epoch(self, epoch: int) -> dict[str, float]:
        lr = self.lr_at(epoch)
        self._set_lr(self.opt, lr)
        for r in self.replicas:
            r.train()
        n = len(self.y_train)
        streams = [
            batch_indices(n, self.batch_size, self.seed, epoch, stream=a, device=self.device)
            for a in range(self.n_replicas)
        ]
        total, wrong, seen, capped_any, g = 0.0, 0, 0, False, 0.0
        for step, idxs in enumerate(zip(*streams)):
            self.grad.zero_()
            if self.options["stacked"]:
                t, w, s = self._forward_backward_stacked(idxs, epoch, step)
            else:
                t, w, s = self._forward_backward_sequential(idxs, epoch, step)
            total, wrong, seen = total + t, wrong + w, seen + s
            g, capped = self._gamma_eff(epoch, step, lr)
            capped_any |= capped
            if g != 0.0:
                self.couple(g)
            self.opt.step()
            self.clip_binary(*self.replicas)
        with torch.no_grad():
            sq = float(((self.flat - self.flat.mean(0)) ** 2).sum(1).mean())
        return {
            "loss": total / seen,
            "train_error_running": wrong / seen,
            "gamma": g,
            "coupling_step": self._coupling_step(epoch)[0],
            "max_coupling_step": max(self._coupling_step(e)[0] for e in range(epoch + 1)),
            "coupling_capped": float(capped_any),
            "sq_distance": sq,
        }

    @torch.no_grad()
    def couple(self, gamma: float) -> None:
        """Add the elastic term to every replica's gradient, one fused update: grad_a += 2γ (w_a − w̄)."""
        centre = self.flat.mean(0)
        self.grad.add_(self.flat, alpha=2.0 * gamma).sub_(centre, alpha=2.0 * gamma)

    def _forward_backward_sequential(
        self, idxs: tuple[torch.Tensor, ...], epoch: int, step: int
    ) -> tuple[float, int, int]:
        total, wrong, seen = 0.0, 0, 0
        for r, idx in zip(self.replicas, idxs):
            x, y = self.x_train[idx], self.y_train[idx]
            out = r(x)
            loss = batch_loss(out, y)
            value = checked(loss, epoch, step)
            loss.backward()  # accumulates into this replica's row of self.grad
            total += value * len(y)
            wrong += count_wrong(out, y)
            seen += len(y)
        return total, wrong, seen

    def _forward_backward_stacked(
        self, idxs: tuple[torch.Tensor, ...], epoch: int, step: int
    ) -> tuple[float, int, int]:
        idx = torch.stack(idxs)  # every replica's step-s batch has the same size
        x, y = self.x_train[idx], self.y_train[idx]
        k = self.n_replicas
        out = self.vmapped(self.stacked_params, self.stacked_buffers, x)  # (y, b, C)
        flat_out, flat_y = out.flatten(0, 1), y.flatten()
        if out.shape[-1] == 1:
            per_sample = F.binary_cross_entropy_with_logits(
                flat_out[:, 0], flat_y.to(out.dtype), reduction="none"
            )
        else:
            per_sample = F.cross_entropy(flat_out, flat_y, reduction="none")
        losses = per_sample.view(k, -1).mean(1)
        values = losses.tolist()
        for v in values:
            if not math.isfinite(v):
                raise TrainingDiverged(epoch, step, v)
        with warnings.catch_warnings():
            # the grads are strided views of self.grad on purpose (accumulated in place): not a problem
            warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")
            losses.sum().backward()  # accumulates into self.grad, through the stacked leaves' grad views
        b = idx.shape[1]
        return sum(values) * b, count_wrong(flat_out, flat_y), k * b

    # ------------------------------------------------------------------------------------------ outputs

    @torch.no_grad()
    def solution(self) -> Network:
        if self.options["returns"] == "center":
            torch.mean(self.flat, 0, out=self.out_flat)
            for cols in self.vote_slices:  # binary layers: the majority of the replicas' signs
                torch.mean(binarize(self.flat[:, cols]), 0, out=self.out_flat[cols])
            for name, buf in self.out.named_buffers():
                values = [bufs[name] for bufs in self.rep_buffers]
                buf.copy_(torch.stack(values).mean(0) if buf.is_floating_point() else values[0])
            if self.vote_slices and self.has_bn:
                # the replicas' mean statistics belong to no replica of a voted network: its own, from
                # one pass over the train data
                self.out.load_state_dict(recompute_bn_stats(self.out, self.out.state_dict(), self.x_train))
        else:
            self.out_flat.copy_(self.flat[0])
            for name, buf in self.out.named_buffers():
                buf.copy_(self.rep_buffers[0][name])
        return self.out

    def describe(self, stats: Mapping[str, float]) -> str:
        return f"γ {stats['gamma']:.4g}  mean ‖w_a − w̄‖² {stats['sq_distance']:.4g}"

    @torch.no_grad()
    def summary(self) -> dict[str, Any]:
        """Each replica's train error (eval mode, whole train set) beside the returned network's, the mean
        squared distance of the replicas to their centre and, for binary networks, the fraction of binary
        weights in which each replica differs from the returned network (the replicas' collapse)."""
        out: dict[str, Any] = {
            "replica_train_errors": [evaluate(r, self.x_train, self.y_train).error for r in self.replicas],
            "sq_distance": float(((self.flat - self.flat.mean(0)) ** 2).sum(1).mean()),
        }
        if self.has_bn:
            voted = self.vote_slices and self.options["returns"] == "center"
            out["bn_statistics"] = "recomputed on the train data" if voted else "mean of the replicas'"
        if self.vote_slices:
            self.solution()  # out_flat up to date
            signs = torch.cat([binarize(self.flat[:, c]) for c in self.vote_slices], 1)  # (y, binary weights)
            returned = torch.cat([binarize(self.out_flat[c]) for c in self.vote_slices])
            out["replica_hamming_to_returned"] = (signs != returned).double().mean(1).tolist()
        return out

    def modules(self) -> dict[str, nn.Module]:
        return {f"replica{a}": r for a, r in enumerate(self.replicas)}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"replicas": self.opt}

    def state(self) -> dict[str, torch.Tensor]:
        out = super().state()
        out["rsgd/gamma"] = torch.tensor([self.gamma0, self.gamma1], dtype=torch.float64)
        return out

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state(state)
        self.gamma0, self.gamma1 = (float(v) for v in state["rsgd/gamma"])

    def resolved_options(self) -> dict[str, Any]:
        return {**super().resolved_options(), "gamma0": self.gamma0, "gamma1": self.gamma1}
