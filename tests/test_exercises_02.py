"""The exercises of lesson 02 (a 1D affine flow): each checker accepts its solution, also in the
forms a learner may type (tensors, lists), and names the typical mistakes."""

import math

import pytest
import torch

import nflesson as nf
from nflesson import exercises

QUESTIONS = exercises.lesson(2)

# The flow of Exercises 1 and 2: layer 1 (log_scale 0.5, shift 1.0), then layer 2 (-0.2, -0.5).
A = math.exp(0.3)
B = math.exp(-0.2) - 0.5
Z = (2.0 - B) / A
LOG_P_Z = -0.5 * Z**2 - 0.5 * math.log(2 * math.pi)
DATA = torch.tensor([0.3, 1.9, 2.4, 0.8, 1.1, 3.0], dtype=torch.float64)


def test_lesson_02_has_its_three_exercises():
    assert sorted(QUESTIONS) == ["compose", "log_density", "mle_scale"]


def two_layer_flow():
    layers = [nf.Affine(1), nf.Affine(1)]
    with torch.no_grad():
        for layer, (log_scale, shift) in zip(layers, [(0.5, 1.0), (-0.2, -0.5)]):
            layer.log_scale.fill_(log_scale)
            layer.shift.fill_(shift)
    return nf.Flow(layers).double()


def test_the_expected_answers_agree_with_the_package():
    flow = two_layer_flow()
    z = torch.linspace(-3, 3, 7, dtype=torch.float64).unsqueeze(-1)
    x, log_det = flow(z)
    assert torch.allclose(x, A * z + B) and torch.allclose(log_det, torch.full((7,), 0.3, dtype=torch.float64))
    assert QUESTIONS["compose"].check((A, B))
    log_p = flow.log_prob(torch.tensor([[2.0]], dtype=torch.float64)).item()
    assert QUESTIONS["log_density"].check(log_p)


def test_the_mle_answer_is_what_training_finds():
    flow = nf.Flow([nf.Affine(1)])
    nf.fit(flow, DATA.float().unsqueeze(-1), steps=300, batch_size=6, lr=0.05, progress=False)
    assert QUESTIONS["mle_scale"].check(flow.layers[0].log_scale.item())


@pytest.mark.parametrize("answer", [
    (torch.tensor(A), torch.tensor(B)),
    [A, B],
    torch.tensor([A, B]),
])
def test_compose_accepts_the_usual_forms(answer):
    assert QUESTIONS["compose"].check(answer).correct


WRONG = [  # (exercise, answer, a phrase the feedback must contain)
    ("compose", (0.3, B), "log a, not a"),
    ("compose", (0.5 * -0.2, B), "not the log-scales"),
    ("compose", (math.exp(0.5) + math.exp(-0.2), B), "do not add"),
    ("compose", (A, 1.0 - 0.5), "scales it by exp(-0.2)"),
    ("compose", (A, -0.2 * 1.0 - 0.5), "not by its log-scale"),
    ("compose", (A, math.exp(0.5) * -0.5 + 1.0), "wrong order"),
    ("compose", (A, 0.0), "b is 0, off by"),
    ("compose", (1.0, B), "a is 1, off by"),
    ("compose", A, "pair (a, b)"),
    ("compose", (A, B, 0.0), "pair (a, b)"),
    ("compose", ("A", B), "should be numbers"),
    ("log_density", LOG_P_Z, "Jacobian term is missing"),
    ("log_density", LOG_P_Z + 0.3, "wrong sign of the log-det"),
    ("log_density", math.exp(LOG_P_Z - 0.3), "its logarithm"),
    ("log_density", -2.0 - 0.5 * math.log(2 * math.pi) - 0.3, "map x back to z"),
    ("log_density", -1.0, "off by"),
    ("log_density", torch.ones(2), "single number"),
    ("mle_scale", math.log(DATA.std().item()), "n - 1"),
    ("mle_scale", DATA.std(correction=0).item(), "the scale itself"),
    ("mle_scale", DATA.std().item(), "the scale itself"),
    ("mle_scale", 2 * math.log(DATA.std(correction=0).item()), "log of the variance"),
    ("mle_scale", math.log(DATA.mean().item()), "log of the mean"),
    ("mle_scale", 0.0, "off by"),
    ("mle_scale", float("nan"), "not a finite number"),
    ("mle_scale", "small", "should be a number"),
]
