"""The exercises of lesson 9, continuous-time flows: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, check_number, check_tensor, known_mistake

# Exercise 1: v = A x with A = [[0.5, 2], [-1, -0.2]] over one unit of time: log|det| = tr A = 0.3.
# Exercise 2: z = (0, 1), x = (2, -1), t = 0.25: the target velocity is x - z = (2, -2) (x_t = (0.5, 0.5)).
# Exercise 3: RK4 with 10 steps: 10 x 4 = 40 evaluations of v.

_A = [[0.5, 2.0], [-1.0, -0.2]]
_TRACE = _A[0][0] + _A[1][1]
_DET = _A[0][0] * _A[1][1] - _A[0][1] * _A[1][0]


def _l09_log_det(answer):
    known_mistakes = {
        _DET: "that is det A, the determinant of the field's matrix; the flow map's log-det is the integral "
              "of div v = tr A",
        math.log(abs(_DET)): "log|det A| belongs to the LINEAR MAP x = A z, not to the flow of the ODE dx/dt = A x, "
                             "whose map is e^A: log|det e^A| = tr A",
        math.exp(_TRACE): "that is |det e^A| itself; the question asks for its logarithm",
        _A[0][1] + _A[1][0]: "the trace adds the DIAGONAL entries A_11 + A_22",
        -_TRACE: "that is the log-det of the inverse (data to base) direction",
        sum(sum(row) for row in _A): "only the diagonal enters the divergence: div v = dv_1/dx_1 + dv_2/dx_2",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _TRACE, 1e-6, "log|det|")


def _l09_target(answer):
    z, x, t = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0]), 0.25
    if isinstance(answer, torch.Tensor) and answer.shape == (2,):
        for wrong, message in (
            ((1 - t) * z + t * x, "that is the point x_t on the path; the network is trained to output the path's "
                                  "velocity d x_t / dt"),
            (z - x, "the sign: the path runs from the base point z (t = 0) to the data point x (t = 1)"),
            (t * (x - z), "the velocity of the straight path is constant: no factor t"),
            (x, "the target velocity is x - z, not the data point itself"),
        ):
            if torch.allclose(answer.detach().float(), wrong, atol=1e-4):
                return message
    return check_tensor(answer, x - z, 1e-4, "the target velocity")


def _l09_nfe(answer):
    known_mistakes = {
        10: "10 counts the steps; RK4 evaluates v at 4 stages in every step",
        4: "4 is one step's evaluations; there are 10 steps",
        80: "the divergence is computed in the same evaluation as v (by autograd on its output); it is not a "
            "separate evaluation of v",
        14: "the stages multiply with the steps: 4 evaluations in each of 10 steps",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, 40.0, 1e-9, "the NFE")


QUESTIONS = {
    "log_det": Exercise(
        "the log-det of a linear field's flow map", _l09_log_det,
        "The divergence of v(x) = A x is the same at every point: dv_1/dx_1 + dv_2/dx_2, the sum of A's diagonal. "
        "Integrate it from t = 0 to t = 1.",
        "A = torch.tensor([[0.5, 2.0], [-1.0, -0.2]])\n"
        "answer = torch.trace(A).item() * 1.0  # div v = tr A everywhere, integrated over one unit of time",
        praise="Well done: 0.3, so the flow map multiplies areas by e^0.3 ≈ 1.35 everywhere, whatever the "
               "off-diagonal entries do (they only rotate and shear).",
    ),
    "target": Exercise(
        "the flow matching regression target", _l09_target,
        "On the path x_t = (1 - t) z + t x, differentiate with respect to t.",
        "z, x = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])\n"
        "answer = x - z  # the straight path (1 - t) z + t x moves at the constant velocity x - z, whatever t is",
        praise="Well done: (2, -2), asked of the network at the point x_t = (0.5, 0.5) and time 0.25.",
    ),
    "nfe": Exercise(
        "function evaluations of a fixed-step solve", _l09_nfe,
        "Count the stages of one RK4 step, then multiply by the number of steps.",
        "steps, stages = 10, 4\n"
        "answer = steps * stages  # each evaluation also computes the divergence, but counts once",
        praise="Well done: 40 evaluations, each with its divergence; dopri5 needed about twice as many for the "
               "same accuracy here.",
    ),
}
