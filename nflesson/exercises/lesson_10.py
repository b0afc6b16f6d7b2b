"""The exercises of lesson 10, conditional flows: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, as_tensor, check_number, check_tensor, known_mistake

# Exercise 1: x_1 = z_1, x_2 = z_2 exp(s) + t with s = c z_1 / 2, t = c - z_1; z = (1, 2), c = 2: s = 1, t = 1,
# x = (1, 2e + 1) = (1, 6.4366).
# Exercise 2: log q(x | y) = (-100, -99, -99.5), p(y) = (0.7, 0.1, 0.2): p(y = 0 | x) = softmax(log q + log p)_0 = 0.5378.
# Exercise 3: 2.180 - 2.150 bits/dim over 64 pixels: 1.92 bits per image.

_Z, _C = (1.0, 2.0), 2.0
_S, _T = _C * _Z[0] / 2, _C - _Z[0]
_X = (_Z[0], _Z[1] * math.exp(_S) + _T)

_LOG_Q = torch.tensor([-100.0, -99.0, -99.5], dtype=torch.float64)
_PRIOR = torch.tensor([0.7, 0.1, 0.2], dtype=torch.float64)
_POSTERIOR = torch.softmax(_LOG_Q + _PRIOR.log(), 0)

_BITS = {"conditional": 2.150, "unconditional": 2.180}
_SAVED = 64 * (_BITS["unconditional"] - _BITS["conditional"])


def _l10_layer(answer):
    got = as_tensor(answer, (2,))
    if got is not None:
        z1, z2 = _Z
        for wrong, message in (
            ((z1, z2 * math.exp(0.0) - z1), "that is the layer at c = 0: the context enters s and t, here c = 2"),
            ((z1, z2 * _S + _T), "the scale is exp(s), not s"),
            ((z1, (z2 + _T) * math.exp(_S)), "the shift t is added after the scaling: x_2 = z_2 exp(s) + t"),
            ((z1, (z2 - _T) * math.exp(-_S)), "that is the inverse direction (data to base); the question runs z "
                                              "through the layer forwards"),
            ((z1 * math.exp(_S) + _T, z2 * math.exp(_S) + _T), "the first coordinate is kept: x_1 = z_1"),
        ):
            if torch.allclose(got, torch.tensor(wrong, dtype=torch.float64), atol=1e-3):
                return message
    return check_tensor(answer, torch.tensor(_X, dtype=torch.float64), 1e-3, "x")


def _l10_bayes(answer):
    likelihood_only = torch.softmax(_LOG_Q, 0)
    known_mistakes = {
        likelihood_only[0].item(): "that leaves out the prior: p(y | x) is proportional to q(x | y) p(y)",
        _POSTERIOR[1].item(): "that is the posterior of class 1; the question asks for class 0",
        likelihood_only[1].item(): "that is class 1 without the prior; the question asks for class 0, with the "
                                   "prior p(y) = (0.7, 0.1, 0.2)",
        (_LOG_Q + _PRIOR.log())[0].item(): "that is log q(x | y = 0) + log p(y = 0), the unnormalised log "
                                            "posterior; divide exp of it by the sum over the three classes",
        _PRIOR[0].item(): "that is the prior alone; the likelihoods q(x | y) update it",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _POSTERIOR[0].item(), 1e-3,
                                                                           "p(y = 0 | x)")


def _l10_bits(answer):
    difference = _BITS["unconditional"] - _BITS["conditional"]
    known_mistakes = {
        difference: "that is per pixel (bits per dimension); the question asks per image of 64 pixels",
        _SAVED * math.log(2): "that is in nats; bits per dimension times 64 gives bits",
        math.log2(10): "log2(10) = 3.32 bits is the most the label could save (it is worth that much only if the "
                       "image determines it); the question asks what these scores show",
        -_SAVED: "the sign: the conditional model needs fewer bits, so the label saves a positive number",
        64 * _BITS["conditional"]: "that is the conditional model's cost of a whole image; the label's worth is "
                                   "the difference between the two models",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _SAVED, 1e-3,
                                                                           "the bits per image")


QUESTIONS = {
    "layer": Exercise(
        "a context through a conditional coupling layer, by hand", _l10_layer,
        "First the conditioner: s and t from z_1 = 1 and c = 2. Then the kept coordinate stays, and the "
        "other one is scaled by exp(s) and shifted by t.",
        "z1, z2, c = 1.0, 2.0, 2.0\n"
        "s, t = c * z1 / 2, c - z1  # the conditioner reads z_1 and the context\n"
        "answer = torch.tensor([z1, z2 * math.exp(s) + t])",
        praise="Well done: (1, 2e + 1) ≈ (1, 6.437), with log|det J| = s = 1. At c = 0 the same layer would give "
               "(1, 1): one set of weights, a different bijection for each context.",
    ),
    "bayes": Exercise(
        "a generative classifier by Bayes' rule", _l10_bayes,
        "p(y | x) = q(x | y) p(y) / sum over y' of q(x | y') p(y'). Work with logarithms: add log p(y) to each "
        "log q(x | y), then take a softmax over the classes (exp(-100) is about 4e-44, at the edge of float32; "
        "exp(-1000) is 0 even in float64).",
        "log_q = torch.tensor([-100.0, -99.0, -99.5])\n"
        "prior = torch.tensor([0.7, 0.1, 0.2])\n"
        "answer = torch.softmax(log_q + prior.log(), dim=0)[0].item()",
        praise="Well done: 0.538. Class 1 has the highest likelihood, yet class 0 is the most probable: its prior "
               "of 0.7 outweighs a likelihood e times smaller.",
    ),
    "bits": Exercise(
        "what a label is worth in bits", _l10_bits,
        "Bits per dimension are bits per pixel; an image has 64 of them. The label is worth the difference "
        "between the two models' costs.",
        "answer = 64 * (2.180 - 2.150)  # bits per pixel saved, times 64 pixels",
        praise="Well done: 1.92 bits per image, some 58% of the log2(10) = 3.32 bits a label holds at most.",
    ),
}
