"""The exercises of lesson 11, flows inside a VAE: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, check_number, known_mistake

# Exercise 1: log-weights (-3, -1, -2) of K = 3 draws: the ELBO's estimate is their mean, -2; the
# importance-weighted bound is log((e^-3 + e^-1 + e^-2) / 3) = -1.6915.
# Exercise 2: log p(x) = -19 nats for 64 binary pixels: 19 / (64 ln 2) = 0.4283 bits per dimension.

_LOG_W = torch.tensor([-3.0, -1.0, -2.0], dtype=torch.float64)
_IW = (torch.logsumexp(_LOG_W, 0) - math.log(3)).item()
_NATS, _PIXELS = 19.0, 64
_BITS = _NATS / (_PIXELS * math.log(2))


def _l11_iw(answer):
    known_mistakes = {
        _LOG_W.mean().item(): "that is the mean of the log-weights, the ELBO's estimate; the bound averages the "
                              "weights themselves, then takes the log",
        torch.logsumexp(_LOG_W, 0).item(): "that is the log of the sum of the weights; divide the sum by K = 3 "
                                           "(subtract log 3)",
        _LOG_W.max().item(): "that is the largest log-weight, which the bound approaches only when one weight "
                             "dominates; average the three weights",
        math.exp(_IW): "that is the average weight itself, an estimate of p(x); the bound is its logarithm",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _IW, 1e-3,
                                                                           "the importance-weighted bound")


def _l11_bits(answer):
    known_mistakes = {
        _NATS / _PIXELS: "that is nats per dimension; divide by ln 2 as well to get bits",
        _NATS / math.log(2): "that is bits per image; divide by the 64 pixels",
        -_BITS: "the sign: bits per dimension are a cost, -log2 p(x) / 64, a positive number",
        _NATS * math.log(2) / _PIXELS: "multiply by log2(e) = 1 / ln 2, not by ln 2",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _BITS, 1e-3,
                                                                           "the bits per dimension")


QUESTIONS = {
    "iw": Exercise(
        "an importance-weighted bound from three log-weights", _l11_iw,
        "The ELBO's estimate averages the log-weights; the importance-weighted bound averages the weights "
        "w_k = exp(log w_k) and then takes the log. torch.logsumexp keeps it stable.",
        "log_w = torch.tensor([-3.0, -1.0, -2.0])\n"
        "answer = (torch.logsumexp(log_w, 0) - math.log(len(log_w))).item()",
        praise="Well done: -1.69, above the ELBO's -2 (Jensen's inequality: the log of a mean exceeds the mean of "
               "the logs), and below the largest log-weight, -1.",
    ),
    "bits": Exercise(
        "bits per dimension of binary pixels", _l11_bits,
        "Bits per dimension: -log2 p(x) divided by the number of pixels; nats become bits when divided by ln 2.",
        "answer = 19.0 / (64 * math.log(2))",
        praise="Well done: 0.428 bits per pixel, where sending the pixels raw costs 1 bit each.",
    ),
}
