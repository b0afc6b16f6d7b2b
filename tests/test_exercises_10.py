"""Lesson 10's exercises: each checker accepts its solution in other forms and explains typical
wrong answers; the expected answers agree with the package."""

import math

import torch

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(10)


def test_lesson_10_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["bayes", "bits", "layer"]


class _HandLayer(nf.Bijector):
    """The layer of exercise 1: x_2 = z_2 exp(c z_1 / 2) + c - z_1."""

    dim, context_size = 2, 1

    def _forward(self, z, context):
        s, t = context[:, 0] * z[:, 0] / 2, context[:, 0] - z[:, 0]
        return torch.stack([z[:, 0], z[:, 1] * torch.exp(s) + t], 1), s


def test_the_expected_answers_agree_with_the_package():
    x, log_det = _HandLayer()(torch.tensor([[1.0, 2.0]], dtype=torch.float64),
                              context=torch.tensor([2.0], dtype=torch.float64))
    assert QUESTIONS["layer"].check(x[0])
    assert log_det.item() == 1.0
    joint = torch.tensor([-100.0, -99.0, -99.5], dtype=torch.float64) + torch.tensor([0.7, 0.1, 0.2]).log()
    assert QUESTIONS["bayes"].check(torch.exp(joint[0] - torch.logsumexp(joint, 0)))
    assert QUESTIONS["bits"].check(nf.bits_per_dim(64 * 2.180 * math.log(2)) * 64 - 64 * 2.150)


CORRECT = [  # (exercise, another form of a right answer)
    ("layer", torch.tensor([1.0, 2 * math.e + 1], dtype=torch.float64)), ("layer", torch.tensor([1.0, 6.4366])),
    ("bayes", 0.5378), ("bayes", torch.tensor(0.5378)), ("bits", 1.92), ("bits", torch.tensor(1.92)),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("layer", torch.tensor([1.0, 1.0]), "c = 0"),
    ("layer", torch.tensor([1.0, 3.0]), "exp(s), not s"),
    ("layer", torch.tensor([1.0, 3 * math.e]), "added after the scaling"),
    ("layer", torch.tensor([1.0, math.exp(-1)]), "inverse direction"),
    ("layer", torch.tensor([math.e + 1, 2 * math.e + 1]), "first coordinate is kept"),
    ("layer", torch.tensor([1.0, 6.0]), "differs"),
    ("layer", 6.4366, "torch.Tensor"),
    ("bayes", 0.1863, "leaves out the prior"),
    ("bayes", 0.2088, "class 1"),
    ("bayes", 0.5065, "without the prior"),
    ("bayes", -100.3567, "unnormalised"),
    ("bayes", 0.7, "prior alone"),
    ("bayes", 0.6, "off by"),
    ("bits", 0.03, "per pixel"),
    ("bits", 1.92 * math.log(2), "nats"),
    ("bits", math.log2(10), "the most the label could save"),
    ("bits", -1.92, "the sign"),
    ("bits", 137.6, "whole image"),
    ("bits", 2.5, "off by"),
]
