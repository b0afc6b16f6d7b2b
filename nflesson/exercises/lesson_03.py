"""The exercises of lesson 3, a 2D linear flow: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, as_tensor, check_number, check_tensor, known_mistake, near

# Exercise 1: L = [[2, 0, 0], [1, -0.5, 0], [3, 4, 3]], log|det L| = log|2 * -0.5 * 3| = log 3.
# Exercise 2: W = [[1, 2], [0, 1]], b = (1, -1): Cov(z W + b) = W^T W = [[1, 2], [2, 5]].
# Exercise 3: W = [[1.5, 0.5], [0, 2]] (det 3) on a 2D N(0, I): H = log(2 pi) + 1 + log 3.

_L03_W = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
_L03_B = torch.tensor([1.0, -1.0], dtype=torch.float64)
_L03_BASE_ENTROPY = math.log(2 * math.pi) + 1


def _triangular_log_det(answer):
    value = as_float(answer)
    if value is not None and math.isnan(value):
        return ("the result is nan: the log of the diagonal entry -0.5 is not defined. The formula has "
                "|det L|: take the absolute values before the log")
    if near(value, -3.0):
        return "-3 is det L itself (the product of the diagonal); the question asks for log|det L|"
    if near(value, 3.0):
        return "3 is |det L|; the question asks for its logarithm"
    if near(value, 4.5):
        return "4.5 is the trace, the sum of the diagonal; the determinant of a triangular matrix is its product"
    if near(value, math.log(4.5)):
        return "that is the log of the trace; log|det L| is the sum of log|L_ii| over the diagonal"
    if near(value, -math.log(3)):
        return "that is -log|det L|, the log-det of the inverse map; the question asks about L itself"
    if near(value, math.log(6)):
        return "log 6 leaves out the entry -0.5: every diagonal entry counts, through its absolute value"
    return check_number(answer, math.log(3), 1e-4, "log|det L|")


def _linear_covariance(answer):
    expected = _L03_W.T @ _L03_W
    got = as_tensor(answer, expected.shape)
    if got is None:
        return check_tensor(answer, expected, 1e-4, "the covariance")

    def same(matrix):
        return bool(torch.allclose(got, matrix, atol=1e-3))

    W, b = _L03_W, _L03_B
    if same(W @ W.T):
        return ("that is W Wᵀ, the covariance for column vectors (x = W z + b). Here x = z W + b with row "
                "vectors, so Cov(x) = E[(zW)ᵀ(zW)] = Wᵀ E[zᵀz] W = Wᵀ W")
    if same(W):
        return "that is W itself; the covariance of z W is a product of W and its transpose"
    if same(W * W):
        return "squaring the entries of W is not enough: the coordinates of z W mix, so use a matrix product"
    if same(W.T @ W + torch.outer(b, b)) or same(W @ W.T + torch.outer(b, b)):
        return ("that is the second moment E[xᵀx]; the covariance is taken around the mean, and the shift b "
                "moves the mean, not the spread: leave b out")
    if not torch.allclose(got, got.T, atol=1e-6):
        return "a covariance matrix is symmetric (Cov(x_i, x_j) = Cov(x_j, x_i)); yours is not"
    return check_tensor(answer, expected, 1e-4, "the covariance")


def _linear_entropy(answer):
    value = as_float(answer)
    base, log_det = _L03_BASE_ENTROPY, math.log(3.0)
    mistakes = {
        base: ("that is the entropy of the base N(0, I); the map multiplies areas by |det W| = 3, which "
               "spreads the density out and adds log|det W| to the entropy"),
        base - log_det: "wrong sign: stretching areas by |det W| = 3 makes the density lower and the entropy higher",
        base + 3.0: "that adds |det W| = 3 itself; the entropy changes by its logarithm",
        base + 2 * log_det: "that adds log det(WᵀW) = 2 log|det W|; the entropy of a Gaussian has half of log det Σ",
        log_det: "log|det W| is only the change; add the entropy of the 2D base N(0, I), log(2π) + 1",
        base / 2 + log_det: "that uses the entropy of a 1D standard normal; the 2D one is twice that, log(2π) + 1",
    }
    return known_mistake(value, mistakes) or check_number(answer, base + log_det, 1e-4, "H(x)")


QUESTIONS = {
    "triangular": Exercise(
        "log|det| of a triangular matrix", _triangular_log_det,
        "The determinant of a triangular matrix is the product of its diagonal entries, so log|det L| is the "
        "sum of log|L_ii|. The entries below the diagonal play no part.",
        "diagonal = torch.tensor([2.0, -0.5, 3.0])  # only the diagonal of a triangular matrix matters\n"
        "answer = diagonal.abs().log().sum().item()  # log|2| + log|-0.5| + log|3| = log 3",
        praise="Well done: log 3 ≈ 1.0986, from three numbers on the diagonal, whatever lies below it.",
    ),
    "covariance": Exercise(
        "the covariance of x = z W + b", _linear_covariance,
        "x - b = z W is a row vector, so the covariance is E[(zW)ᵀ (zW)] (a column times a row). Pull the "
        "constant W out of the expectation on both sides and use E[zᵀ z] = I.",
        "W = torch.tensor([[1.0, 2.0], [0.0, 1.0]])\n"
        "answer = W.T @ W",
    ),
    "entropy": Exercise(
        "the entropy of a linear flow", _linear_entropy,
        "With z = f^{-1}(x): -log p_x(x) = -log p_z(z) + log|det W|, and log|det W| is a constant, so "
        "H(x) = H(z) + log|det W|. The 2D standard normal has H(z) = (d/2) log(2πe) = log(2π) + 1, and the "
        "shift b changes nothing.",
        "W = torch.tensor([[1.5, 0.5], [0.0, 2.0]])\n"
        "base_entropy = math.log(2 * math.pi) + 1  # entropy of the 2D standard normal, (d / 2) log(2 pi e)\n"
        "answer = base_entropy + torch.linalg.slogdet(W).logabsdet.item()",
    ),
}
