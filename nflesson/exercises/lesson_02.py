"""The exercises of lesson 2, a 1D affine flow: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, check_number, near

# Layer 1 (base side): log_scale 0.5, shift 1.0; layer 2: log_scale -0.2, shift -0.5.
# Together: x = a z + b with a = exp(0.3), b = exp(-0.2) * 1.0 - 0.5.

_L02_A = math.exp(0.5) * math.exp(-0.2)
_L02_B = math.exp(-0.2) * 1.0 - 0.5
_L02_DATA = [0.3, 1.9, 2.4, 0.8, 1.1, 3.0]


def _affine_composition(answer):
    if isinstance(answer, torch.Tensor) or type(answer).__module__ == "numpy":
        answer = answer.reshape(-1).tolist()
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return f"the answer should be a pair (a, b) of two numbers, got {type(answer).__name__}"
    scale, shift = as_float(answer[0]), as_float(answer[1])
    if scale is None or shift is None:
        return "both a and b should be numbers (floats or one-element tensors)"
    if near(scale, 0.3):
        return "0.3 is log a, not a: the log-scales add, and the scale itself is a = exp(0.5 - 0.2)"
    if near(scale, 0.5 * -0.2):
        return "multiply the scales exp(0.5) and exp(-0.2), not the log-scales"
    if near(scale, math.exp(0.5) + math.exp(-0.2)):
        return "the scales multiply (a2 (a1 z + b1) + b2 has slope a2 a1); they do not add"
    if near(scale, _L02_A) and near(shift, 1.0 - 0.5):
        return "the scale a is right; for the shift b, the shift of layer 1 passes through layer 2, which scales it by exp(-0.2)"
    if near(scale, _L02_A) and near(shift, -0.2 * 1.0 - 0.5):
        return "the scale a is right; for the shift b, layer 2 scales the first shift by its scale exp(-0.2), not by its log-scale"
    if near(scale, _L02_A) and near(shift, math.exp(0.5) * -0.5 + 1.0):
        return "that composes the layers in the wrong order: layer 1 acts first (on z), layer 2 on its output"
    return check_number(scale, _L02_A, 1e-4, "a") or check_number(shift, _L02_B, 1e-4, "b")


def _affine_log_density(answer):
    value = as_float(answer)
    z = (2.0 - _L02_B) / _L02_A
    log_p_z = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    expected = log_p_z - math.log(_L02_A)
    if near(value, log_p_z):
        return "that is log p_z(z) alone: the Jacobian term is missing (add the inverse log-det, -log a = -0.3)"
    if near(value, log_p_z + math.log(_L02_A)):
        return ("wrong sign of the log-det: the flow stretches by a = exp(0.3) > 1, which makes the density "
                "lower, so subtract 0.3")
    if near(value, math.exp(expected), 1e-4):
        return "that is p_x(2) itself; the question asks for its logarithm"
    if near(value, -0.5 * 2.0**2 - 0.5 * math.log(2 * math.pi) - math.log(_L02_A)):
        return "that evaluates the base density at x = 2; first map x back to z = (x - b) / a"
    return check_number(answer, expected, 1e-4, "log p_x(2)")


def _affine_mle_log_scale(answer):
    value = as_float(answer)
    data = torch.tensor(_L02_DATA, dtype=torch.float64)
    biased, unbiased = data.std(correction=0).item(), data.std().item()
    if near(value, math.log(unbiased)):
        return ("that is the log of the unbiased standard deviation (dividing by n - 1, torch.std's default); "
                "maximum likelihood divides by n: use std(correction=0)")
    if near(value, biased) or near(value, unbiased):
        return "that is the scale itself; log_scale is its logarithm"
    if near(value, 2 * math.log(biased)) or near(value, 2 * math.log(unbiased)):
        return "that is the log of the variance; the scale is the standard deviation, so halve it"
    if near(value, math.log(data.mean().item())):
        return "that is the log of the mean; the mean is what the shift learns, the scale learns the spread"
    return check_number(answer, math.log(biased), 1e-3, "log_scale")


QUESTIONS = {
    "compose": Exercise(
        "two affine layers as one", _affine_composition,
        "Substitute: layer 2 gives x = a2 * (a1 * z + b1) + b2 with a_k = exp(log_scale_k). Expand and read off "
        "the slope a and the intercept b.",
        "scale = math.exp(0.5) * math.exp(-0.2)  # the scales multiply: exp(0.5 - 0.2)\n"
        "shift = math.exp(-0.2) * 1.0 + (-0.5)  # layer 2 also scales the shift of layer 1\n"
        "answer = (scale, shift)",
    ),
    "log_density": Exercise(
        "the log-density of the two-layer flow at x = 2", _affine_log_density,
        "Map x back to the base: z = (x - b) / a with a, b from Exercise 1. Then "
        "log p_x(x) = log p_z(z) + log|dz/dx| = log p_z(z) - log a.",
        "scale, shift = math.exp(0.3), math.exp(-0.2) * 1.0 - 0.5\n"
        "z = (2.0 - shift) / scale  # data -> base\n"
        "answer = torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor(z)).item() - math.log(scale)",
    ),
    "mle_scale": Exercise(
        "the maximum-likelihood log_scale", _affine_mle_log_scale,
        "One affine layer on a N(0, 1) base is the Gaussian N(shift, exp(log_scale)^2). Maximum likelihood "
        "sets its standard deviation to that of the data, computed by dividing by n (not n - 1).",
        "data = torch.tensor([0.3, 1.9, 2.4, 0.8, 1.1, 3.0])\n"
        "answer = math.log(data.std(correction=0).item())  # the MLE divides by n, not n - 1",
    ),
}
