"""Solution samplers behind one interface (:class:`toroids.samplers.base.Sampler`), chosen by name."""

from toroids.samplers.base import Sampler, TrainingDiverged
from toroids.samplers.sgd import SGD

SAMPLERS: dict[str, type[Sampler]] = {"sgd": SGD}

__all__ = ["SAMPLERS", "SGD", "Sampler", "TrainingDiverged", "get_sampler"]


def get_sampler(name: str) -> type[Sampler]:
    """The sampler class registered under ``name``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {sorted(SAMPLERS)}")
    return SAMPLERS[name]
