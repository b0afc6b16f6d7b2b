"""The exercises of lesson 9, continuous-time flows: their checkers and ``QUESTIONS``, by name."""

import math

import torch

from .core import Exercise, as_float, as_tensor, check_number, check_tensor, known_mistake

# Exercise 1: v = A x with A = [[0.5, 2], [-1, -0.2]] over one unit of time: log|det| = tr A = 0.3.
# Exercise 2: z = (0, 1), x = (2, -1), t = 0.25: the target velocity is x - z = (2, -2) (x_t = (0.5, 0.5)).
# Exercise 3: RK4 with steps=10 per unit of time, asked for the 21 times linspace(0, 1, 21): it stops at each, so
# 20 intervals of 0.05, each ceil(10 x 0.05) = 1 step: 20 steps x 4 evaluations = 80 (not 10 x 4 = 40).

_A = [[0.5, 2.0], [-1.0, -0.2]]
_TRACE = _A[0][0] + _A[1][1]
_DET = _A[0][0] * _A[1][1] - _A[0][1] * _A[1][0]


def _l09_log_det(answer):
    known_mistakes = {
        _DET: "that is det A, the determinant of the field's matrix; the flow map's log-det is the integral "
              "of div v = tr A",
        math.log(abs(_DET)): "log|det A| belongs to the LINEAR MAP x = A z (column vectors, as in the lesson), "
                             "not to the flow of the ODE dx/dt = A x, whose map is e^A: log|det e^A| = tr A",
        math.exp(_TRACE): "that is |det e^A| itself; the question asks for its logarithm",
        _A[0][1] + _A[1][0]: "the trace adds the DIAGONAL entries A_11 + A_22",
        -_TRACE: "that is the log-det of the inverse (data to base) direction",
        sum(sum(row) for row in _A): "only the diagonal enters the divergence: div v = dv_1/dx_1 + dv_2/dx_2",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, _TRACE, 1e-6, "log|det|")


def _l09_target(answer):
    z, x, t = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0]), 0.25
    got = as_tensor(answer, (2,))
    if got is not None:
        for wrong, message in (
            ((1 - t) * z + t * x, "that is the point x_t on the path; the network is trained to output the path's "
                                  "velocity d x_t / dt"),
            (z - x, "the sign: the path runs from the base point z (t = 0) to the data point x (t = 1)"),
            (t * (x - z), "the velocity of the straight path is constant: no factor t"),
            (x, "the target velocity is x - z, not the data point itself"),
        ):
            if torch.allclose(got, wrong.double(), atol=1e-4):
                return message
    return check_tensor(answer, x - z, 1e-4, "the target velocity")


def _l09_nfe(answer):
    known_mistakes = {
        40: "40 is 10 steps of 4 evaluations, what a solve from t = 0 to t = 1 costs when only the end is asked "
            "for; here the solver must stop at each of the 21 times, and each of the 20 intervals between them "
            "gets a step of its own",
        84: "21 times make 20 intervals, not 21: the first time is where the solve starts",
        20: "20 counts the steps (one per interval); RK4 evaluates v at 4 stages in every step",
        160: "10 steps per unit of time over an interval of 0.05 is half a step, rounded up to one, not two",
        10: "10 is the steps per unit of time; count the steps the requested times force, then the evaluations",
        4: "4 is one step's evaluations; how many steps do the 21 requested times force?",
        21: "21 counts the requested times; the solver steps between them, 4 evaluations per RK4 step",
    }
    return known_mistake(as_float(answer), known_mistakes) or check_number(answer, 80.0, 1e-9, "the NFE")


QUESTIONS = {
    "log_det": Exercise(
        "the log-det of a linear field's flow map", _l09_log_det,
        "The divergence of v(x) = A x (x a column vector; in code x @ A.T) is the same at every point: "
        "dv_1/dx_1 + dv_2/dx_2, the sum of A's diagonal. "
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
        "function evaluations of a fixed-step solve that must stop at many times", _l09_nfe,
        "List the intervals between consecutive requested times and how long each is. How many steps does "
        "each get at 10 steps per unit of time, rounded up to at least one? Then 4 evaluations per step.",
        "times = torch.linspace(0, 1, 21)\n"
        "gaps = times.diff()  # 20 intervals of 0.05\n"
        "steps = sum(max(1, math.ceil(10 * gap.item() - 1e-9)) for gap in gaps)  # 10 per unit of time: 1 each\n"
        "answer = 4 * steps  # RK4: 4 evaluations of v per step",
        praise="Well done: 80. Asking for 21 times doubles the cost of the 10 steps a plain solve from 0 to 1 "
               "would take: a fixed-step solver's cost is set by the times you ask for as much as by steps.",
    ),
}
