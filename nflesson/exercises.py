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


def lesson(number):
    """The exercises of lesson ``number``, by name (the dict LESSON_NN below)."""
    return globals()[f"LESSON_{number:02d}"]


# --- the exercises of each lesson: one LESSON_NN dict per lesson, in lesson order ---------------

def _lognormal_density(answer):
    expected = torch.distributions.LogNormal(0.0, 1.0).log_prob(torch.tensor(2.0)).exp().item()
    if isinstance(answer, (int, float)) and abs(answer - math.exp(-0.5 * math.log(2) ** 2) / math.sqrt(2 * math.pi)) < 1e-4:
        return "that is p_z(log 2): the Jacobian factor 1/x is missing"
    return check_number(answer, expected, 1e-4, "p_x(2)")


def _rotation_log_det(answer):
    if isinstance(answer, (int, float)) and abs(answer - 4) < 1e-3:
        return "4 is |det A| itself; the question asks for its logarithm"
    if isinstance(answer, (int, float)) and abs(answer + math.log(4)) < 1e-3:
        return "that is the log-det of the inverse map (data -> base); the forward map expands area"
    if isinstance(answer, (int, float)) and abs(answer - math.log(2)) < 1e-3:
        return "log 2 counts the scaling once, but it acts on both coordinates: area grows by 2 x 2"
    return check_number(answer, math.log(4), 1e-4, "log|det A|")


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
        "log|det| of 'scale by 2, rotate by 45 degrees'", _rotation_log_det,
        "A rotation keeps areas; a scaling by 2 of both coordinates multiplies areas by 2 * 2. "
        "torch.linalg.slogdet returns the log of |det|.",
        "angle = torch.tensor(torch.pi / 4)\n"
        "rotation = torch.tensor([[torch.cos(angle), torch.sin(angle)], [-torch.sin(angle), torch.cos(angle)]])\n"
        "answer = torch.linalg.slogdet(2 * rotation).logabsdet.item()",
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


