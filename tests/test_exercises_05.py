"""Lesson 05's exercises: each checker accepts its solution and explains typical wrong answers."""

import math

import torch
from cases import run_solution

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(5)
E = math.exp(-0.5)  # exercise 2: the scale exp(-s) at x_1 = 1


def test_lesson_05_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["inverse", "log_det", "parameters"]


def test_the_parameter_count_is_the_package_s():
    layer = nf.AffineCoupling(6, mask="alternating", hidden=32)
    assert sum(p.numel() for p in layer.parameters()) == run_solution(QUESTIONS["parameters"])


def test_the_inverse_solution_is_the_inverse_of_the_layer():
    z = run_solution(QUESTIONS["inverse"])
    x1 = z[1] * torch.exp(0.5 * z[0]) + z[0] ** 2
    assert torch.allclose(torch.stack([z[0], x1]), torch.tensor([1.0, 3.0]))


CORRECT = [  # (exercise, another form of a right answer)
    ("log_det", -0.2),
    ("log_det", torch.tensor(-0.2)),
    ("inverse", torch.tensor([1.0, 2 * E], dtype=torch.float64)),
    ("parameters", 1382),
    ("parameters", torch.tensor(1382)),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("log_det", math.exp(-0.2), "det J itself"),
    ("log_det", 0.2, "wrong sign"),
    ("log_det", -3.2, "shifts t do not enter"),
    ("log_det", 1.1, "reads the kept coordinates"),
    ("log_det", math.exp(0.4) + math.exp(-0.6), "log-scales s themselves"),
    ("log_det", 0.0, "additive (NICE)"),
    ("log_det", 0.5, "off by"),
    ("log_det", torch.ones(2), "single number"),
    ("inverse", torch.tensor([1.0, 3 * E - 1]), "reverse order"),
    ("inverse", torch.tensor([1.0, 2 / E]), "divides by it"),
    ("inverse", torch.tensor([1.0, 3 / E + 1]), "forward map to x again"),
    ("inverse", torch.tensor([1.0, 4.0]), "log-scale"),
    ("inverse", torch.tensor([1.0, 2.0]), "scale is missing"),
    ("inverse", torch.tensor([0.0, 2 * E]), "passes through unchanged"),
    ("inverse", 2 * E, "both coordinates"),
    ("inverse", torch.tensor([1.0, 0.5]), "differs"),
    ("inverse", torch.ones(3), "shape"),
    ("inverse", [1.0, 2 * E], "torch.Tensor"),
    ("parameters", 1283, "additive (NICE)"),
    ("parameters", 1478, "only the kept"),
    ("parameters", 1580, "not 12"),
    ("parameters", 1312, "biases"),
    ("parameters", 326, "one-hidden-layer"),
    ("parameters", 1000, "off by"),
    ("parameters", "1382", "should be a number"),
]
