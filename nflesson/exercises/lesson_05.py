"""The exercises of lesson 5, coupling flows: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, as_tensor, check_number, check_tensor, known_mistake, near

# Exercise 1: a 4D affine coupling layer keeps z_1, z_2 and changes z_3, z_4 with log-scales
# s = (0.4 z_1, 0.3 z_2) and shifts t = (z_1 + z_2, z_1 z_2), at z = (1, -2, 0.5, 3): log-det -0.2.
# Exercise 2: a 2D layer keeps x_1, x_2 = z_2 exp(0.5 z_1) + z_1^2; invert it at x = (1, 3).
# Exercise 3: the parameters of nf.AffineCoupling(6, mask="alternating", hidden=32): 1382.

_L05_S = (0.4, -0.6)  # the log-scales at z
_L05_T = (-1.0, -2.0)  # the shifts at z
_L05_X = (1.0, 3.0)


def _l05_log_det(answer):
    value = as_float(answer)
    expected = sum(_L05_S)
    if near(value, math.exp(expected)):
        return "that is det J itself, exp(-0.2); the question asks for its logarithm, the sum of the log-scales"
    if near(value, -expected):
        return "wrong sign: that is the log-det of the inverse map (data -> base); the forward map adds +s"
    if near(value, expected + sum(_L05_T)):
        return ("the shifts t do not enter the log-det: a shift moves points without stretching them, so only "
                "the log-scales s count")
    if near(value, 0.4 * 0.5 + 0.3 * 3.0):
        return ("the conditioner reads the kept coordinates z_1 = 1 and z_2 = -2, not the changed ones: "
                "s = (0.4 z_1, 0.3 z_2)")
    if near(value, math.exp(0.4) + math.exp(-0.6)):
        return "that adds the scales exp(s); log|det J| adds the log-scales s themselves"
    if near(value, 0.0):
        return "0 is the log-det of an additive (NICE) layer; this one is affine and scales by exp(s)"
    return check_number(answer, expected, 1e-4, "log|det J|")


def _l05_inverse(answer):
    x0, x1 = _L05_X
    s, t = 0.5 * x0, x0**2
    expected = torch.tensor([x0, (x1 - t) * math.exp(-s)], dtype=torch.float64)
    if as_float(answer) is not None:
        return "give both coordinates of z as a tensor of 2 numbers: z_1 and z_2"
    got = as_tensor(answer, expected.shape)
    if got is None:
        return check_tensor(answer, expected, 1e-4, "z")
    if abs(got[0].item() - x0) > 1e-3:
        return "the kept coordinate passes through unchanged: z_1 = x_1 = 1"
    wrong = {
        x1 * math.exp(-s) - t: "undo the steps in reverse order: subtract the shift t first, then divide by exp(s)",
        (x1 - t) * math.exp(s): "the forward map multiplied by exp(s); its inverse divides by it",
        x1 * math.exp(s) + t: "that applies the forward map to x again; the inverse undoes it",
        (x1 - t) / s: "s is a log-scale: the scale is exp(s), so divide by exp(0.5), not by 0.5",
        x1 - t: "the scale is missing: after subtracting t, divide by exp(s(z_1))",
    }
    return known_mistake(got[1].item(), wrong) or check_tensor(answer, expected, 1e-4, "z")


def _l05_parameters(answer):
    value = as_float(answer)
    if value is None:
        return f"the answer should be a number (a count), got {type(answer).__name__}"
    kept, changed, hidden = 3, 3, 32
    first, middle = kept * hidden + hidden, hidden * hidden + hidden
    wrong = {
        first + middle + hidden * changed + changed: "that counts an additive (NICE) conditioner; an affine one "
        "outputs a shift and a log-scale for each changed coordinate",
        6 * hidden + hidden + middle + hidden * 2 * changed + 2 * changed: "the conditioner sees only the kept "
        "coordinates (3 of them), not all 6",
        first + middle + hidden * 12 + 12: "the conditioner outputs a shift and a log-scale only for the 3 "
        "changed coordinates: 6 outputs, not 12",
        kept * hidden + hidden * hidden + hidden * 2 * changed: "every nn.Linear has biases too, one per output",
        first + hidden * 2 * changed + 2 * changed: "that is a one-hidden-layer conditioner (like the one "
        "built by hand in section 2); nflesson's has two hidden layers",
    }
    return known_mistake(value, wrong) or check_number(value, first + middle + hidden * 2 * changed + 2 * changed, 0.5,
                                                       "the number of parameters")


QUESTIONS = {
    "log_det": Exercise(
        "the log-det of an affine coupling layer", _l05_log_det,
        "The Jacobian is triangular once the kept coordinates come first: ones for the kept coordinates and "
        "exp(s_j) for the changed ones on its diagonal. Evaluate s at the kept coordinates of z.",
        "z = torch.tensor([1.0, -2.0, 0.5, 3.0])\n"
        "s = torch.stack([0.4 * z[0], 0.3 * z[1]])  # the kept coordinates z_1, z_2 are z[0], z[1]\n"
        "answer = s.sum().item()  # only the log-scales count: the shifts and the kept part add 0",
        praise="Well done: log|det J| = 0.4 - 0.6 = -0.2, and no Jacobian was needed to find it.",
    ),
    "inverse": Exercise(
        "inverting a coupling layer", _l05_inverse,
        "The kept coordinate is the same on both sides, so z_1 = x_1, and s and t can be evaluated at it. "
        "Then solve x_2 = z_2 exp(s) + t for z_2.",
        "x = torch.tensor([1.0, 3.0])\n"
        "s, t = 0.5 * x[0], x[0] ** 2  # z_1 = x_1 (x[0] in Python), so the conditioner can run on it\n"
        "answer = torch.stack([x[0], (x[1] - t) * torch.exp(-s)])",
        praise="Well done: z = (1, 2 e^(-1/2)) ≈ (1, 1.2131), with one pass of the conditioner and no "
               "inverse of it.",
    ),
    "parameters": Exercise(
        "the parameters of a coupling layer", _l05_parameters,
        "The conditioner maps the kept coordinates to a shift and a log-scale per changed coordinate, through "
        "two hidden layers of width 32. An nn.Linear(n_in, n_out) has n_in * n_out weights and n_out biases. "
        "Check your count afterwards with sum(p.numel() for p in layer.parameters()).",
        "kept, changed, hidden = 3, 3, 32  # the alternating mask keeps z_1, z_3, z_5 of 6 (indices 0, 2, 4)\n"
        "first = kept * hidden + hidden  # an nn.Linear(n_in, n_out) holds n_in * n_out + n_out numbers\n"
        "middle = hidden * hidden + hidden\n"
        "last = hidden * 2 * changed + 2 * changed  # a shift and a log-scale per changed coordinate\n"
        "answer = first + middle + last",
        praise="Well done: 128 + 1056 + 198 = 1382 parameters, almost all of them in the middle layer.",
    ),
}
