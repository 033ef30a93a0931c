"""Seeds derived from names: every random draw that shapes a model gets a seed of its own.

    derive(*parts) = the first 8 bytes of sha256("\\x1f".join(str(p) for p in parts)), big-endian, >> 1

a 63-bit integer (every torch and numpy generator takes it), stable across Python processes, versions and
machines (Python's ``hash()`` is salted per process and would not be). A model's seed is
``derive("model", experiment, sampler, seed)``: two models of a study that differ in any of the three
share no draw, and the same model trained twice draws the same numbers. The draws of one model are then
told apart by further parts: ``derive(model_seed, "init", replica)`` initializes replica ``replica``
(0 for single-network samplers), ``derive(model_seed, "order", stream, epoch)`` orders the minibatches of
one epoch of one stream (a replica, or ADV's pre-training), ``derive(model_seed, "confusion")`` draws ADV's
random labels and zeroed entries, and so on (each sampler's docstring names its parts).

Measurements are not models: the local-energy noise, the Hessian probes and the pair choice keep seeds
from the config, shared by every model, on purpose (common random numbers). Midpoints of single-bend
paths are trained networks and get ``derive("midpoint", pair, variant, seed)``.
"""

from __future__ import annotations

import hashlib

__all__ = ["derive", "model_seed"]

_SEP = "\x1f"  # the ASCII unit separator: no config name contains it, so ("a-b",) ≠ ("a", "b")


def derive(*parts: object) -> int:
    """A 63-bit seed determined by ``parts`` (their ``str``), stable across processes and machines."""
    digest = hashlib.sha256(_SEP.join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def model_seed(experiment: str, sampler: str, seed: int) -> int:
    """The seed of model ``{experiment}-{sampler}-s{seed}``, from which all of its draws derive."""
    return derive("model", experiment, sampler, int(seed))
