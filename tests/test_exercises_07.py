"""Lesson 07's exercises: each checker accepts its solution in other forms and explains typical
wrong answers; the expected answers agree with the package and with each other."""

import math

import pytest
import torch

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(7)
MIDPOINT = 2 / 7
XI = (0.25 + math.sqrt(0.8125)) / 1.5
OTHER_XI = (0.25 - math.sqrt(0.8125)) / 1.5


def bin_value(z, d0=0.5, d1=2.0):
    """The output x = f(z) of the exercises' bin: knots (z, x) = (0, 0) to (2, 1), derivatives d0
    and d1 at its ends."""
    w, h = 2.0, 1.0
    s, xi = h / w, z / w
    return h * (s * xi**2 + d0 * xi * (1 - xi)) / (s + (d0 + d1 - 2 * s) * xi * (1 - xi))


def test_lesson_07_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["inverse", "midpoint", "outputs"]


def test_the_expected_answers_hold():
    assert nf.SplineCoupling(6, mask="halves", bins=8).conditioner[-1].out_features == 69
    assert bin_value(1.0) == pytest.approx(MIDPOINT, abs=1e-15)
    assert bin_value(2 * XI) == pytest.approx(0.5, abs=1e-14)  # the inverse's answer, an input, maps to 0.5
    assert 0 <= XI <= 1 and OTHER_XI < 0


CORRECT = [  # (exercise, another form of a right answer)
    ("outputs", 69), ("outputs", 69.0), ("outputs", torch.tensor(69)),
    ("midpoint", MIDPOINT), ("midpoint", torch.tensor(MIDPOINT)),
    ("inverse", 2 * XI), ("inverse", torch.tensor(2 * XI, dtype=torch.float64)),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("outputs", 72, "K - 1 free derivatives"),
    ("outputs", 75, "not 3K + 1"),
    ("outputs", 138, "kept half"),
    ("outputs", 23, "ONE coordinate"),
    ("outputs", 6, "affine coupling"),
    ("outputs", 24, "widths, heights and derivatives"),
    ("outputs", 70, "off by"),
    ("outputs", torch.ones(3), "single number"),
    ("outputs", "many", "should be a number"),
    ("midpoint", 0.5, "linear interpolation"),
    ("midpoint", 1.0, "END of the bin"),
    ("midpoint", bin_value(1.0, d0=2.0, d1=0.5), "swapped"),
    ("midpoint", 0.25, "numerator alone"),
    ("midpoint", 0.3, "off by"),
    ("inverse", XI, "position inside the bin"),
    ("inverse", 2 * OTHER_XI, "other root, outside the bin"),
    ("inverse", OTHER_XI, "other root, and a xi"),
    ("inverse", 1.0, "not a straight line"),
    ("inverse", 1.6, "off by"),
    ("inverse", float("nan"), "not a finite number"),
]


def test_the_swapped_derivatives_inverse_is_recognised():
    w, h, d0, d1, delta = 2.0, 1.0, 2.0, 0.5, 0.5  # d_k and d_k+1 swapped; delta = x - x_k
    s = h / w
    beta = d0 + d1 - 2 * s
    a, b, c = h * (s - d0) + delta * beta, h * d0 - delta * beta, -s * delta
    swapped = w * (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    feedback = QUESTIONS["inverse"].check(swapped)
    assert not feedback.correct and "swapped" in feedback.message, feedback.message
