"""The exercises of lesson 6, autoregressive flows: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, check_number, known_mistake, near

# Exercise 1: a 4D autoregressive layer: the d(d - 1)/2 = 6 entries above the diagonal are zero.
# Exercise 2: MAF, 5 layers, d = 10: sampling takes 5 x 10 = 50 MADE passes (scoring takes 5).
# Exercise 3: x1 = exp(0.5) z1 + 1, s2 = 0.3 x1, s3 = -0.2 x1 + 0.1 x2 at z = (1, 0, 2):
#             log|det J| = 0.5 + s2 + s3.

_L06_X1 = math.exp(0.5) + 1.0
_L06_LOG_DET = 0.5 + 0.3 * _L06_X1 + (-0.2 * _L06_X1 + 0.1 * 0.0)


def _l06_as_count(answer):
    value = as_float(answer)
    if value is None or not math.isfinite(value) or value != round(value):
        return None
    return round(value)


def _l06_zero_entries(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() > 1:
        return ("give the count, a single number: how many of the 16 entries of the 4 x 4 Jacobian must be "
                f"zero (got a tensor of shape {tuple(answer.shape)})")
    count = _l06_as_count(answer)
    known_mistakes = {
        10: "10 counts the entries that MAY be non-zero (the diagonal and below); the question asks for the zeros",
        12: "12 = d(d - 1) counts both off-diagonal triangles; the entries below the diagonal (x_i on earlier z_j) "
            "are allowed, only those above must vanish",
        4: "4 is the size of the diagonal, and the diagonal entries exp(s_i) are never zero",
        16: "not every entry is zero: the diagonal holds exp(s_i) > 0, and below it x_i may depend on earlier z_j",
        0: "an unmasked network gives no zeros; an autoregressive layer forbids x_i from depending on later z_j",
    }
    return known_mistake(count, known_mistakes) or check_number(answer, 6.0, 1e-9, "the number of zero entries")


def _l06_sampling_passes(answer):
    count = _l06_as_count(answer)
    known_mistakes = {
        5: "5 passes is what SCORING takes (one MADE pass per layer, inverse direction); sampling is sequential",
        10: "10 passes sample through one layer; each of the 5 layers needs its own 10 passes",
        15: "the passes multiply, they do not add: 10 passes in each of the 5 layers",
        1: "one pass is IAF's sampling cost; a MAF layer must build x one coordinate at a time",
        100: "100 = d² would be the cost with one pass per Jacobian entry; a pass fixes one coordinate of x",
        500: "that counts 10 passes per coordinate; one pass per coordinate and per layer is enough",
    }
    return known_mistake(count, known_mistakes) or check_number(answer, 50.0, 1e-9, "the number of passes")


def _l06_log_det(answer):
    value = as_float(answer)
    x1 = _L06_X1
    if near(value, 0.5 + 0.3 - 0.2):
        return ("0.6 adds up the coefficients, or evaluates s_i at z; the log-scales are functions of the "
                "DATA coordinates x_<i: compute x_1 first, then s_2 = 0.3 x_1 and s_3 = -0.2 x_1 + 0.1 x_2")
    if near(value, math.exp(_L06_LOG_DET)):
        return "that is |det J| itself; the question asks for its logarithm, the sum of the s_i"
    if near(value, -_L06_LOG_DET):
        return "that is the log-det of the inverse (scoring) direction, -sum s_i; the question asks about z -> x"
    if near(value, 0.3 * x1 + (-0.2 * x1)):
        return "the first coordinate has a log-scale too: s_1 = 0.5 (a constant, as x_1 has nothing before it)"
    if near(value, 0.5 + 0.3 * (x1 - 1.0) - 0.2 * (x1 - 1.0)):
        return "x_1 includes its shift: x_1 = exp(0.5) · 1 + 1, and the conditioners see that value"
    return check_number(answer, _L06_LOG_DET, 1e-4, "log|det J|")


QUESTIONS = {
    "zeros": Exercise(
        "the zeros of a 4D autoregressive Jacobian", _l06_zero_entries,
        "Entry (i, j) is dx_i / dz_j. An autoregressive layer lets x_i depend on z_i and on coordinates that "
        "come before i only. Count the pairs (i, j) with j after i.",
        "d = 4\n"
        "answer = d * (d - 1) // 2  # the entries above the diagonal: dx_i / dz_j with j after i",
        praise="Well done: 6 zeros above the diagonal, so det J is the product of the 4 diagonal entries.",
    ),
    "passes": Exercise(
        "MADE passes to sample from a MAF", _l06_sampling_passes,
        "In one MAF layer, the pass that computes x_i needs x_<i to be final already, so sampling through a "
        "layer takes one pass per coordinate. The layers run one after the other.",
        "layers, d = 5, 10\n"
        "answer = layers * d  # every layer rebuilds its output one coordinate per pass",
        praise="Well done: 50 passes to sample, against 5 to score. IAF swaps the two numbers.",
    ),
    "log_det": Exercise(
        "the log-det of an affine autoregressive layer", _l06_log_det,
        "log|det J| = s_1 + s_2 + s_3, with each s_i evaluated at the point: s_1 = 0.5, then compute x_1, "
        "then s_2 = 0.3 x_1, then x_2 and s_3.",
        "x1 = 1.0 * math.exp(0.5) + 1.0  # z_1 = 1\n"
        "s2 = 0.3 * x1\n"
        "x2 = 0.0 * math.exp(s2)  # z_2 = 0 and t_2 = 0\n"
        "s3 = -0.2 * x1 + 0.1 * x2\n"
        "answer = 0.5 + s2 + s3  # the log-scales add up",
        praise="Well done: about 0.765 nats of log-volume, a sum of three numbers, no determinant needed.",
    ),
}
