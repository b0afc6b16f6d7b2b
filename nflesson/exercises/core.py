"""The machinery every lesson's exercises share: an Exercise with its check, hint and solution,
the Feedback a check returns, and helpers that compare answers and recognise typical mistakes."""

import math

import torch
from IPython.display import Markdown


class Feedback:
    """The verdict of a check: ``correct`` (bool), a ``message`` saying why, and ``answered``
    (False while the answer is still the placeholder ``...``: neither right nor wrong)."""

    def __init__(self, correct, message, answered=True):
        self.correct, self.message, self.answered = correct, message, answered

    def __bool__(self):
        return self.correct

    def _verdict(self):
        return "Correct" if self.correct else "Not yet" if self.answered else "Not answered yet"

    def __repr__(self):
        return f"{self._verdict()}: {self.message}"

    def _repr_markdown_(self):
        icon = "✅" if self.correct else "❌" if self.answered else "✏️"
        return f"{icon} **{self._verdict()}.** {self.message}"


class Exercise:
    """One exercise. ``checker(answer)`` returns None when the answer is right, else a message
    saying what is wrong; ``praise`` is shown on success."""

    def __init__(self, title, checker, hint, solution_code, praise="Well done."):
        self.title, self.checker, self._hint, self.praise = title, checker, hint, praise
        self.solution_code = solution_code  # the worked answer: code that sets ``answer``

    def check(self, answer):
        if answer is Ellipsis:
            return Feedback(False, "replace the `...` in the answer cell above with your answer, run it, then "
                                   "run this check again.", answered=False)
        try:
            problem = self.checker(answer)
        except Exception as exc:  # noqa: BLE001 (a malformed answer is feedback, not a crash)
            problem = f"checking your answer raised {type(exc).__name__}: {exc}"
        return Feedback(problem is None, self.praise if problem is None else problem)

    def hint(self):
        """A nudge towards the answer (shown as Markdown in a notebook)."""
        return Markdown(f"**Hint.** {self._hint}")

    def solution(self):
        """The worked answer (shown as Markdown in a notebook)."""
        return Markdown(f"**Solution.**\n\n```python\n{self.solution_code.strip()}\n```")

    def __repr__(self):
        return f"Exercise({self.title!r})"


def check_number(answer, expected, tolerance, what="the answer"):
    """None if ``answer`` is a number within ``tolerance`` of ``expected``, else how far off (for a
    whole ``expected`` and a tolerance under 1, a count, without the tolerance)."""
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
    if float(expected).is_integer() and tolerance < 1:  # a count: exact, no tolerance to speak of
        return f"{what} is {answer:g}, off by {error:+g}"
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


def as_float(value):
    """A plain float from a number or a one-element tensor, else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def near(value, target, tolerance=1e-3):
    """Whether a float from as_float is within tolerance of target (to recognise known mistakes)."""
    return value is not None and math.isfinite(value) and abs(value - target) < tolerance


def known_mistake(value, mistakes, tolerance=1e-3):
    """The message for the first typical wrong answer (a key of ``mistakes``) that ``value``
    (a float from as_float, or None) is near, else None."""
    for wrong, message in mistakes.items():
        if near(value, wrong, tolerance):
            return message
    return None
