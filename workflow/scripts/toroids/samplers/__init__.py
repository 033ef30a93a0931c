"""Solution samplers behind one interface (:class:`toroids.samplers.base.Sampler`), chosen by name.

* ``sgd``: SGD with Nesterov momentum (the paper's SGD);
* ``rsgd``: replicated SGD, y coupled replicas, returns their centre (the paper's RSGD);
* ``adv``: adversarial initialization, random-label pre-training then vanilla SGD (the paper's ADV);
* ``sam``: sharpness-aware minimization (optionally ASAM) around SGD-Nesterov;
* ``esgd``: Entropy-SGD (SGLD inner loop, local-entropy outer step);
* ``adam``: Adam with cosine annealing.
"""

from toroids.samplers.adam import Adam
from toroids.samplers.adv import ADV
from toroids.samplers.base import Sampler, TrainingDiverged
from toroids.samplers.esgd import EntropySGD
from toroids.samplers.rsgd import RSGD
from toroids.samplers.sam import SAM
from toroids.samplers.sgd import SGD

SAMPLERS: dict[str, type[Sampler]] = {
    "sgd": SGD,
    "rsgd": RSGD,
    "adv": ADV,
    "sam": SAM,
    "esgd": EntropySGD,
    "adam": Adam,
}

__all__ = [
    "ADV",
    "RSGD",
    "SAM",
    "SAMPLERS",
    "SGD",
    "Adam",
    "EntropySGD",
    "Sampler",
    "TrainingDiverged",
    "get_sampler",
]


def get_sampler(name: str) -> type[Sampler]:
    """The sampler class registered under ``name``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {sorted(SAMPLERS)}")
    return SAMPLERS[name]
