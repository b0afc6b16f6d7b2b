"""Lesson 04's exercises: each checker accepts its solution and explains typical wrong answers."""

import math

import torch

from nflesson import exercises

QUESTIONS = exercises.lesson(4)
LOG_DET = math.log(1 + (1 - math.tanh(0.6) ** 2) * 0.1)  # exercise 1
RADIUS = (2.5 + math.sqrt(2.5**2 + 10)) / 2  # exercise 2


def test_lesson_04_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["planar_log_det", "radial_radius", "reverse_kl"]


CORRECT = [  # (exercise, another form of a right answer)
    ("planar_log_det", LOG_DET),
    ("planar_log_det", torch.tensor(LOG_DET)),
    ("radial_radius", RADIUS),
    ("radial_radius", torch.tensor(RADIUS, dtype=torch.float64)),
    ("reverse_kl", 0.283),
]


def test_the_planar_answer_matches_autograd():
    w, u, b = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([0.5, -0.2], dtype=torch.float64), 0.5

    def f(z):
        return z + u * torch.tanh(z @ w + b)

    J = torch.autograd.functional.jacobian(f, torch.tensor([0.3, -0.1], dtype=torch.float64))
    assert abs(torch.linalg.slogdet(J).logabsdet.item() - LOG_DET) < 1e-12


def test_the_radius_inverts_the_radial_map():
    alpha, beta = 0.5, 2.0
    big_r = RADIUS * (alpha + RADIUS + beta) / (alpha + RADIUS)
    assert abs(big_r - 5.0) < 1e-12


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("planar_log_det", math.exp(LOG_DET), "its logarithm"),
    ("planar_log_det", -LOG_DET, "inverse map"),
    ("planar_log_det", math.log(1.1), "h'(a) = 1 - tanh²(a) is missing"),
    ("planar_log_det", math.log(1 + math.tanh(0.6) * 0.1), "uses tanh(a)"),
    ("planar_log_det", math.log(1 + (1 - math.tanh(0.1) ** 2) * 0.1), "bias b = 0.5 is missing"),
    ("planar_log_det", 0.5, "off by"),
    ("planar_log_det", torch.ones(2), "single number"),
    ("radial_radius", 5.0, "|x - z0|"),
    ("radial_radius", (2.5 - math.sqrt(16.25)) / 2, "negative root"),
    ("radial_radius", 5.0 * 7.5 / 5.5, "forward map"),
    ("radial_radius", 3.0, "R - beta"),
    ("radial_radius", 3.5, "off by"),
    ("radial_radius", "3.27", "should be a number"),
    ("reverse_kl", -1.83 - 2.113, "wrong sign for log Z"),
    ("reverse_kl", -1.83, "the loss itself"),
    ("reverse_kl", 1.83, "not -KL"),
    ("reverse_kl", 2.113 + 1.83, "its own sign"),
    ("reverse_kl", -0.5, "never negative"),
    ("reverse_kl", 0.3, "off by"),
    ("reverse_kl", -1.83 + 2.082, "without the wall"),
]
