"""Self-checking exercises, one module per lesson (``lesson_NN``), on the shared machinery of
``core``: ``q.check(answer)`` gives specific feedback (what is wrong and how far off),
``q.hint()`` a nudge, ``q.solution()`` the worked answer (``q.solution_code``). An unanswered
exercise (``answer = ...``) is reported as such and never stops the rest of the lesson.

    questions = exercises.lesson(5)
    questions["log_det"].check(answer)
"""

import importlib
import numbers
import pkgutil

from .core import (
    Exercise,
    Feedback,
    as_float,
    as_tensor,
    check_number,
    check_tensor,
    known_mistake,
    near,
)

__all__ = ["Exercise", "Feedback", "as_float", "as_tensor", "check_number", "check_tensor", "known_mistake", "lesson",
           "lessons", "near"]


def lessons():
    """The numbers of the lessons that have exercises, in order."""
    return sorted(int(m.name[-2:]) for m in pkgutil.iter_modules(__path__) if m.name.startswith("lesson_"))


def lesson(number):
    """The exercises of lesson ``number``, by name (the QUESTIONS of module lesson_NN)."""
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise TypeError(f"the lesson number must be an integer, one of {lessons()}; got {type(number).__name__} "
                        f"{number!r}")
    number = int(number)
    if number not in lessons():
        raise ValueError(f"no exercises for lesson {number!r}; lessons with exercises: {lessons()}")
    return importlib.import_module(f"{__name__}.lesson_{number:02d}").QUESTIONS
