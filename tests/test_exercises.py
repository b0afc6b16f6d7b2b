"""Every exercise checker accepts the right answer and explains the wrong ones."""

import math

import pytest
import torch

from nflesson import exercises
from nflesson.exercises import Exercise, check_number, check_tensor
from cases import run_solution



NUMBERS = sorted(int(k[-2:]) for k in vars(exercises) if k.startswith("LESSON_"))
ALL = [(n, name) for n in NUMBERS for name in exercises.lesson(n)]


@pytest.mark.parametrize("number, name", ALL)
def test_the_solution_passes_and_is_praised(number, name):
    question = exercises.lesson(number)[name]
    feedback = question.check(run_solution(question))
    assert feedback.correct, feedback.message
    assert feedback.message == question.praise


@pytest.mark.parametrize("number, name", ALL)
def test_hint_and_solution_show(number, name):
    question = exercises.lesson(number)[name]
    assert question.hint().data.startswith("**Hint.**")
    assert "answer" in question.solution().data


@pytest.mark.parametrize("number, name", ALL)
def test_unanswered_is_reported_not_raised(number, name):
    feedback = exercises.lesson(number)[name].check(...)
    assert not feedback and "no answer yet" in feedback.message


WRONG = [
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
    feedback = exercises.lesson(number)[name].check(answer)
    assert not feedback.correct and message in feedback.message


def test_feedback_renders_and_hints_show():
    question = Exercise("t", lambda a: check_number(a, 1.0, 0.1), "think", "answer = 1.0")
    assert "Correct" in question.check(1.05)._repr_markdown_()
    assert repr(question.check(2.0)).startswith("Not yet: the answer is 2, off by +1")
    assert "think" in question.hint().data and "answer = 1.0" in question.solution().data


def test_check_helpers():
    assert check_number(float("nan"), 1.0, 0.1).endswith("not a finite number")
    assert check_number(torch.tensor(1.0), 1.0, 0.1) is None
    assert "torch.Tensor" in check_tensor([1.0], torch.ones(1), 0.1)
    assert check_tensor(torch.ones(2), torch.ones(2, dtype=torch.float64), 1e-9) is None
