"""Lesson 08's exercises: each checker accepts its solution in other forms and explains typical
wrong answers; the expected answers agree with the package."""

import math

import pytest
import torch

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(8)
BITS = 120 / (64 * math.log(2))
BOUND = 0.5 * math.log(0.5) + 0.5 * math.log(1.5)


def test_lesson_08_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["bits", "bound", "bytes"]


def test_the_expected_answers_agree_with_the_package():
    assert nf.bits_per_dim(120.0) == pytest.approx(BITS, abs=1e-12)
    cell = (torch.arange(100_000, dtype=torch.float64) + 0.5) / 100_000  # midpoints of [0, 1)
    q = 0.5 + (cell >= 0.5).double()  # 0.5 on [0, 0.5), 1.5 on [0.5, 1)
    assert q.mean().item() == pytest.approx(1.0, abs=1e-12)  # P(0) = 1
    assert q.log().mean().item() == pytest.approx(BOUND, abs=1e-12)


CORRECT = [  # (exercise, another form of a right answer)
    ("bits", BITS), ("bits", torch.tensor(BITS)), ("bound", BOUND), ("bound", torch.tensor(BOUND)),
    ("bytes", 8800), ("bytes", 8800.0), ("bytes", torch.tensor(8800)),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("bits", 120 / 64, "nats per dimension"),
    ("bits", 120 / math.log(2), "bits per IMAGE"),
    ("bits", 120 * math.log(2) / 64, "DIVIDING"),
    ("bits", 120 / (64 * math.log(10)), "ln 10"),
    ("bits", 120 / (17 * math.log(2)), "not the number of levels"),
    ("bits", 3.0, "off by"),
    ("bits", torch.ones(2), "single number"),
    ("bound", 0.0, "log P(0) itself"),
    ("bound", -BOUND, "the sign"),
    ("bound", math.log(0.5) + math.log(1.5), "weight both"),
    ("bound", -0.2, "off by"),
    ("bytes", 8800 * 8, "BITS"),
    ("bytes", 64 * 2.2 / 8, "ONE image"),
    ("bytes", 500 * 2.2 / 8, "64 pixels"),
    ("bytes", 32000, "raw size"),
    ("bytes", 9000, "off by"),
    ("bytes", "8800", "should be a number"),
]
