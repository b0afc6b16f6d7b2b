"""Lesson 03's exercises: each checker accepts its solution and explains typical wrong answers."""

import math

import torch

from nflesson import exercises

QUESTIONS = exercises.lesson(3)
W2 = torch.tensor([[1.0, 2.0], [0.0, 1.0]])  # exercise 2
B2 = torch.tensor([1.0, -1.0])
BASE = math.log(2 * math.pi) + 1  # exercise 3: entropy of the 2D standard normal


def test_lesson_03_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["covariance", "entropy", "triangular"]


CORRECT = [  # (exercise, another form of a right answer)
    ("triangular", math.log(3)),
    ("triangular", torch.tensor(math.log(3))),
    ("triangular", torch.linalg.slogdet(torch.tensor([[2.0, 0, 0], [1, -0.5, 0], [3, 4, 3]])).logabsdet),
    ("covariance", torch.tensor([[1.0, 2.0], [2.0, 5.0]], dtype=torch.float64)),
    ("entropy", BASE + math.log(3)),
    ("entropy", torch.tensor(BASE + math.log(3))),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("triangular", float("nan"), "take the absolute values"),
    ("triangular", torch.tensor([2.0, -0.5, 3.0]).log().sum(), "take the absolute values"),
    ("triangular", -3.0, "det L itself"),
    ("triangular", 3, "its logarithm"),
    ("triangular", 4.5, "trace"),
    ("triangular", math.log(4.5), "log of the trace"),
    ("triangular", -math.log(3), "inverse map"),
    ("triangular", math.log(6), "leaves out the entry -0.5"),
    ("triangular", 1.2, "off by"),
    ("triangular", torch.ones(3), "single number"),
    ("triangular", "log 3", "should be a number"),
    ("covariance", W2 @ W2.T, "column vectors"),
    ("covariance", W2, "W itself"),
    ("covariance", W2 * W2, "matrix product"),
    ("covariance", W2.T @ W2 + torch.outer(B2, B2), "leave b out"),
    ("covariance", torch.tensor([[1.0, 2.0], [2.5, 5.0]]), "symmetric"),
    ("covariance", torch.tensor([[1.0, 2.0], [2.0, 4.0]]), "differs"),
    ("covariance", torch.ones(3, 3), "shape"),
    ("covariance", [[1.0, 2.0], [2.0, 5.0]], "torch.Tensor"),
    ("entropy", BASE, "entropy of the base"),
    ("entropy", BASE - math.log(3), "wrong sign"),
    ("entropy", BASE + 3.0, "adds |det W| = 3 itself"),
    ("entropy", BASE + 2 * math.log(3), "half of log det"),
    ("entropy", math.log(3), "only the change"),
    ("entropy", BASE / 2 + math.log(3), "1D standard normal"),
    ("entropy", 4.2, "off by"),
    ("entropy", None, "should be a number"),
]
