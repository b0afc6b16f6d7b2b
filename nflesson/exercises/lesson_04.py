"""The exercises of lesson 4, planar and radial flows: their checkers and ``QUESTIONS``, by name."""

import math

from .core import Exercise, as_float, check_number, known_mistake, near

# Exercise 1: planar w = (1, 2), u = (0.5, -0.2), b = 0.5 at z = (0.3, -0.1): a = 0.6, w.u = 0.1,
#   log|det J| = log(1 + (1 - tanh^2 0.6) 0.1).
# Exercise 2: radial z0 = (1, 1), alpha = 0.5, beta = 2, x = (4, 5): R = 5 and r solves
#   r^2 + (alpha + beta - R) r - alpha R = 0, r >= 0.
# Exercise 3: KL = loss + log Z = -1.83 + 2.113 (the walled U2 of the lesson).

def _l04_planar_log_det_value(a, wu=0.1):
    return math.log(1 + (1 - math.tanh(a) ** 2) * wu)


def _l04_planar_log_det(answer):
    value = as_float(answer)
    expected = _l04_planar_log_det_value(0.6)
    if near(value, math.exp(expected), 1e-4):
        return "that is |det J| itself; the question asks for its logarithm"
    if near(value, -expected, 1e-4):
        return "that is the log-det of the inverse map (data -> base); the question asks about z -> x"
    if near(value, math.log(1.1), 2e-4):
        return ("that is log(1 + w.u): the factor h'(a) = 1 - tanh²(a) is missing from the lemma's "
                "v = h'(a) w")
    if near(value, math.log(1 + math.tanh(0.6) * 0.1), 2e-4):
        return "that uses tanh(a); the Jacobian has the derivative h'(a) = 1 - tanh²(a) instead"
    if near(value, _l04_planar_log_det_value(0.1), 2e-4):
        return "a = w.z + b: the bias b = 0.5 is missing (a should be 0.6)"
    return check_number(answer, expected, 1e-4, "log|det J|")


_L04_R = 5.0
_L04_P = 0.5 + 2.0 - _L04_R


def _l04_radial_radius(answer):
    value = as_float(answer)
    root = math.sqrt(_L04_P**2 + 4 * 0.5 * _L04_R)
    if near(value, _L04_R):
        return ("5 is |x - z0|, the distance after the map; with beta > 0 the layer pushed the point "
                "outwards, so r is smaller")
    if near(value, (-_L04_P - root) / 2):
        return "that is the negative root of the quadratic; a distance r = |z - z0| is never negative"
    if near(value, _L04_R * (0.5 + _L04_R + 2.0) / (0.5 + _L04_R)):
        return "that applies the forward map to R; going back from x to z needs its inverse"
    if near(value, _L04_R - 2.0):
        return ("R - beta would hold if the point moved by beta; it moves by beta r / (alpha + r): "
                "solve R = r (alpha + r + beta) / (alpha + r) for r")
    return check_number(answer, (-_L04_P + root) / 2, 1e-4, "r")


def _l04_reverse_kl(answer):
    value = as_float(answer)
    loss, log_z = -1.83, 2.113
    mistake = known_mistake(value, {
        loss - log_z: "wrong sign for log Z: the loss is KL - log Z, so KL = loss + log Z",
        loss: "that is the loss itself; it is off from the KL by the constant log Z",
        -loss: "the loss is KL - log Z, not -KL: add log Z to it",
        log_z - loss: "the loss enters with its own sign: KL = loss + log Z",
        loss + 2.082: "2.082 is log Z of U2 over the box, without the wall; the walled U2 has log Z = 2.113",
    })
    if mistake:
        return mistake
    if value is not None and value < 0:
        return "a KL divergence is never negative; check how the loss and log Z combine"
    return check_number(answer, loss + log_z, 1e-3, "KL(q || p)")


QUESTIONS = {
    "planar_log_det": Exercise(
        "log|det J| of a planar layer", _l04_planar_log_det,
        "First a = w.z + b. The Jacobian is I + h'(a) u wᵀ with h'(a) = 1 - tanh²(a), and the matrix "
        "determinant lemma turns its determinant into 1 + h'(a) w.u.",
        "w_ex, u_ex, b_ex = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.2]), 0.5\n"
        "a_ex = torch.tensor([0.3, -0.1]) @ w_ex + b_ex  # where the point sits relative to the hyperplane\n"
        "answer = torch.log(1 + (1 - torch.tanh(a_ex) ** 2) * (w_ex @ u_ex)).item()",
        praise="Well done: about 0.0687 nats, from one dot product and one tanh, in any dimension.",
    ),
    "radial_radius": Exercise(
        "the base radius behind a radial layer's output", _l04_radial_radius,
        "The distance to z0 after the map is R = r (alpha + r + beta) / (alpha + r), here R = |x - z0| = 5. "
        "Multiply out: a quadratic in r with one non-negative root.",
        "alpha_ex, beta_ex = 0.5, 2.0\n"
        "big_r = math.hypot(4.0 - 1.0, 5.0 - 1.0)  # |x - z0| = 5\n"
        "p_ex = alpha_ex + beta_ex - big_r  # r^2 + p r - alpha R = 0: keep the non-negative root\n"
        "answer = (-p_ex + math.sqrt(p_ex**2 + 4 * alpha_ex * big_r)) / 2",
        praise="Well done: r ≈ 3.266, and z = z0 + (x - z0) (alpha + r) / (alpha + r + beta) follows.",
    ),
    "reverse_kl": Exercise(
        "KL from a reverse-KL loss", _l04_reverse_kl,
        "The loss leaves out the constant log Z from KL(q || p) = E_q[log q - log p~] + log Z.",
        "final_loss, log_normalizer = -1.83, 2.113\n"
        "answer = final_loss + log_normalizer  # the loss is KL minus log Z",
        praise="Well done: 0.283 nats. A loss below -log Z would mean a negative KL, so -log Z is its floor.",
    ),
}
