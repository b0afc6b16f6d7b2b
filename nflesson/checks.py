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

NaN and inf in points: scoring follows torch, point by point: a point with a NaN coordinate gets
a NaN log-density, a point with an infinite coordinate (and no NaN) has density 0 and gets -inf,
for flows and targets alike; training data and test sets, whose NaN would spoil every number
computed from them, are refused instead, naming the rows.
"""

import math
import numbers

import torch


def type_name(value):
    """The name of ``value``'s type, for messages ('a bool' for True and False)."""
    return "a bool" if isinstance(value, bool) else type(value).__name__


def check_batch(x, dim, what="input", owner="flow", dtype=None):
    """Return ``x`` if it is a floating (batch, dim) tensor (of ``dtype``, if given), else raise
    TypeError (not a tensor, not floating, another dtype) or ValueError (shape) saying why;
    ``owner`` names what expects ``dim`` columns. ``dim=None`` accepts any number of columns."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (batch, dim), got {type_name(x)}; "
                        "torch.as_tensor(values, dtype=torch.float32) makes one")
    if not x.is_floating_point():
        raise TypeError(f"{what} must have a floating dtype (float32 or float64), got {x.dtype}; use x.float()")
    if x.dim() != 2:
        raise ValueError(f"{what} must have shape (batch, dim), got shape {tuple(x.shape)}{_reshape_hint(x, dim)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{what} has {x.shape[1]} columns but this {owner} has dim = {dim}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{what} is {_short(x.dtype)} but this {owner} computes in {_short(dtype)}: convert the "
                        f"points ({_conversion(dtype)}) or the {owner} ({_conversion(x.dtype)}); nothing is cast "
                        "silently")
    return x


def _reshape_hint(x, dim):
    """How to make a (batch, dim) tensor of ``x``, where that is clear."""
    if x.dim() == 1 and dim not in (None, 1) and len(x) == dim:
        return "; use x.reshape(1, -1) for a single point"
    if x.dim() <= 1 and dim in (None, 1):
        return "; use x.reshape(-1, 1) for a batch of scalars"
    return ""


def _short(dtype):
    return str(dtype).replace("torch.", "")


def _conversion(dtype):
    """The method call that converts a tensor or a module to ``dtype``, e.g. '.double()'."""
    return {"float32": ".float()", "float64": ".double()", "float16": ".half()"}.get(_short(dtype), f".to({dtype})")


def check_finite_rows(x, what="data"):
    """Return ``x`` if every entry is finite, else raise ValueError naming the rows that are not
    (and, when ``what`` is a variable's name, how to drop them)."""
    bad = (~torch.isfinite(x)).reshape(len(x), -1).any(1).nonzero().flatten().tolist() if x.numel() else []
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        fix = f"; drop them, e.g. {what}[torch.isfinite({what}).all(1)]" if what.isidentifier() else ""
        raise ValueError(f"{what} has NaN or inf in {len(bad)} of its {len(x)} rows (rows {shown}){fix}")
    return x


def check_number(value, name, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float if it is a finite real number (a Python, numpy or one-element
    tensor number) in the range given (``low`` and ``high`` included unless ``*_open``), else
    raise TypeError (not a number) or ValueError."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type_name(value)}")
    value = float(value)
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


def check_stage(k, count):
    """``k`` if it is a stage of a map's pictures, an integer 0..count, else TypeError or ValueError."""
    if check_int(k, "k") > count:
        raise ValueError(f"k must be a stage 0..{count}, got {k}")
    return k


def check_int(value, name, low=0):
    """Return ``value`` as an int if it is an integer (Python's or numpy's) >= ``low``, else raise
    TypeError or ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}, got {type_name(value)} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_positive_int(value, name):
    """Return ``value`` if it is an integer >= 1, else raise TypeError or ValueError."""
    return check_int(value, name, low=1)


def check_seed(seed, name="seed"):
    """Return ``seed`` if it is an integer >= 0 (what torch.manual_seed needs to repeat a run)."""
    return check_int(seed, name, low=0)


def check_flag(value, name):
    """Return ``value`` if it is True or False, else TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type_name(value)} {value!r}")
    return value


def check_callable(function, name, what):
    """Return ``function`` if it can be called (and is not a class), else TypeError saying ``what`` is needed."""
    if not callable(function) or isinstance(function, type):
        raise TypeError(f"{name} must be {what}, got {type_name(function)}")
    return function


def check_bounds(bounds, dim, name="bounds"):
    """``bounds`` as a tuple of ``dim`` pairs (low, high) of finite floats with low < high, one per
    dimension (the plotting box of a target or a figure), else TypeError or ValueError."""
    pairs_text = f"a sequence of {dim} (low, high) pairs" if dim is not None else "a sequence of (low, high) pairs"
    if isinstance(bounds, torch.Tensor):
        bounds = bounds.tolist()
    if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__") or not hasattr(bounds, "__iter__"):
        raise TypeError(f"{name} must be {pairs_text}, e.g. ((-4, 4), (-3, 3)), got {type_name(bounds)} {bounds!r}")
    if (dim is not None and len(bounds) != dim) or len(bounds) == 0:
        raise ValueError(f"{name} must be {pairs_text}, one per dimension, got {len(bounds)}: {bounds!r}")
    checked = []
    for k, pair in enumerate(bounds):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__"):
            raise TypeError(f"{name}[{k}] must be a (low, high) pair of numbers, got {type_name(pair)} {pair!r}")
        if len(pair) != 2:
            raise ValueError(f"{name}[{k}] must be a (low, high) pair, got {len(pair)} values: {pair!r}")
        low = check_number(pair[0], f"{name}[{k}] low")
        high = check_number(pair[1], f"{name}[{k}] high")
        if not low < high:
            raise ValueError(f"{name}[{k}] must have low < high, got {pair!r}")
        checked.append((low, high))
    return tuple(checked)


def check_generator(generator, device="cpu"):
    """``generator`` if it is None or a torch.Generator on ``device`` (where the numbers are drawn),
    else TypeError (or ValueError for one on another device)."""
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or None, "
                        f"got {type_name(generator)} {generator!r}; for a seed, pass "
                        f"generator=torch.Generator().manual_seed(seed)")
    if generator.device.type != torch.device(device).type:
        raise ValueError(f"generator is on {generator.device} but the numbers are drawn on {device}: pass a generator "
                         f"of that device")
    return generator
