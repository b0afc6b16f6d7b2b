"""The exercises of lesson 01 (the change of variables): each checker names the typical mistakes."""

import math

import torch

from nflesson import exercises

QUESTIONS = exercises.lesson(1)


def test_lesson_01_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["lognormal", "rotation", "sigmoid"]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("lognormal", math.exp(-0.5 * math.log(3) ** 2) / math.sqrt(2 * math.pi), "Jacobian factor 1/x is missing"),
    ("lognormal", 0.2, "off by"),
    ("lognormal", 0.1569, "off by"),  # p_x(2), printed in the lesson: not the question
    ("lognormal", torch.ones(3), "single number"),
    ("rotation", 1.5, "logarithm"),
    ("rotation", -math.log(1.5), "inverse map"),
    ("rotation", math.log(3.5), "do not add"),
    ("rotation", math.log(3), "second coordinate"),
    ("rotation", 0.7, "off by"),
    ("rotation", "log 4", "should be a number"),
    ("sigmoid", lambda x: torch.distributions.Normal(0.0, 1.0).log_prob(torch.logit(x)).exp(), "multiply by"),
    ("sigmoid", lambda x: x, "differs"),
    ("sigmoid", lambda x: x[:5], "shape"),
    ("sigmoid", 0.5, "function of x"),
    ("sigmoid", lambda x: undefined_name, "NameError"),  # noqa: F821
]
