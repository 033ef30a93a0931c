"""Learning-rate schedules, stepped once per epoch (torch-free: the config validator checks them too).

The samplers that step an SGD or Adam optimizer (sgd, rsgd, adam, adv's main phase) read the options of
:data:`SCHEDULE_DEFAULTS` through :func:`scheduled_lr`; the paper's continuous nets anneal with a cosine,
its binary ConvNet halves the lr at fixed epochs (digest §5.3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["SCHEDULE_DEFAULTS", "cosine_lr", "schedule_problem", "scheduled_lr"]


def cosine_lr(lr0: float, epoch: int, epochs: int) -> float:
    """Cosine annealing stepped once per epoch: ``lr0 · (1 + cos(π e / E)) / 2`` (0-based epoch e)."""
    return lr0 * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


#: the learning-rate schedule's options, shared by the samplers that step with an SGD or Adam optimizer
#: (sgd, rsgd, adam and adv's main phase; :func:`scheduled_lr`)
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "schedule": "cosine",
    "lr_milestones": [],
    "lr_every": None,
    "lr_factor": 0.5,
}


def scheduled_lr(lr0: float, epoch: int, epochs: int, options: Mapping[str, Any]) -> float:
    """The lr of (0-based) ``epoch`` of ``epochs``, by ``options["schedule"]`` (absent keys: the defaults):

    * ``cosine``: :func:`cosine_lr`;
    * ``constant``: ``lr0``;
    * ``step``: ``lr0 · lr_factor^k(e)``, k(e) the drops at or before e: every epoch of ``lr_milestones``
      and then every ``lr_every`` epochs after the last milestone (after epoch 0 if there is none). The
      paper's binary ConvNet halves every 50 epochs (milestones [], every 50: drops at 50, 100, …); its
      ADV main phase at 10, 20, 50 and then every 50 (milestones [10, 20, 50], every 50).
    """
    o = {**SCHEDULE_DEFAULTS, **options}
    if o["schedule"] == "cosine":
        return cosine_lr(lr0, epoch, epochs)
    if o["schedule"] == "constant":
        return lr0
    milestones = sorted(int(m) for m in o["lr_milestones"])
    drops = sum(1 for m in milestones if epoch >= m)
    if o["lr_every"] is not None:
        last = milestones[-1] if milestones else 0
        drops += max(0, (epoch - last) // int(o["lr_every"]))
    return lr0 * float(o["lr_factor"]) ** drops


def schedule_problem(options: Mapping[str, Any]) -> str | None:
    """Why the schedule options cannot mean what they say, or None: milestones or a period without the
    ``step`` schedule would be silently ignored; ``step`` without either never drops."""
    o = {**SCHEDULE_DEFAULTS, **options}
    if o["schedule"] not in ("cosine", "constant", "step"):
        return f"schedule must be cosine, constant or step, got {o['schedule']!r}"
    has_steps = bool(o["lr_milestones"]) or o["lr_every"] is not None
    if o["schedule"] == "step" and not has_steps:
        return "schedule: step needs lr_milestones or lr_every"
    if o["schedule"] != "step" and has_steps:
        return f"lr_milestones and lr_every are read only by schedule: step, not {o['schedule']}"
    if not 0 < float(o["lr_factor"]) <= 1:
        return f"lr_factor must be in (0, 1], got {o['lr_factor']!r}"
    return None
