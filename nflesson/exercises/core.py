"""The machinery every lesson's exercises share: an Exercise with its check, hint and solution,
the Feedback a check returns, and helpers that compare answers and recognise typical mistakes."""

import math
import numbers

import torch
from IPython.display import Markdown


def _is_array(value):
    """Whether ``value`` is a tensor or an array (numpy's, ...), as opposed to a plain number."""
    return isinstance(value, torch.Tensor) or (hasattr(value, "shape") and hasattr(value, "item")
                                               and not isinstance(value, numbers.Number))


def _type_name(value):
    return "bool" if isinstance(value, bool) else type(value).__name__


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
        if not callable(checker):
            raise TypeError(f"checker must be a function of the answer, got {_type_name(checker)}")
        for name, text in (("title", title), ("hint", hint), ("solution_code", solution_code), ("praise", praise)):
            if not isinstance(text, str):
                raise TypeError(f"{name} must be a string, got {_type_name(text)}")
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
    whole ``expected`` and a tolerance under 1, a count, without the tolerance). Any answer, however
    malformed (None, a string, a list, a tensor of any shape or dtype), gets a message, never an error."""
    if _is_array(answer):
        if math.prod(answer.shape) != 1:
            return f"{what} should be a single number, got a {type(answer).__name__} of shape {tuple(answer.shape)}"
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        return f"{what} should be a number, got {_type_name(answer)}"
    try:
        answer = float(answer)
    except OverflowError:
        return f"{what} is an integer too large for a float (it has {len(str(abs(int(answer))))} digits)"
    if not math.isfinite(answer):
        return f"{what} is {answer}, not a finite number"
    error = answer - expected
    if abs(error) <= tolerance:
        return None
    if float(expected).is_integer() and tolerance < 1:  # a count: exact, no tolerance to speak of
        return f"{what} is {answer:g}, off by {error:+g}"
    return f"{what} is {answer:.4g}, off by {error:+.3g} (allowed: ±{tolerance:g})"


def check_tensor(answer, expected, tolerance, what="the answer"):
    """None if ``answer`` is a tensor of the expected shape within ``tolerance`` everywhere, else
    what is wrong (never an error, however malformed the answer)."""
    if not isinstance(answer, torch.Tensor):
        hint = "; torch.as_tensor(answer) makes one" if _is_array(answer) or isinstance(answer, (list, tuple)) else ""
        return f"{what} should be a torch.Tensor, got {_type_name(answer)}{hint}"
    if answer.is_complex() or answer.dtype == torch.bool:
        return f"{what} should hold real numbers, got a tensor of {answer.dtype}"
    if answer.shape != expected.shape:
        return f"{what} has shape {tuple(answer.shape)}, expected {tuple(expected.shape)}"
    got = answer.detach().to(expected.dtype)
    if not torch.isfinite(got).all():
        return f"{what} has NaN or inf in {int((~torch.isfinite(got)).sum())} of its {got.numel()} entries"
    error = (got - expected).abs().max().item() if got.numel() else 0.0
    if error <= tolerance:
        return None
    return f"{what} differs from the expected values by up to {error:.3g} (allowed: {tolerance:g})"


def as_float(value):
    """A plain float from a real number or a one-element tensor or array, else None (for a huge
    integer: +-inf)."""
    if _is_array(value):
        if math.prod(value.shape) != 1:
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def as_tensor(value, shape):
    """``value`` as a detached float64 tensor if it is a tensor of real, finite numbers of ``shape``,
    else None (``check_tensor`` then says what is wrong)."""
    if not isinstance(value, torch.Tensor) or value.is_complex() or value.dtype == torch.bool:
        return None
    if tuple(value.shape) != tuple(shape):
        return None
    value = value.detach().to(torch.float64)
    return value if torch.isfinite(value).all() else None


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
