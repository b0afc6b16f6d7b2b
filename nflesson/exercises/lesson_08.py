"""The exercises of lesson 8, flows on real data: their checkers and ``QUESTIONS``, by name."""

import math

from .core import Exercise, as_float, check_number, known_mistake

# Exercise 1: 120 nats per image of 64 pixels: 120 / (64 ln 2) = 2.705 bits per dimension.
# Exercise 2: q = 0.5 on [0, 0.5) and 1.5 on [0.5, 1): E_u log q = (log 0.5 + log 1.5) / 2 = -0.1438,
#             below log P(0) = 0 (Jensen).
# Exercise 3: 500 images x 64 pixels x 2.2 bits / 8 = 8,800 bytes.

_BITS = 120.0 / (64 * math.log(2))
_BOUND = 0.5 * math.log(0.5) + 0.5 * math.log(1.5)
_BYTES = 500 * 64 * 2.2 / 8


def _l08_bits(answer):
    known_mistakes = {
        120.0 / 64: "that is nats per dimension; a bit is ln 2 ≈ 0.693 nats, so divide by ln 2 as well",
        120.0 / math.log(2): "that is bits per IMAGE; divide by the 64 pixels for bits per dimension",
        120.0 * math.log(2) / 64: "nats become bits by DIVIDING by ln 2 (1 bit = ln 2 nats), not multiplying",
        120.0 / (64 * math.log(10)): "that divides by ln 10 (digits, 'bans'); bits use ln 2",
        120.0 / (17 * math.log(2)): "the dimension is the number of pixels, 64, not the number of levels, 17",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _BITS, 1e-3, "bits per dimension")


def _l08_bound(answer):
    known_mistakes = {
        0.0: "0 is log P(0) itself, the log of the mean of q over the cell; the bound is the mean of the LOG, "
             "E_u log q(u), which is lower",
        -_BOUND: "the sign: log 0.5 < 0 outweighs log 1.5 > 0, so the bound is negative",
        math.log(0.5) + math.log(1.5): "each half of the cell has probability 1/2: weight both logarithms by 0.5",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _BOUND, 1e-4, "E_u log q(u)")


def _l08_bytes(answer):
    known_mistakes = {
        _BYTES * 8: "that is the number of BITS; a byte holds 8 bits",
        64 * 2.2 / 8: "that is the size of ONE image; the question asks for all 500",
        500 * 2.2 / 8: "2.2 bits per DIMENSION: each image has 64 pixels",
        500 * 64 * 8 / 8: "that is the raw size at one byte per pixel; the coder needs 2.2 bits per pixel",
    }
    return known_mistake(as_float(answer), known_mistakes, tolerance=0.5) or check_number(answer, _BYTES, 0.5,
                                                                                         "the number of bytes")


QUESTIONS = {
    "bits": Exercise(
        "nats per image to bits per dimension", _l08_bits,
        "One bit is ln 2 ≈ 0.693 nats, so nats / ln 2 are bits; an image has 64 dimensions (pixels).",
        "nats_per_image, pixels = 120.0, 64\n"
        "answer = nats_per_image / (pixels * math.log(2))  # nats to bits: divide by ln 2; per pixel: divide by 64",
        praise="Well done: about 2.71 bits per pixel, a little worse than the lesson's Gaussian (2.29).",
    ),
    "bound": Exercise(
        "the dequantization bound on one cell", _l08_bound,
        "u is uniform on [0, 1): half of the time u < 0.5 and log q = log 0.5, the other half log q = log 1.5. "
        "Average the two logarithms.",
        "answer = 0.5 * math.log(0.5) + 0.5 * math.log(1.5)  # u < 0.5 and u >= 0.5 each have probability 1/2",
        praise="Well done: about -0.144 nats, below log P(0) = 0, as Jensen's inequality says. The bound is exact "
               "only where q is flat over the cell.",
    ),
    "bytes": Exercise(
        "the size of an ideal code", _l08_bytes,
        "Bits per dimension times pixels per image times images gives the total number of bits; 8 bits make a byte.",
        "images, pixels, bits_per_pixel = 500, 64, 2.2\n"
        "answer = images * pixels * bits_per_pixel / 8  # 8 bits to a byte",
        praise="Well done: 8,800 bytes, against 32,000 bytes at one byte per pixel.",
    ),
}
