"""Learning-rate schedules (toroids.schedules): known values, and the options that cannot mean anything."""

import math

import pytest

from toroids.schedules import cosine_lr, schedule_problem, scheduled_lr


def test_cosine_is_the_default_and_anneals_to_zero():
    assert scheduled_lr(0.02, 0, 300, {}) == 0.02 == cosine_lr(0.02, 0, 300)
    assert scheduled_lr(0.02, 150, 300, {}) == pytest.approx(0.01)
    assert scheduled_lr(0.02, 299, 300, {}) == pytest.approx(0.01 * (1 + math.cos(math.pi * 299 / 300)))


def test_constant():
    assert {scheduled_lr(10.0, e, 5, {"schedule": "constant"}) for e in range(5)} == {10.0}


def test_the_convnets_halving_every_50_epochs():
    """Digest §5.3 (iv): lr 0.005 × 0.5 every 50 epochs."""
    opts = {"schedule": "step", "lr_every": 50, "lr_factor": 0.5}
    got = [scheduled_lr(0.005, e, 400, opts) for e in (0, 49, 50, 99, 100, 399)]
    assert got == [0.005, 0.005, 0.0025, 0.0025, 0.00125, 0.005 * 0.5**7]


def test_milestones_alone_and_then_a_period():
    steps = {"schedule": "step", "lr_milestones": [3, 1], "lr_factor": 0.1}  # unsorted on purpose
    assert [scheduled_lr(1.0, e, 9, steps) for e in range(5)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    both = {**steps, "lr_every": 2}  # after the last milestone (3): drops at 5, 7, …
    assert [scheduled_lr(1.0, e, 9, both) for e in (4, 5, 6, 7)] == pytest.approx([1e-2, 1e-3, 1e-3, 1e-4])


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"schedule": "step"}, "needs lr_milestones or lr_every"),
        ({"lr_milestones": [5]}, "read only by schedule: step, not cosine"),
        ({"schedule": "constant", "lr_every": 5}, "read only by schedule: step, not constant"),
        ({"schedule": "linear"}, "cosine, constant or step"),
        ({"schedule": "step", "lr_every": 5, "lr_factor": 2.0}, "lr_factor must be in (0, 1]"),
    ],
)
def test_options_that_mean_nothing_are_named(options, problem):
    assert problem in schedule_problem(options)


def test_sound_options_have_no_problem():
    assert schedule_problem({}) is None
    assert schedule_problem({"schedule": "step", "lr_milestones": [10, 20, 50], "lr_every": 50}) is None
