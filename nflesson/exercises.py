"""Self-checking exercises: ``q.check(answer)`` gives specific feedback (what is wrong and how
far off), ``q.hint()`` a nudge, ``q.solution()`` the worked answer. An unanswered exercise
(``answer = ...``) is reported as such and never stops the rest of the lesson."""

import math

import torch
from IPython.display import Markdown


class Feedback:
    """The verdict of a check: ``correct`` (bool) and a ``message`` saying why."""

    def __init__(self, correct, message):
        self.correct, self.message = correct, message

    def __bool__(self):
        return self.correct

    def __repr__(self):
        return ("Correct: " if self.correct else "Not yet: ") + self.message

    def _repr_markdown_(self):
        return ("✅ **Correct.** " if self.correct else "❌ **Not yet.** ") + self.message


class Exercise:
    """One exercise. ``checker(answer)`` returns None when the answer is right, else a message
    saying what is wrong; ``praise`` is shown on success."""

    def __init__(self, title, checker, hint, solution, praise="Well done."):
        self.title, self.checker, self._hint, self._solution, self.praise = title, checker, hint, solution, praise

    def check(self, answer):
        if answer is Ellipsis:
            return Feedback(False, "no answer yet: replace `...` with your answer and run the cell again.")
        try:
            problem = self.checker(answer)
        except Exception as exc:  # a malformed answer is feedback, not a crash
            problem = f"checking your answer raised {type(exc).__name__}: {exc}"
        return Feedback(problem is None, self.praise if problem is None else problem)

    def hint(self):
        """A nudge towards the answer (shown as Markdown in a notebook)."""
        return Markdown(f"**Hint.** {self._hint}")

    def solution(self):
        """The worked answer (shown as Markdown in a notebook)."""
        return Markdown(f"**Solution.**\n\n```python\n{self._solution.strip()}\n```")

    def __repr__(self):
        return f"Exercise({self.title!r})"


def check_number(answer, expected, tolerance, what="the answer"):
    """None if ``answer`` is a number within ``tolerance`` of ``expected``, else how far off."""
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            return f"{what} should be a single number, got a tensor of shape {tuple(answer.shape)}"
        answer = answer.item()
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        return f"{what} should be a number, got {type(answer).__name__}"
    if not math.isfinite(answer):
        return f"{what} is {answer}, not a finite number"
    error = answer - expected
    if abs(error) <= tolerance:
        return None
    return f"{what} is {answer:.4g}, off by {error:+.3g} (allowed: ±{tolerance:g})"


def check_tensor(answer, expected, tolerance, what="the answer"):
    """None if ``answer`` is a tensor of the expected shape within ``tolerance`` everywhere."""
    if not isinstance(answer, torch.Tensor):
        return f"{what} should be a torch.Tensor, got {type(answer).__name__}"
    if answer.shape != expected.shape:
        return f"{what} has shape {tuple(answer.shape)}, expected {tuple(expected.shape)}"
    error = (answer.detach().to(expected.dtype) - expected).abs().max().item()
    if error <= tolerance:
        return None
    return f"{what} differs from the expected values by up to {error:.3g} (allowed: {tolerance:g})"


