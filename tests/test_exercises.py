"""Every exercise of every lesson: its worked solution passes and is praised, its hint and
solution show, an unanswered exercise is reported, other forms of right answers pass and typical
wrong answers get their specific feedback; and the shared machinery of exercises.core. The
answers of lesson NN are listed in test_exercises_NN.py (CORRECT and WRONG)."""

import importlib

import pytest
import torch
from cases import run_solution

from nflesson import exercises
from nflesson.exercises import Exercise, check_number, check_tensor

NUMBERS = exercises.lessons()  # discovered from the modules lesson_NN: a new lesson is tested here too
ALL = [(n, name) for n in NUMBERS for name in exercises.lesson(n)]
ANSWERS = {n: importlib.import_module(f"test_exercises_{n:02d}") for n in NUMBERS}
CORRECT = [(n, *case) for n, module in ANSWERS.items() for case in getattr(module, "CORRECT", [])]
WRONG = [(n, *case) for n, module in ANSWERS.items() for case in module.WRONG]


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
    assert not feedback and not feedback.answered and "replace the `...`" in feedback.message


def test_every_lesson_so_far_has_exercises_and_unknown_lessons_are_refused():
    assert NUMBERS[:6] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="no exercises for lesson 99"):
        exercises.lesson(99)


def test_feedback_renders_and_hints_show():
    question = Exercise("t", lambda a: check_number(a, 1.0, 0.1), "think", "answer = 1.0")
    assert "Correct" in question.check(1.05)._repr_markdown_()
    assert repr(question.check(2.0)).startswith("Not yet: the answer is 2, off by +1")
    assert "think" in question.hint().data and "answer = 1.0" in question.solution().data
    unanswered = question.check(...)
    assert not unanswered.answered and repr(unanswered).startswith("Not answered yet: ")
    assert unanswered._repr_markdown_().startswith("✏️ **Not answered yet.**")


def test_check_helpers():
    assert check_number(float("nan"), 1.0, 0.1).endswith("not a finite number")
    assert check_number(torch.tensor(1.0), 1.0, 0.1) is None
    assert "torch.Tensor" in check_tensor([1.0], torch.ones(1), 0.1)
    assert check_tensor(torch.ones(2), torch.ones(2, dtype=torch.float64), 1e-9) is None
    assert check_number(48, 50.0, 1e-9, "the count") == "the count is 48, off by -2"  # no "allowed: ±1e-09"
    assert check_number(48.5, 50.0, 0.5, "the count") == "the count is 48.5, off by -1.5"


@pytest.mark.parametrize("number, name, answer", CORRECT)
def test_other_correct_forms_pass(number, name, answer):
    feedback = exercises.lesson(number)[name].check(answer)
    assert feedback.correct, feedback.message


@pytest.mark.parametrize("number, name, answer, message", WRONG)
def test_wrong_answers_get_specific_feedback(number, name, answer, message):
    feedback = exercises.lesson(number)[name].check(answer)
    assert not feedback.correct and message in feedback.message, feedback.message
