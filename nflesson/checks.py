"""Argument checks shared by the whole package, and the rule they serve.

The rule: every public function and constructor of nflesson checks its arguments before it
changes any state (a parameter, a buffer, an optimiser, the random state, a file), and raises

- ``TypeError`` when an argument has the wrong type (a list where a tensor is needed, a float
  where an integer is, a tensor of another dtype than the flow's), and
- ``ValueError`` when it has the right type and a wrong value (a shape, a range, NaN or inf
  where a finite value is needed),

in nflesson's own words: the argument's name, what it got and what it needs.

Dtypes: a flow computes in the dtype of its parameters, and the points given to it must have
that dtype. Nothing is cast silently: a float64 tensor given to a float32 flow raises
TypeError naming both dtypes and the two fixes (``flow.double()`` or ``x.float()``), so that
precision is never lost without a word. Points the package draws itself (a target's samples
during training) are drawn in the flow's dtype.

Empty batches: a batch of 0 points is valid wherever points are scored or mapped and gives an
empty result (log-densities of shape (0,), points of shape (0, dim)); what cannot work without
points (training data, ActNorm's initialisation, a gap estimate) raises ValueError instead.
"""

import math

import torch


def _name_of(value):
    return "a bool" if isinstance(value, bool) else type(value).__name__


def check_batch(x, dim, what="input", owner="flow", dtype=None):
    """Return ``x`` if it is a floating (batch, dim) tensor (of ``dtype``, if given), else raise
    TypeError (not a tensor, not floating, another dtype) or ValueError (shape) saying why;
    ``owner`` names what expects ``dim`` columns. ``dim=None`` accepts any number of columns."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (batch, dim), got {_name_of(x)}; "
                        "torch.as_tensor(values, dtype=torch.float32) makes one")
    if not x.is_floating_point():
        raise TypeError(f"{what} must have a floating dtype (float32 or float64), got {x.dtype}; use x.float()")
    if x.dim() != 2:
        hint = "; use x.reshape(-1, 1) for a batch of scalars" if x.dim() < 2 else ""
        hint = "; use x.reshape(1, -1) for a single point" if x.dim() == 1 and dim not in (None, 1) else hint
        raise ValueError(f"{what} must have shape (batch, dim), got shape {tuple(x.shape)}{hint}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{what} has {x.shape[1]} columns but this {owner} has dim = {dim}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{what} is {_short(x.dtype)} but this {owner} computes in {_short(dtype)}: convert the "
                        f"points ({_conversion(dtype)}) or the {owner} ({_conversion(x.dtype)}); nothing is cast "
                        "silently")
    return x


def _short(dtype):
    return str(dtype).replace("torch.", "")


def _conversion(dtype):
    """The method call that converts a tensor or a module to ``dtype``, e.g. '.double()'."""
    return {"float32": ".float()", "float64": ".double()", "float16": ".half()"}.get(_short(dtype), f".to({dtype})")


def check_finite_rows(x, what="data"):
    """Return ``x`` if every entry is finite, else raise ValueError naming the rows that are not."""
    bad = (~torch.isfinite(x)).reshape(len(x), -1).any(1).nonzero().flatten().tolist() if x.numel() else []
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise ValueError(f"{what} has NaN or inf in {len(bad)} of its {len(x)} rows (rows {shown}); "
                         f"drop them, e.g. {what}[torch.isfinite({what}).all(1)]")
    return x


def check_number(value, name, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float if it is a finite real number in the range given (``low`` and
    ``high`` included unless ``*_open``), else raise TypeError (not a number) or ValueError."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_name_of(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be {' and '.join(part for part in (left, right) if part)}, got {value!r}")
    return float(value)


def check_positive(value, name):
    """Return ``value`` if it is a finite number > 0, else raise TypeError or ValueError."""
    check_number(value, name, low=0, low_open=True)
    return value


def check_int(value, name, low=0):
    """Return ``value`` if it is an integer >= ``low``, else raise TypeError or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer >= {low}, got {_name_of(value)} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_positive_int(value, name):
    """Return ``value`` if it is an integer >= 1, else raise TypeError or ValueError."""
    return check_int(value, name, low=1)


def check_seed(seed, name="seed"):
    """Return ``seed`` if it is an integer >= 0 (what torch.manual_seed needs to repeat a run)."""
    return check_int(seed, name, low=0)
