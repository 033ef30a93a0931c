"""Adversarial initialization (Liu, Papailiopoulos & Achlioptas, NeurIPS 2020), the paper's "ADV" sampler.

Two phases in one run of at most ``pretrain_epochs + epochs`` epochs (:meth:`ADV.total_epochs`), as in Liu
et al.'s code (samplers digest §4.2–4.3):

1. Pre-training on the *confusion set*: R noisy copies of every train input, and nothing else (the clean
   train set joins only with ``include_clean: true``). Copy r of input i has exactly ⌊ζ·D⌋ of its D scalar
   entries (channel values, not whole pixels), drawn without replacement independently per copy, set to
   the value a raw 0 takes after standardization (−μ_c/σ_c, :attr:`toroids.data.Dataset.raw_zero`; 0 for
   unstandardized inputs), and a label drawn uniformly from the classes, independently per copy.
   ``zero_fraction: null`` (the default) is ζ = 0.1 for continuous networks on standardized images and
   ζ = 0 for binary networks and the teacher data: the paper's binary ADV randomizes labels only (§5.3).
   Labels and masks come from a generator seeded by ``derive(seed, "confusion")``; the minibatch order of
   pre-training epoch e from stream ``"pretrain"``.
   Optimizer: SGD with momentum ``pretrain_momentum`` (0), no weight decay, lr ``pretrain_lr`` (0.1)
   multiplied by ``pretrain_lr_factor`` (0.1) at each epoch of ``pretrain_milestones`` ([150, 250]).
   After every pre-training epoch (Liu et al. check every 25) the accuracy on the noisy copies' random
   labels is measured (eval mode, all copies); pre-training stops once it reaches ``pretrain_target``
   (0.99; null: run every epoch), and after ``pretrain_epochs`` (350) at the latest. The remaining
   pre-training epochs are then skipped:
   :meth:`train_epoch` returns ``{"skipped": 1.0}`` without training, and the train loop neither logs nor
   records them. :meth:`summary` says whether the target was reached.
2. Main phase: vanilla SGD on the clean train set from the pre-trained weights (nothing re-initialized), lr
   ``lr`` with cosine annealing over the E main epochs, momentum ``momentum`` (0 in the paper), a fresh
   optimizer; minibatch orders of stream 0. The paper's binary ConvNet steps this phase with Adam, lr 0.01
   halved at epochs 10, 20, 50 and then every 50 (``optimizer: adam``, ``schedule: step``,
   ``lr_milestones: [10, 20, 50]``, ``lr_every: 50``; :func:`toroids.schedules.scheduled_lr`).

Extra per-epoch stats: ``phase`` (0 pre-training, 1 main) and, in pre-training rows,
``random_label_accuracy`` (chance is 1/n_classes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from toroids.binary import is_binary
from toroids.samplers.base import OPTIMIZER_DEFAULTS, batch_indices, count_wrong
from toroids.samplers.sgd import SGD
from toroids.schedules import SCHEDULE_DEFAULTS, scheduled_lr
from toroids.seeds import derive

__all__ = ["ADV", "CONTINUOUS_ZERO_FRACTION"]

#: ζ of ``zero_fraction: null`` for continuous networks (the paper's "10% of the pixels"); binary: 0
CONTINUOUS_ZERO_FRACTION = 0.1


class ADV(SGD):
    """Pre-train on R random-label copies (10% of the raw entries zeroed) until they are fitted; then
    vanilla SGD on the clean data."""

    defaults: dict[str, Any] = {
        "R": 1,
        "zero_fraction": None,
        "include_clean": False,
        "pretrain_epochs": 350,
        "pretrain_lr": 0.1,
        "pretrain_momentum": 0.0,
        "pretrain_milestones": [150, 250],
        "pretrain_lr_factor": 0.1,
        "pretrain_target": 0.99,
        "lr": 0.02,
        "momentum": 0.0,
        "nesterov": False,
        **OPTIMIZER_DEFAULTS,
        **SCHEDULE_DEFAULTS,
    }

    @classmethod
    def total_epochs(cls, epochs: int, options: Mapping[str, Any]) -> int:
        """At most ``pretrain_epochs`` pre-training epochs, then ``epochs`` main epochs."""
        return epochs + int({**cls.defaults, **options}["pretrain_epochs"])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        if isinstance(o["R"], bool) or not isinstance(o["R"], int) or o["R"] < 1:
            raise ValueError(f"adv: R must be an integer ≥ 1, got {o['R']!r}")
        if o["zero_fraction"] is None:  # pixels of images, for a continuous network; labels only otherwise
            images = self.data.raw_zero is not None
            o["zero_fraction"] = CONTINUOUS_ZERO_FRACTION if images and not is_binary(self.model) else 0.0
        if not 0 <= o["zero_fraction"] < 1:
            raise ValueError(f"adv: zero_fraction must be null or in [0, 1), got {o['zero_fraction']!r}")
        if o["pretrain_target"] is not None and not 0 < o["pretrain_target"] <= 1:
            raise ValueError(f"adv: pretrain_target must be null or in (0, 1], got {o['pretrain_target']!r}")
        p = o["pretrain_epochs"]
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise ValueError(f"adv: pretrain_epochs must be an integer ≥ 0, got {p!r}")
        if not o["pretrain_lr_factor"] > 0:
            raise ValueError(f"adv: pretrain_lr_factor must be > 0, got {o['pretrain_lr_factor']!r}")
        self.pretrain_epochs = p
        self.main_opt = self.opt
        self.pre_opt = torch.optim.SGD(
            self.model.parameters(), lr=o["pretrain_lr"], momentum=o["pretrain_momentum"]
        )
        self._build_confusion_set()
        # [epochs of pre-training done, the random-label accuracy after the last one, 1 if stopped at the
        # target]: a tensor so that it travels in the epoch checkpoint
        self.progress = torch.tensor([0.0, math.nan, 0.0], dtype=torch.float64)

    # --------------------------------------------------------------------------------- confusion set

    def _build_confusion_set(self) -> None:
        o, x = self.options, self.data.x_train
        n, shape = len(self.data.y_train), tuple(x.shape[1:])
        d = math.prod(shape)
        k = int(math.floor(o["zero_fraction"] * d))
        copies = o["R"] * n
        gen = torch.Generator().manual_seed(derive(self.seed, "confusion"))
        labels = torch.randint(self.data.n_classes, (copies,), generator=gen)
        zero_idx = torch.empty(copies, k, dtype=torch.int32)
        for s in range(0, copies, 4096):
            c = min(4096, copies - s)
            zero_idx[s : s + c] = torch.rand(c, d, generator=gen).topk(k, dim=1).indices.to(torch.int32)
        raw_zero = self.data.raw_zero
        if raw_zero is None:  # inputs that were not standardized: a raw 0 is 0
            zero_value = torch.zeros(d, dtype=x.dtype)
        else:  # per channel, broadcast over the remaining axes
            zero_value = raw_zero.to(x.dtype).view(-1, *([1] * (len(shape) - 1))).expand(shape).reshape(-1)
        self.rand_labels = labels.to(self.device)
        self.zero_idx = zero_idx.to(self.device)
        self.zero_value = zero_value.to(self.device)
        self.clean_offset = n if o["include_clean"] else 0
        self.pretrain_size = self.clean_offset + copies

    def noisy_copies(self, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and random labels of noisy copies ``j`` (copy r of train input i is j = r·n + i)."""
        j = j.to(self.device)
        x = self.x_train[j % len(self.y_train)]
        flat = x.view(len(j), -1)
        zi = self.zero_idx[j].long()
        flat.scatter_(1, zi, self.zero_value[zi])
        return x, self.rand_labels[j]

    def pretrain_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Minibatch ``idx`` of the confusion set: ``[0, n)`` clean (if included), then the noisy copies."""
        n = len(self.y_train)
        x, y = self.x_train[idx % n], self.y_train[idx % n].clone()
        sel = (idx >= self.clean_offset).nonzero().squeeze(1)
        if sel.numel():
            x[sel], y[sel] = self.noisy_copies(idx[sel] - self.clean_offset)
        return x, y

    @torch.no_grad()
    def random_label_accuracy(self, chunk_size: int = 8192) -> float:
        """Accuracy (eval mode) of the current network on the random labels of the noisy copies."""
        was = self.model.training
        self.model.eval()
        wrong, copies = 0, len(self.rand_labels)
        try:
            for j in torch.arange(copies, device=self.device).split(chunk_size):
                x, y = self.noisy_copies(j)
                wrong += count_wrong(self.model(x), y)
        finally:
            self.model.train(was)
        return 1.0 - wrong / copies

    def pretrain_lr(self, epoch: int) -> float:
        """The pre-training lr of (0-based) ``epoch``: ``pretrain_lr · factor^(milestones ≤ epoch)``, the step
        schedule of :func:`toroids.schedules.scheduled_lr` (constant without milestones)."""
        o = self.options
        steps = {
            "schedule": "step",
            "lr_milestones": o["pretrain_milestones"],
            "lr_factor": o["pretrain_lr_factor"],
        }
        return scheduled_lr(o["pretrain_lr"], epoch, self.pretrain_epochs, steps)

    # -------------------------------------------------------------------------------------- training

    def train_epoch(self, epoch: int) -> dict[str, float]:
        o, p = self.options, self.pretrain_epochs
        if epoch < p:
            if self.progress[2] > 0:  # the target was reached: the rest of the pre-training is skipped
                return {"skipped": 1.0}
            self.opt = self.pre_opt
            self._set_lr(self.opt, self.pretrain_lr(epoch))
            order = batch_indices(self.pretrain_size, self.batch_size, self.seed, epoch, stream="pretrain")
            stats = self._run_pretrain_epoch(epoch, order)
            acc = self.random_label_accuracy()
            target = o["pretrain_target"]
            reached = target is not None and acc >= target
            self.progress = torch.tensor([epoch + 1, acc, float(reached)], dtype=torch.float64)
            return {**stats, "random_label_accuracy": acc, "phase": 0.0}
        self.opt = self.main_opt
        self._set_lr(self.opt, self.lr_at(epoch - p))
        order = batch_indices(len(self.y_train), self.batch_size, self.seed, epoch - p, device=self.device)
        stats = self._run_epoch(epoch, order)
        return {**stats, "phase": 1.0}

    def _run_pretrain_epoch(self, epoch: int, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        self.model.train()
        total, wrong, seen = 0.0, 0, 0
        for step, idx in enumerate(batches):
            x, y = self.pretrain_batch(idx.to(self.device))
            loss, out = self._step(x, y, epoch, step)
            total += loss * len(y)
            wrong += count_wrong(out, y)
            seen += len(y)
        return {"loss": total / seen, "train_error_running": wrong / seen}

    def describe(self, stats: Mapping[str, float]) -> str:
        if stats.get("phase") == 0.0:
            return f"[pre-training on random labels] random-label acc {stats['random_label_accuracy']:.4f}"
        return "[main phase]"

    def summary(self) -> dict[str, Any]:
        """``pretrain_epochs_run``, ``random_label_accuracy`` after the last of them, ``pretrain_target``,
        ``pretrain_target_reached`` (None when there is no target) and a warning when it was missed."""
        done, acc, reached = (float(v) for v in self.progress)
        target = self.options["pretrain_target"]
        out: dict[str, Any] = {
            "pretrain_epochs_run": int(done),
            "random_label_accuracy": None if math.isnan(acc) else acc,
            "pretrain_target": target,
            "pretrain_target_reached": None if target is None else bool(reached),
        }
        if target is not None and not reached:
            out["warnings"] = [
                f"adv pre-training missed its target: random-label accuracy {acc:.4f} < {target} after "
                f"{int(done)} epochs (pretrain_epochs = {self.pretrain_epochs}); this network is not "
                "adversarially initialized as Liu et al. define it"
            ]
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"pretrain": self.pre_opt, "model": self.main_opt}

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def state(self) -> dict[str, torch.Tensor]:
        return {**super().state(), "adv/progress": self.progress.clone()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state(state)
        self.progress = state["adv/progress"].to(torch.float64).clone()
