"""toroids: remove the symmetries of deep networks and measure the geometry of their flat regions.

Reimplementation of Pittorino et al., "Deep Networks on Toroids" (ICML 2022). One concept per module:
data, models, checkpoint, train, samplers, units (the unit structure), symmetry, geometry, evaluate,
flatness, stats, plotting.
"""

__version__ = "0.1.0"
