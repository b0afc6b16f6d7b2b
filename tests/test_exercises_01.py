"""The exercises of lesson 01 (the change of variables): each checker names the typical mistakes."""

import math

import pytest
import torch

from nflesson import exercises

QUESTIONS = exercises.lesson(1)


def test_lesson_01_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["lognormal", "rotation", "sigmoid"]


WRONG = [  # (lesson, exercise, answer, a phrase the feedback must contain)
    (1, "lognormal", math.exp(-0.5 * math.log(2) ** 2) / math.sqrt(2 * math.pi), "Jacobian factor 1/x is missing"),
    (1, "lognormal", 0.2, "off by"),
    (1, "lognormal", torch.ones(3), "single number"),
    (1, "rotation", 1.5, "logarithm"),
    (1, "rotation", -math.log(1.5), "inverse map"),
    (1, "rotation", math.log(3.5), "do not add"),
    (1, "rotation", math.log(3), "second coordinate"),
    (1, "rotation", 0.7, "off by"),
    (1, "rotation", "log 4", "should be a number"),
    (1, "sigmoid", lambda x: torch.distributions.Normal(0.0, 1.0).log_prob(torch.logit(x)).exp(), "multiply by"),
    (1, "sigmoid", lambda x: x, "differs"),
    (1, "sigmoid", lambda x: x[:5], "shape"),
    (1, "sigmoid", 0.5, "function of x"),
    (1, "sigmoid", lambda x: undefined_name, "NameError"),  # noqa: F821
]


@pytest.mark.parametrize("number, name, answer, message", WRONG)
def test_wrong_answers_get_specific_feedback(number, name, answer, message):
    feedback = QUESTIONS[name].check(answer)
    assert not feedback.correct and message in feedback.message
