"""The exercises of lesson 1, the change of variables formula: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, as_tensor, check_number, check_tensor, known_mistake, near


def _lognormal_density(answer):
    expected = torch.distributions.LogNormal(0.0, 1.0).log_prob(torch.tensor(3.0)).exp().item()
    if near(as_float(answer), math.exp(-0.5 * math.log(3) ** 2) / math.sqrt(2 * math.pi), 1e-4):
        return "that is p_z(log 3): the Jacobian factor 1/x is missing"
    return check_number(answer, expected, 1e-4, "p_x(3)")


def _rotation_log_det(answer):
    known_mistakes = {
        1.5: "1.5 is |det A| itself; the question asks for its logarithm",
        -math.log(1.5): "that is the log-det of the inverse map (data -> base); this map expands area",
        math.log(3.5): "scales multiply areas, they do not add: the area factor is 3 x 0.5",
        math.log(3): "the second coordinate is scaled too (by 0.5): the area factor is 3 x 0.5",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, math.log(1.5), 1e-4, "log|det A|")


def _sigmoid_density(answer):
    if not callable(answer):
        return f"the answer should be a function of x, got {type(answer).__name__}"
    x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    try:
        got = answer(x.clone())
    except Exception as exc:  # noqa: BLE001 (the learner's function failing is feedback)
        return (f"calling your function on x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64) raised "
                f"{type(exc).__name__}: {exc}. It should take a tensor x and return p_x(x), a tensor of the same shape")
    z = torch.logit(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(z).exp()
    values = as_tensor(got, x.shape)
    if values is not None and torch.allclose(values, base, atol=1e-6):
        return "that is p_z(logit x): multiply by |d logit(x)/dx| = 1 / (x (1 - x))"
    return check_tensor(got, base / (x * (1 - x)), 1e-6, "p_x on a grid of x in (0, 1)")


QUESTIONS = {
    "lognormal": Exercise(
        "the log-normal density at x = 3", _lognormal_density,
        "x = exp(z) has inverse z = log x, and |dz/dx| = 1/x. Evaluate p_z(log 3) / 3 with "
        "torch.distributions.Normal(0, 1).",
        "z = torch.log(torch.tensor(3.0))\n"
        "answer = (torch.distributions.Normal(0.0, 1.0).log_prob(z).exp() / 3.0).item()",
    ),
    "rotation": Exercise(
        "log|det| of 'scale by (3, 0.5), rotate by 30 degrees'", _rotation_log_det,
        "A rotation keeps areas; scaling the coordinates by 3 and 0.5 multiplies areas by their "
        "product. torch.linalg.slogdet returns the log of |det| of a matrix, if you build A.",
        "turn = torch.tensor(torch.pi / 6)\n"
        "spin = torch.tensor([[torch.cos(turn), torch.sin(turn)], [-torch.sin(turn), torch.cos(turn)]])\n"
        "answer = torch.linalg.slogdet(torch.diag(torch.tensor([3.0, 0.5])) @ spin).logabsdet.item()",
    ),
    "sigmoid": Exercise(
        "the density of sigmoid(z)", _sigmoid_density,
        "The inverse of the sigmoid is z = logit(x) = log(x / (1 - x)), whose derivative is "
        "1 / (x (1 - x)).",
        "def answer(x):\n"
        "    z = torch.logit(x)\n"
        "    return torch.distributions.Normal(0.0, 1.0).log_prob(z).exp() / (x * (1 - x))",
    ),
}
