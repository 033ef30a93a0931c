"""Adversarial initialization (Liu, Papailiopoulos & Achlioptas, NeurIPS 2020), the paper's "ADV" sampler.

Two phases in one run of ``pretrain_epochs + epochs`` epochs (:meth:`ADV.total_epochs`):

1. Pre-training (epochs 0 .. P−1) on the confusion set: the clean train set (``include_clean``) plus R noisy
   copies of every train input. Copy r of input i has exactly ⌊ζ·D⌋ of its D scalar entries (channel values,
   not whole pixels), drawn without replacement independently per copy, set to the value a raw 0 has after
   standardization (per channel: the train set's minimum of that channel, for image inputs ``(C, H, W)``;
   0 for vector inputs), and a label drawn uniformly from the classes, independently per copy. Labels and
   masks come from a ``torch.Generator`` seeded by the model seed, so the confusion set is a deterministic
   function of (seed, data, R, ζ). Optimizer: plain SGD, lr ``pretrain_lr`` annealed by a cosine over the P
   epochs, momentum ``pretrain_momentum`` (0: Liu et al.'s code), no weight decay. After each pre-training
   epoch the exact accuracy on the noisy copies (eval mode) is measured; once it reaches ``pretrain_target``
   (null: never stop early) the remaining pre-training epochs are skipped (their history rows repeat the
   last trained epoch's numbers, with ``skipped: 1``).
2. Main phase (epochs P .. P+E−1): vanilla SGD on the clean train set from the pre-trained weights (nothing
   re-initialized), lr ``lr`` with cosine annealing over the E main epochs, momentum ``momentum`` (0 in the
   paper), fresh optimizer. Its minibatch order is the one an SGD run of the same seed sees.

Extra per-epoch stats: ``phase`` (0 pre-training, 1 main), ``skipped`` (0/1), and in pre-training rows
``random_label_accuracy`` (accuracy on the R noisy copies' random labels; chance is 1/n_classes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from toroids.samplers.base import batch_indices, cosine_lr, count_wrong
from toroids.samplers.sgd import SGD

__all__ = ["ADV"]


class ADV(SGD):
    """Pre-train on clean data + R random-label, 10%-zeroed copies; then vanilla SGD on the clean data."""

    defaults: dict[str, Any] = {
        "R": 1,
        "zero_fraction": 0.1,
        "include_clean": True,
        "pretrain_epochs": None,
        "pretrain_lr": 0.1,
        "pretrain_momentum": 0.0,
        "pretrain_target": 0.9999,
        "lr": 0.02,
        "momentum": 0.0,
        "nesterov": False,
    }

    @classmethod
    def total_epochs(cls, epochs: int, options: Mapping[str, Any]) -> int:
        """``pretrain_epochs`` (null: ``epochs``) pre-training epochs, then ``epochs`` main epochs."""
        p = {**cls.defaults, **options}["pretrain_epochs"]
        return epochs + (epochs if p is None else int(p))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        if isinstance(o["R"], bool) or not isinstance(o["R"], int) or o["R"] < 1:
            raise ValueError(f"adv: R must be an integer ≥ 1, got {o['R']!r}")
        if not 0 <= o["zero_fraction"] < 1:
            raise ValueError(f"adv: zero_fraction must be in [0, 1), got {o['zero_fraction']!r}")
        if o["pretrain_target"] is not None and not 0 < o["pretrain_target"] <= 1:
            raise ValueError(f"adv: pretrain_target must be null or in (0, 1], got {o['pretrain_target']!r}")
        p = o["pretrain_epochs"]
        self.pretrain_epochs = self.epochs if p is None else int(p)
        if self.pretrain_epochs < 0:
            raise ValueError(f"adv: pretrain_epochs must be ≥ 0, got {p!r}")
        self.main_opt = self.opt
        self.pre_opt = torch.optim.SGD(
            self.model.parameters(), lr=o["pretrain_lr"], momentum=o["pretrain_momentum"]
        )
        self._build_confusion_set()
        # -1: pre-training not stopped early; else the epoch it reached its target. Then the last trained
        # pre-training epoch's loss, running error and random-label accuracy (repeated by skipped epochs).
        self.progress = torch.tensor([-1.0, math.nan, math.nan, math.nan], dtype=torch.float64)

    # --------------------------------------------------------------------------------- confusion set

    def _build_confusion_set(self) -> None:
        o, x = self.options, self.data.x_train
        n, shape = len(self.data.y_train), tuple(x.shape[1:])
        d = math.prod(shape)
        k = int(math.floor(o["zero_fraction"] * d))
        copies = o["R"] * n
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 4242)
        labels = torch.randint(self.data.n_classes, (copies,), generator=gen)
        zero_idx = torch.empty(copies, k, dtype=torch.int32)
        for s in range(0, copies, 4096):
            c = min(4096, copies - s)
            zero_idx[s : s + c] = torch.rand(c, d, generator=gen).topk(k, dim=1).indices.to(torch.int32)
        if len(shape) == 3:  # images: a raw 0 is the channel's minimum after standardization
            channel_min = x.transpose(0, 1).reshape(shape[0], -1).min(1).values
            zero_value = channel_min.view(-1, 1, 1).expand(shape).reshape(-1)
        else:
            zero_value = torch.zeros(d, dtype=x.dtype)
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

    # -------------------------------------------------------------------------------------- training

    def train_epoch(self, epoch: int) -> dict[str, float]:
        o, p = self.options, self.pretrain_epochs
        if epoch < p:
            if self.progress[0] >= 0:
                loss, err, acc = (float(v) for v in self.progress[1:])
                return {
                    "loss": loss,
                    "train_error_running": err,
                    "random_label_accuracy": acc,
                    "phase": 0.0,
                    "skipped": 1.0,
                }
            self.opt = self.pre_opt
            self._set_lr(self.opt, cosine_lr(o["pretrain_lr"], epoch, p))
            order = batch_indices(self.pretrain_size, self.batch_size, self.seed, epoch, stream=1)
            stats = self._run_pretrain_epoch(epoch, order)
            acc = self.random_label_accuracy()
            target = o["pretrain_target"]
            stopped = epoch if target is not None and acc >= target else -1
            self.progress = torch.tensor(
                [stopped, stats["loss"], stats["train_error_running"], acc], dtype=torch.float64
            )
            return {**stats, "random_label_accuracy": acc, "phase": 0.0, "skipped": 0.0}
        self.opt = self.main_opt
        self._set_lr(self.opt, cosine_lr(o["lr"], epoch - p, self.epochs))
        order = batch_indices(len(self.y_train), self.batch_size, self.seed, epoch - p, device=self.device)
        stats = self._run_epoch(epoch, order)
        return {**stats, "phase": 1.0, "skipped": 0.0}

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

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"pretrain": self.pre_opt, "model": self.main_opt}

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def state(self) -> dict[str, torch.Tensor]:
        return {**super().state(), "adv/progress": self.progress.clone()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state(state)
        self.progress = state["adv/progress"].to(torch.float64).clone()

    def resolved_options(self) -> dict[str, Any]:
        return {**self.options, "pretrain_epochs": self.pretrain_epochs}