def _as_float(value):
    """A plain float from a number or a one-element tensor, else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _near(value, target, tolerance=1e-3):
    """Whether a float from _as_float is within tolerance of target (to recognise known mistakes)."""
    return value is not None and math.isfinite(value) and abs(value - target) < tolerance


def known_mistake(value, mistakes, tolerance=1e-3):
    """The message for the first typical wrong answer (a key of ``mistakes``) that ``value``
    (a float from _as_float, or None) is near, else None."""
    for wrong, message in mistakes.items():
        if _near(value, wrong, tolerance):
            return message
    return None


def lesson(number):
    """The exercises of lesson ``number``, by name (the dict LESSON_NN below)."""
    return globals()[f"LESSON_{number:02d}"]


# --- the exercises of each lesson: one LESSON_NN dict per lesson, in lesson order ---------------

def _lognormal_density(answer):
    expected = torch.distributions.LogNormal(0.0, 1.0).log_prob(torch.tensor(2.0)).exp().item()
    if _near(_as_float(answer), math.exp(-0.5 * math.log(2) ** 2) / math.sqrt(2 * math.pi), 1e-4):
        return "that is p_z(log 2): the Jacobian factor 1/x is missing"
    return check_number(answer, expected, 1e-4, "p_x(2)")


def _rotation_log_det(answer):
    known_mistakes = {
        1.5: "1.5 is |det A| itself; the question asks for its logarithm",
        -math.log(1.5): "that is the log-det of the inverse map (data -> base); this map expands area",
        math.log(3.5): "scales multiply areas, they do not add: the area factor is 3 x 0.5",
        math.log(3): "the second coordinate is scaled too (by 0.5): the area factor is 3 x 0.5",
    }
    return known_mistake(_as_float(answer), known_mistakes) or check_number(answer, math.log(1.5), 1e-4, "log|det A|")


def _sigmoid_density(answer):
    if not callable(answer):
        return f"the answer should be a function of x, got {type(answer).__name__}"
    x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    got = answer(x)
    z = torch.logit(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(z).exp()
    if isinstance(got, torch.Tensor) and got.shape == x.shape and torch.allclose(got, base, atol=1e-6):
        return "that is p_z(logit x): multiply by |d logit(x)/dx| = 1 / (x (1 - x))"
    return check_tensor(got, base / (x * (1 - x)), 1e-6, "p_x on a grid of x in (0, 1)")


LESSON_01 = {
    "lognormal": Exercise(
        "the log-normal density at x = 2", _lognormal_density,
        "x = exp(z) has inverse z = log x, and |dz/dx| = 1/x. Evaluate p_z(log 2) / 2 with "
        "torch.distributions.Normal(0, 1).",
        "z = torch.log(torch.tensor(2.0))\n"
        "answer = (torch.distributions.Normal(0.0, 1.0).log_prob(z).exp() / 2.0).item()",
    ),
    "rotation": Exercise(
        "log|det| of 'scale by (3, 0.5), rotate by 30 degrees'", _rotation_log_det,
        "A rotation keeps areas; scaling the coordinates by 3 and 0.5 multiplies areas by their "
        "product. torch.linalg.slogdet returns the log of |det| of a matrix, if you build A.",
        "turn = torch.tensor(torch.pi / 6)\n"
        "spin = torch.tensor([[torch.cos(turn), torch.sin(turn)], [-torch.sin(turn), torch.cos(turn)]])\n"
        "answer = torch.linalg.slogdet(torch.diag(torch.tensor([3.0, 0.5])) @ spin).logabsdet.item()",
    ),
    "sigmoid": Exercise(
        "the density of sigmoid(z)", _sigmoid_density,
        "The inverse of the sigmoid is z = logit(x) = log(x / (1 - x)), whose derivative is "
        "1 / (x (1 - x)).",
        "def answer(x):\n"
        "    z = torch.logit(x)\n"
        "    return torch.distributions.Normal(0.0, 1.0).log_prob(z).exp() / (x * (1 - x))",
    ),
}




# --- lesson 02: a 1D affine flow ---------------------------------------------------------------
# Layer 1 (base side): log_scale 0.5, shift 1.0; layer 2: log_scale -0.2, shift -0.5.
# Together: x = A z + B with A = exp(0.3), B = exp(-0.2) * 1.0 - 0.5.

_L02_A = math.exp(0.5) * math.exp(-0.2)
_L02_B = math.exp(-0.2) * 1.0 - 0.5
_L02_DATA = [0.3, 1.9, 2.4, 0.8, 1.1, 3.0]


def _affine_composition(answer):
    if isinstance(answer, torch.Tensor):
        answer = answer.flatten().tolist()
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return f"the answer should be a pair (A, B) of two numbers, got {type(answer).__name__}"
    scale, shift = _as_float(answer[0]), _as_float(answer[1])
    if scale is None or shift is None:
        return "both A and B should be numbers (floats or one-element tensors)"
    if _near(scale, 0.3):
        return "0.3 is log A: the log-scales add, and the scale itself is A = exp(0.5 - 0.2)"
    if _near(scale, 0.5 * -0.2):
        return "multiply the scales exp(0.5) and exp(-0.2), not the log-scales"
    if _near(scale, math.exp(0.5) + math.exp(-0.2)):
        return "the scales multiply (a2 (a1 z + b1) + b2 has slope a2 a1); they do not add"
    if _near(scale, _L02_A) and _near(shift, 1.0 - 0.5):
        return "A is right; for B, the shift of layer 1 passes through layer 2, which scales it by exp(-0.2)"
    if _near(scale, _L02_A) and _near(shift, -0.2 * 1.0 - 0.5):
        return "A is right; for B, layer 2 scales the first shift by its scale exp(-0.2), not by its log-scale"
    if _near(scale, _L02_A) and _near(shift, math.exp(0.5) * -0.5 + 1.0):
        return "that composes the layers in the wrong order: layer 1 acts first (on z), layer 2 on its output"
    return check_number(scale, _L02_A, 1e-4, "A") or check_number(shift, _L02_B, 1e-4, "B")


def _affine_log_density(answer):
    value = _as_float(answer)
    z = (2.0 - _L02_B) / _L02_A
    log_p_z = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    expected = log_p_z - math.log(_L02_A)
    if _near(value, log_p_z):
        return "that is log p_z(z) alone: the Jacobian term is missing (add the inverse log-det, -log A = -0.3)"
    if _near(value, log_p_z + math.log(_L02_A)):
        return ("wrong sign of the log-det: the flow stretches by A = exp(0.3) > 1, which makes the density "
                "lower, so subtract 0.3")
    if _near(value, math.exp(expected), 1e-4):
        return "that is p_x(2) itself; the question asks for its logarithm"
    if _near(value, -0.5 * 2.0**2 - 0.5 * math.log(2 * math.pi) - math.log(_L02_A)):
        return "that evaluates the base density at x = 2; first map x back to z = (x - B) / A"
    return check_number(answer, expected, 1e-4, "log p_x(2)")


def _affine_mle_log_scale(answer):
    value = _as_float(answer)
    data = torch.tensor(_L02_DATA, dtype=torch.float64)
    biased, unbiased = data.std(correction=0).item(), data.std().item()
    if _near(value, math.log(unbiased)):
        return ("that is the log of the unbiased standard deviation (dividing by n - 1, torch.std's default); "
                "maximum likelihood divides by n: use std(correction=0)")
    if _near(value, biased) or _near(value, unbiased):
        return "that is the scale itself; log_scale is its logarithm"
    if _near(value, 2 * math.log(biased)) or _near(value, 2 * math.log(unbiased)):
        return "that is the log of the variance; the scale is the standard deviation, so halve it"
    if _near(value, math.log(data.mean().item())):
        return "that is the log of the mean; the mean is what the shift learns, the scale learns the spread"
    return check_number(answer, math.log(biased), 1e-3, "log_scale")


LESSON_02 = {
    "compose": Exercise(
        "two affine layers as one", _affine_composition,
        "Substitute: layer 2 gives x = a2 * (a1 * z + b1) + b2 with a_k = exp(log_scale_k). Expand and read off "
        "the slope A and the intercept B.",
        "scale = math.exp(0.5) * math.exp(-0.2)  # the scales multiply: exp(0.5 - 0.2)\n"
        "shift = math.exp(-0.2) * 1.0 + (-0.5)  # layer 2 also scales the shift of layer 1\n"
        "answer = (scale, shift)",
    ),
    "log_density": Exercise(
        "the log-density of the two-layer flow at x = 2", _affine_log_density,
        "Map x back to the base: z = (x - B) / A with A, B from Exercise 1. Then "
        "log p_x(x) = log p_z(z) + log|dz/dx| = log p_z(z) - log A.",
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


# --- lesson 03: a 2D linear flow ---------------------------------------------------------------
# Exercise 1: L = [[2, 0, 0], [1, -0.5, 0], [3, 4, 3]], log|det L| = log|2 * -0.5 * 3| = log 3.
# Exercise 2: W = [[1, 2], [0, 1]], b = (1, -1): Cov(z W + b) = W^T W = [[1, 2], [2, 5]].
# Exercise 3: W = [[1.5, 0.5], [0, 2]] (det 3) on a 2D N(0, I): H = log(2 pi) + 1 + log 3.

_L03_W = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
_L03_B = torch.tensor([1.0, -1.0], dtype=torch.float64)
_L03_BASE_ENTROPY = math.log(2 * math.pi) + 1


def _triangular_log_det(answer):
    value = _as_float(answer)
    if value is not None and math.isnan(value):
        return ("the result is nan: the log of the diagonal entry -0.5 is not defined. The formula has "
                "|det L|: take the absolute values before the log")
    if _near(value, -3.0):
        return "-3 is det L itself (the product of the diagonal); the question asks for log|det L|"
    if _near(value, 3.0):
        return "3 is |det L|; the question asks for its logarithm"
    if _near(value, 4.5):
        return "4.5 is the trace, the sum of the diagonal; the determinant of a triangular matrix is its product"
    if _near(value, math.log(4.5)):
        return "that is the log of the trace; log|det L| is the sum of log|L_ii| over the diagonal"
    if _near(value, -math.log(3)):
        return "that is -log|det L|, the log-det of the inverse map; the question asks about L itself"
    if _near(value, math.log(6)):
        return "log 6 leaves out the entry -0.5: every diagonal entry counts, through its absolute value"
    return check_number(answer, math.log(3), 1e-4, "log|det L|")


def _linear_covariance(answer):
    expected = _L03_W.T @ _L03_W
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        return check_tensor(answer, expected, 1e-4, "the covariance")
    got = answer.detach().to(torch.float64)

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
    value = _as_float(answer)
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


LESSON_03 = {
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


# --- lesson 05 (coupling flows) ---------------------------------------------------------------
# Exercise 1: a 4D affine coupling layer keeps z_0, z_1 and changes z_2, z_3 with log-scales
# s = (0.4 z_0, 0.3 z_1) and shifts t = (z_0 + z_1, z_0 z_1), at z = (1, -2, 0.5, 3): log-det -0.2.
# Exercise 2: a 2D layer keeps x_0, x_1 = z_1 exp(0.5 z_0) + z_0^2; invert it at x = (1, 3).
# Exercise 3: the parameters of nf.AffineCoupling(6, mask="alternating", hidden=32): 1382.

_L05_S = (0.4, -0.6)  # the log-scales at z
_L05_T = (-1.0, -2.0)  # the shifts at z
_L05_X = (1.0, 3.0)


def _l05_log_det(answer):
    value = _as_float(answer)
    expected = sum(_L05_S)
    if _near(value, math.exp(expected)):
        return "that is det J itself, exp(-0.2); the question asks for its logarithm, the sum of the log-scales"
    if _near(value, -expected):
        return "wrong sign: that is the log-det of the inverse map (data -> base); the forward map adds +s"
    if _near(value, expected + sum(_L05_T)):
        return ("the shifts t do not enter the log-det: a shift moves points without stretching them, so only "
                "the log-scales s count")
    if _near(value, 0.4 * 0.5 + 0.3 * 3.0):
        return ("the conditioner reads the kept coordinates z_0 = 1 and z_1 = -2, not the changed ones: "
                "s = (0.4 z_0, 0.3 z_1)")
    if _near(value, math.exp(0.4) + math.exp(-0.6)):
        return "that adds the scales exp(s); log|det J| adds the log-scales s themselves"
    if _near(value, 0.0):
        return "0 is the log-det of an additive (NICE) layer; this one is affine and scales by exp(s)"
    return check_number(answer, expected, 1e-4, "log|det J|")


def _l05_inverse(answer):
    x0, x1 = _L05_X
    s, t = 0.5 * x0, x0**2
    expected = torch.tensor([x0, (x1 - t) * math.exp(-s)], dtype=torch.float64)
    if _as_float(answer) is not None:
        return "give both coordinates of z as a tensor of 2 numbers: z_0 and z_1"
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        return check_tensor(answer, expected, 1e-4, "z")
    got = answer.detach().to(torch.float64)
    if abs(got[0].item() - x0) > 1e-3:
        return "the kept coordinate passes through unchanged: z_0 = x_0 = 1"
    wrong = {
        x1 * math.exp(-s) - t: "undo the steps in reverse order: subtract the shift t first, then divide by exp(s)",
        (x1 - t) * math.exp(s): "the forward map multiplied by exp(s); its inverse divides by it",
        x1 * math.exp(s) + t: "that applies the forward map to x again; the inverse undoes it",
        (x1 - t) / s: "s is a log-scale: the scale is exp(s), so divide by exp(0.5), not by 0.5",
        x1 - t: "the scale is missing: after subtracting t, divide by exp(s(z_0))",
    }
    return known_mistake(got[1].item(), wrong) or check_tensor(answer, expected, 1e-4, "z")


def _l05_parameters(answer):
    value = _as_float(answer)
    if value is None:
        return f"the answer should be a number (a count), got {type(answer).__name__}"
    kept, changed, hidden = 3, 3, 32
    first, middle = kept * hidden + hidden, hidden * hidden + hidden
    wrong = {
        first + middle + hidden * changed + changed: "that counts an additive (NICE) conditioner; an affine one "
        "outputs a shift and a log-scale for each changed coordinate",
        6 * hidden + hidden + middle + hidden * 2 * changed + 2 * changed: "the conditioner sees only the kept "
        "coordinates (3 of them), not all 6",
        first + middle + hidden * 12 + 12: "the conditioner outputs a shift and a log-scale only for the 3 "
        "changed coordinates: 6 outputs, not 12",
        kept * hidden + hidden * hidden + hidden * 2 * changed: "every nn.Linear has biases too, one per output",
        first + hidden * 2 * changed + 2 * changed: "that is a one-hidden-layer conditioner (the articles' "
        "example); nflesson's has two hidden layers",
    }
    for count, message in wrong.items():
        if _near(value, count):
            return message
    return check_number(value, first + middle + hidden * 2 * changed + 2 * changed, 0.5, "the number of parameters")


LESSON_05 = {
    "log_det": Exercise(
        "the log-det of an affine coupling layer", _l05_log_det,
        "The Jacobian is triangular once the kept coordinates come first: ones for the kept coordinates and "
        "exp(s_j) for the changed ones on its diagonal. Evaluate s at the kept coordinates of z.",
        "z = torch.tensor([1.0, -2.0, 0.5, 3.0])\n"
        "s = torch.stack([0.4 * z[0], 0.3 * z[1]])  # evaluated at the kept coordinates z_0, z_1\n"
        "answer = s.sum().item()  # only the log-scales count: the shifts and the kept part add 0",
        praise="Well done: log|det J| = 0.4 - 0.6 = -0.2, and no Jacobian was needed to find it.",
    ),
    "inverse": Exercise(
        "inverting a coupling layer", _l05_inverse,
        "The kept coordinate is the same on both sides, so z_0 = x_0, and s and t can be evaluated at it. "
        "Then solve x_1 = z_1 exp(s) + t for z_1.",
        "x = torch.tensor([1.0, 3.0])\n"
        "s, t = 0.5 * x[0], x[0] ** 2  # z_0 = x_0, so the conditioner can run on x_0\n"
        "answer = torch.stack([x[0], (x[1] - t) * torch.exp(-s)])",
        praise="Well done: z = (1, 2 e^(-1/2)) ≈ (1, 1.2131), with one pass of the conditioner and no "
               "inverse of it.",
    ),
    "parameters": Exercise(
        "the parameters of a coupling layer", _l05_parameters,
        "The conditioner maps the kept coordinates to a shift and a log-scale per changed coordinate, through "
        "two hidden layers of width 32. An nn.Linear(n_in, n_out) has n_in * n_out weights and n_out biases. "
        "Check your count afterwards with sum(p.numel() for p in layer.parameters()).",
        "kept, changed, hidden = 3, 3, 32  # the alternating mask keeps coordinates 0, 2 and 4 of 6\n"
        "first = kept * hidden + hidden  # an nn.Linear(n_in, n_out) holds n_in * n_out + n_out numbers\n"
        "middle = hidden * hidden + hidden\n"
        "last = hidden * 2 * changed + 2 * changed  # a shift and a log-scale per changed coordinate\n"
        "answer = first + middle + last",
        praise="Well done: 128 + 1056 + 198 = 1382 parameters, almost all of them in the middle layer.",
    ),
}


# --- lesson 06: autoregressive flows -----------------------------------------------------------
# Exercise 1: a 4D autoregressive layer: the d(d - 1)/2 = 6 entries above the diagonal are zero.
# Exercise 2: MAF, 5 layers, d = 10: sampling takes 5 x 10 = 50 MADE passes (scoring takes 5).
# Exercise 3: x1 = exp(0.5) z1 + 1, s2 = 0.3 x1, s3 = -0.2 x1 + 0.1 x2 at z = (1, 0, 2):
#             log|det J| = 0.5 + s2 + s3.

_L06_X1 = math.exp(0.5) + 1.0
_L06_LOG_DET = 0.5 + 0.3 * _L06_X1 + (-0.2 * _L06_X1 + 0.1 * 0.0)


def _l06_as_count(answer):
    value = _as_float(answer)
    if value is None or not math.isfinite(value) or value != round(value):
        return None
    return int(round(value))


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
    value = _as_float(answer)
    x1 = _L06_X1
    if _near(value, 0.5 + 0.3 - 0.2):
        return ("0.6 adds up the coefficients, or evaluates s_i at z; the log-scales are functions of the "
                "DATA coordinates x_<i: compute x_1 first, then s_2 = 0.3 x_1 and s_3 = -0.2 x_1 + 0.1 x_2")
    if _near(value, math.exp(_L06_LOG_DET)):
        return "that is |det J| itself; the question asks for its logarithm, the sum of the s_i"
    if _near(value, -_L06_LOG_DET):
        return "that is the log-det of the inverse (scoring) direction, -sum s_i; the question asks about z -> x"
    if _near(value, 0.3 * x1 + (-0.2 * x1)):
        return "the first coordinate has a log-scale too: s_1 = 0.5 (a constant, as x_1 has nothing before it)"
    if _near(value, 0.5 + 0.3 * (x1 - 1.0) - 0.2 * (x1 - 1.0)):
        return "x_1 includes its shift: x_1 = exp(0.5) · 1 + 1, and the conditioners see that value"
    return check_number(answer, _L06_LOG_DET, 1e-4, "log|det J|")


LESSON_06 = {
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


# --- lesson 04: planar and radial flows --------------------------------------------------------
# Exercise 1: planar w = (1, 2), u = (0.5, -0.2), b = 0.5 at z = (0.3, -0.1): a = 0.6, w.u = 0.1,
#   log|det J| = log(1 + (1 - tanh^2 0.6) 0.1).
# Exercise 2: radial z0 = (1, 1), alpha = 0.5, beta = 2, x = (4, 5): R = 5 and r solves
#   r^2 + (alpha + beta - R) r - alpha R = 0, r >= 0.
# Exercise 3: KL = final loss + log Z = -1.90 + 2.08.

def _l04_planar_log_det_value(a, wu=0.1):
    return math.log(1 + (1 - math.tanh(a) ** 2) * wu)


def _l04_planar_log_det(answer):
    value = _as_float(answer)
    expected = _l04_planar_log_det_value(0.6)
    if _near(value, math.exp(expected), 1e-4):
        return "that is |det J| itself; the question asks for its logarithm"
    if _near(value, -expected, 1e-4):
        return "that is the log-det of the inverse map (data -> base); the question asks about z -> x"
    if _near(value, math.log(1.1), 2e-4):
        return ("that is log(1 + w.u): the factor h'(a) = 1 - tanh²(a) is missing from the lemma's "
                "v = h'(a) w")
    if _near(value, math.log(1 + math.tanh(0.6) * 0.1), 2e-4):
        return "that uses tanh(a); the Jacobian has the derivative h'(a) = 1 - tanh²(a) instead"
    if _near(value, _l04_planar_log_det_value(0.1), 2e-4):
        return "a = w.z + b: the bias b = 0.5 is missing (a should be 0.6)"
    return check_number(answer, expected, 1e-4, "log|det J|")


_L04_R = 5.0
_L04_P = 0.5 + 2.0 - _L04_R


def _l04_radial_radius(answer):
    value = _as_float(answer)
    root = math.sqrt(_L04_P**2 + 4 * 0.5 * _L04_R)
    if _near(value, _L04_R):
        return ("5 is |x - z0|, the distance after the map; with beta > 0 the layer pushed the point "
                "outwards, so r is smaller")
    if _near(value, (-_L04_P - root) / 2):
        return "that is the negative root of the quadratic; a distance r = |z - z0| is never negative"
    if _near(value, _L04_R * (0.5 + _L04_R + 2.0) / (0.5 + _L04_R)):
        return "that applies the forward map to R; going back from x to z needs its inverse"
    if _near(value, _L04_R - 2.0):
        return ("R - beta would hold if the point moved by beta; it moves by beta r / (alpha + r): "
                "solve R = r (alpha + r + beta) / (alpha + r) for r")
    return check_number(answer, (-_L04_P + root) / 2, 1e-4, "r")


def _l04_reverse_kl(answer):
    value = _as_float(answer)
    loss, log_z = -1.90, 2.08
    mistake = known_mistake(value, {
        loss - log_z: "wrong sign for log Z: the loss is KL - log Z, so KL = loss + log Z",
        loss: "that is the loss itself; it is off from the KL by the constant log Z",
        -loss: "the loss is KL - log Z, not -KL: add log Z to it",
        log_z - loss: "the loss enters with its own sign: KL = loss + log Z",
    })
    if mistake:
        return mistake
    if value is not None and value < 0:
        return "a KL divergence is never negative; check how the loss and log Z combine"
    return check_number(answer, loss + log_z, 1e-3, "KL(q || p)")


LESSON_04 = {
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
        "final_loss, log_normalizer = -1.90, 2.08\n"
        "answer = final_loss + log_normalizer  # the loss is KL minus log Z",
        praise="Well done: 0.18 nats. A loss below -log Z would mean a negative KL, so -log Z is its floor.",
    ),
}
