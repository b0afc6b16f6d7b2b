"""Lesson 11's exercises: each checker accepts its solution in other forms and explains typical
wrong answers; the expected answers agree with the package."""

import math

import torch

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(11)


def test_lesson_11_has_its_two_exercises():
    assert sorted(QUESTIONS) == ["bits", "iw"]


def test_the_expected_answers_agree_with_the_package():
    log_w = torch.tensor([[-3.0], [-1.0], [-2.0]], dtype=torch.float64)
    assert QUESTIONS["iw"].check(nf.importance_weighted_bound(log_w)[0])
    assert not QUESTIONS["iw"].check(nf.importance_weighted_bound(log_w[:1])[0])  # K = 1: a log-weight, not the bound
    assert QUESTIONS["bits"].check(nf.bits_per_dim(19.0))


CORRECT = [("iw", -1.6915), ("iw", torch.tensor(-1.6915)), ("bits", 0.4283), ("bits", torch.tensor(0.4283))]

WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("iw", -2.0, "ELBO's estimate"),
    ("iw", -1.6915 + math.log(3), "subtract log 3"),
    ("iw", -1.0, "largest log-weight"),
    ("iw", math.exp(-1.6915), "its logarithm"),
    ("iw", -1.5, "off by"),
    ("bits", 19 / 64, "nats per dimension"),
    ("bits", 19 / math.log(2), "bits per image"),
    ("bits", -0.4283, "the sign"),
    ("bits", 19 * math.log(2) / 64, "not by ln 2"),
    ("bits", 0.5, "off by"),
]

