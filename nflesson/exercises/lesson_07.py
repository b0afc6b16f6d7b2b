"""The exercises of lesson 7, spline flows: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, check_number, known_mistake

# Exercise 1: nf.SplineCoupling(6, mask="halves", bins=8) changes 3 coordinates, each with
#             3 * 8 - 1 = 23 spline parameters: the conditioner outputs 69 numbers.
# The spline maps an input z to an output x = f(z); its knots are (z_k, x_k), as in the lesson.
# Exercise 2: the bin (0, 0) -> (2, 1) with d_k = 0.5, d_k+1 = 2, at the input z = 1 (xi = 1/2):
#             f(1) = 0.25 / 0.875.
# Exercise 3: the same bin, the output x = f(z) = 0.5: the quadratic 0.75 xi^2 - 0.25 xi - 0.25 = 0
#             has its root in [0, 1] at xi = (0.25 + sqrt(0.8125)) / 1.5, so the input z = 2 xi.

_W, _H, _D0, _D1 = 2.0, 1.0, 0.5, 2.0
_S = _H / _W
_BETA = _D0 + _D1 - 2 * _S


def _midpoint_value(d0=_D0, d1=_D1, xi=0.5):
    return _H * (_S * xi**2 + d0 * xi * (1 - xi)) / (_S + (d0 + d1 - 2 * _S) * xi * (1 - xi))


def _inverse_roots(d0=_D0, d1=_D1, delta=0.5):
    """Both roots xi of the quadratic for the output f(z) = x_k + delta, the one in [0, 1] first."""
    beta = d0 + d1 - 2 * _S
    a, b, c = _H * (_S - d0) + delta * beta, _H * d0 - delta * beta, -_S * delta
    root = math.sqrt(b * b - 4 * a * c)
    return (-b + root) / (2 * a), (-b - root) / (2 * a)


_MIDPOINT = _midpoint_value()
_XI, _OTHER_XI = _inverse_roots()


def _l07_outputs(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() > 1:
        return f"give the count, a single number (got a tensor of shape {tuple(answer.shape)})"
    known_mistakes = {
        72: "72 = 3 x 24: a spline with K bins has K widths and K heights but only K - 1 free derivatives "
            "(the two end derivatives are fixed at 1), so 3K - 1 = 23 numbers per coordinate",
        75: "75 = 3 x 25: the end derivatives are fixed at 1, so a coordinate needs 3K - 1 = 23 numbers, not 3K + 1",
        138: "138 counts a spline for all 6 coordinates; the kept half (coordinates 1 to 3, Python indices "
             "0 to 2) is not transformed",
        23: "23 numbers make ONE coordinate's spline; the layer changes 3 coordinates",
        6: "6 would be an affine coupling layer (a shift and a log-scale per changed coordinate); "
           "a spline needs 3K - 1 numbers per changed coordinate",
        24: "24 counts 8 numbers per changed coordinate; a spline needs widths, heights and derivatives: 3K - 1",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, 69.0, 1e-9,
                                                                          "the number of outputs")


def _l07_midpoint(answer):
    value = as_float(answer)
    known_mistakes = {
        0.5: "0.5 is the straight line between the two knots (linear interpolation); the spline bends "
             "between them according to the derivatives d_k and d_k+1: use the formula with xi = 1/2",
        1.0: "1 is the spline at the END of the bin (xi = 1); the input z = 1 is half-way: xi = (z - z_k) / w = 1/2",
        _midpoint_value(_D1, _D0): "d_k and d_k+1 are swapped: d_k = 0.5 belongs to the left knot (xi = 0), "
                                   "and the numerator's d_k xi (1 - xi) uses it",
        0.25: "0.25 is the numerator alone, h (s xi² + d_k xi (1 - xi)); divide it by "
              "s + (d_k + d_k+1 - 2s) xi (1 - xi)",
    }
    return known_mistake(value, known_mistakes) or check_number(answer, _MIDPOINT, 1e-4, "f(1)")


def _l07_inverse(answer):
    value = as_float(answer)
    known_mistakes = {
        _XI: "that is xi, the position inside the bin; the input is z = z_k + xi w with w = 2",
        _W * _OTHER_XI: "that is the quadratic's other root, outside the bin (xi < 0); take the root in [0, 1]",
        _OTHER_XI: "that is the quadratic's other root, and a xi: take the root in [0, 1], then z = z_k + xi w",
        1.0: "the input z = 1 is the middle of the bin, where the output is f(1) = 0.2857 (exercise 2), not 0.5: "
             "the spline is not a straight line",
        _W * _inverse_roots(_D1, _D0)[0]: "d_k and d_k+1 are swapped: d_k = 0.5 is the derivative at the left knot",
    }
    return known_mistake(value, known_mistakes) or check_number(answer, _W * _XI, 1e-4, "the input z")


QUESTIONS = {
    "outputs": Exercise(
        "the outputs of a spline coupling conditioner", _l07_outputs,
        "First count the changed coordinates of a 6D layer with the 'halves' mask. Each one gets its own "
        "spline: K bin widths, K bin heights and the derivatives at the K - 1 inner knots.",
        'changed, bins = 3, 8  # "halves" keeps coordinates 1-3 (indices 0-2) and changes 4-6 (3-5)\n'
        "answer = changed * (3 * bins - 1)  # K widths, K heights and K - 1 inner derivatives per changed coordinate",
        praise="Well done: 69 numbers, 23 for each of the 3 changed coordinates. "
               "`nf.SplineCoupling(6, bins=8).conditioner[-1].out_features` says the same.",
    ),
    "midpoint": Exercise(
        "a spline at the middle of a bin", _l07_midpoint,
        "w = 2, h = 1, so the bin's slope is s = h / w = 0.5, and the input z = 1 sits at xi = 1/2, where "
        "xi (1 - xi) = 1/4. Put these into "
        "f(z) = x_k + h (s xi² + d_k xi (1 - xi)) / (s + (d_k + d_k+1 - 2s) xi (1 - xi)).",
        "w, h, d0, d1 = 2.0, 1.0, 0.5, 2.0\n"
        "s, xi = h / w, 0.5  # the bin's slope, and the input z = 1 is half-way through the bin\n"
        "answer = 0.0 + h * (s * xi**2 + d0 * xi * (1 - xi)) / (s + (d0 + d1 - 2 * s) * xi * (1 - xi))",
        praise="Well done: f(1) = 2/7 ≈ 0.286, below the straight line's 0.5: the small slope 0.5 at the left "
               "knot keeps the spline low, and it catches up with the slope 2 at the right knot.",
    ),
    "inverse": Exercise(
        "inverting a spline bin", _l07_inverse,
        "With delta = x - x_k = 0.5 and beta = d_k + d_k+1 - 2s = 1.5: a = h (s - d_k) + delta beta, "
        "b = h d_k - delta beta, c = -s delta. Take the root of a xi² + b xi + c = 0 that lies in [0, 1], "
        "then the input is z = z_k + xi w.",
        "w, h, d0, d1, delta = 2.0, 1.0, 0.5, 2.0, 0.5  # delta = x - x_k: the output 0.5 less the knot height 0\n"
        "s = h / w\n"
        "a = h * (s - d0) + delta * (d0 + d1 - 2 * s)\n"
        "b = h * d0 - delta * (d0 + d1 - 2 * s)\n"
        "c = -s * delta\n"
        "xi = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)  # b < 0 here, so this form is the stable one\n"
        "answer = 0.0 + xi * w  # the input z = z_k + xi w",
        praise="Well done: z ≈ 1.535. The spline needs three quarters of the bin to climb half of its height, "
               "as its small slope at the left knot foretold.",
    ),
}
