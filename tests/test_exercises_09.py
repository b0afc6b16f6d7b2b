"""Lesson 09's exercises: each checker accepts its solution in other forms and explains typical
wrong answers; the expected answers agree with the package."""

import math

import torch

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(9)
A = torch.tensor([[0.5, 2.0], [-1.0, -0.2]], dtype=torch.float64)


def test_lesson_09_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["log_det", "nfe", "target"]


def test_the_expected_answers_agree_with_the_package():
    flow = nf.ContinuousFlow(2, velocity=lambda x, t: x @ A.T, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        _, log_det = flow(torch.randn(5, 2, dtype=torch.float64))
    assert torch.allclose(log_det, torch.full((5,), 0.3, dtype=torch.float64), atol=1e-8)
    z, x = torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, -1.0]])
    target = x - z
    assert nf.flow_matching_loss(lambda p, t: target.expand(len(p), 2), x, z, torch.tensor([0.25])) == 0
    with torch.no_grad(), flow.solver(method="rk4", steps=10):
        flow(torch.randn(3, 2, dtype=torch.float64))
        assert flow.nfe == 40  # a plain solve from 0 to 1: 10 steps
        flow.trajectory(torch.randn(3, 2, dtype=torch.float64), torch.linspace(0, 1, 21))
        assert flow.nfe == 80  # one step in each of the 20 intervals


CORRECT = [  # (exercise, another form of a right answer)
    ("log_det", 0.3), ("log_det", torch.tensor(0.3)), ("target", torch.tensor([2, -2])),
    ("target", torch.tensor([2.0, -2.0], dtype=torch.float64)), ("nfe", 80), ("nfe", torch.tensor(80)), ("nfe", 80.0),
]


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("log_det", 1.9, "det A"),
    ("log_det", math.log(1.9), "LINEAR MAP"),
    ("log_det", math.exp(0.3), "logarithm"),
    ("log_det", 1.0, "DIAGONAL"),
    ("log_det", -0.3, "inverse"),
    ("log_det", 1.3, "only the diagonal"),
    ("log_det", 0.5, "off by"),
    ("target", torch.tensor([0.5, 0.5]), "point x_t"),
    ("target", torch.tensor([-2.0, 2.0]), "the sign"),
    ("target", torch.tensor([0.5, -0.5]), "constant"),
    ("target", torch.tensor([2.0, -1.0]), "not the data point"),
    ("target", torch.tensor([1.0, 1.0]), "differs"),
    ("target", [2.0, -2.0], "torch.Tensor"),
    ("nfe", 40, "21 times"),
    ("nfe", 84, "20 intervals"),
    ("nfe", 20, "4 stages"),
    ("nfe", 160, "half a step"),
    ("nfe", 10, "per unit of time"),
    ("nfe", 4, "one step's"),
    ("nfe", 21, "requested times"),
    ("nfe", 81, "off by"),
]
