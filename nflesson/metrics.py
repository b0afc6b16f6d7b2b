"""How far a model is from the truth, in nats: the KL divergence between a target with an exact
density and a model, estimated by Monte Carlo with its standard error."""

import math
from typing import NamedTuple

import torch

from .bijector import Bijector
from .checks import check_batch, check_finite_rows, check_int, check_number, check_seed, type_name
from .flow import Flow

# A KL estimate is never below zero but by its noise: one further below than this many standard
# errors (and than rounding) comes from a mistake, not from chance.
_NEGATIVE_KL_ERRORS = 5


class Gap(NamedTuple):
    """A KL divergence estimate in nats and the standard error of that estimate."""

    nats: float
    standard_error: float

    def __str__(self):
        """E.g. '0.021 ± 0.002 nats': at least 3 decimals, and enough to show the standard
        error to two significant digits."""
        error = self.standard_error
        digits = 3 if not 0 < error < math.inf else min(max(3, 1 - math.floor(math.log10(error))), 8)
        return f"{self.nats:.{digits}f} ± {error:.{digits}f} nats"


def _log_normalizer(target):
    if not hasattr(target, "log_normalizer"):
        return 0.0
    value = target.log_normalizer()
    check_number(value, "target.log_normalizer()")
    return value


def _mean_and_error(terms):
    terms = terms.double()
    error = terms.std().item() / math.sqrt(len(terms)) if len(terms) > 1 else float("nan")
    return Gap(terms.mean().item(), error)


def _log_prob_of(thing, name, method="log_prob"):
    """``thing.<method>`` (or ``thing`` itself if it is a callable and method is log_prob), else TypeError.
    A bijector without the method is refused too, though it is callable: calling it maps points."""
    function = None if isinstance(thing, type) else getattr(thing, method, None)
    if function is None and method == "log_prob" and callable(thing) and not isinstance(thing, (type, Bijector)):
        function = thing
    if not callable(function):
        what = "a Flow (or anything with log_prob) or a callable returning log q(x)" if name == "model" else \
            f"something with a {method} method"
        hint = ", and a bijector is not a model: wrap it as nf.Flow([b]) (the base density pushed through it)" \
            if isinstance(thing, Bijector) else ""
        raise TypeError(f"{name} must be {what}, got {type_name(thing)}{hint}")
    return function


def _scores(function, points, who):
    """``function(points)``, checked to be a tensor of shape (len(points),) without NaN."""
    values = function(points)
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{who} must return a tensor of log-densities, got {type_name(values)}")
    if tuple(values.shape) != (len(points),):
        raise ValueError(f"{who} must return one log-density per point, shape ({len(points)},), got shape "
                         f"{tuple(values.shape)}" + ("; does it sum over the wrong axis, or score one coordinate?"
                                                      if values.dim() != 1 else ""))
    if values.is_complex() or not values.is_floating_point():
        raise TypeError(f"{who} must return floating log-densities, got {values.dtype}")
    nan = torch.isnan(values)
    if nan.any():
        rows = nan.nonzero().flatten().tolist()
        raise ValueError(f"{who} is NaN at {len(rows)} of the {len(points)} points (rows "
                         f"{', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}), so the gap is undefined")
    return values


def _gap_of(terms, direction, log_p_text):
    """The Gap of the terms, +inf if some are +inf, and a ValueError if it lies far below zero."""
    if torch.isnan(terms).any():  # inf - inf: both densities infinite or both 0 at a point
        raise ValueError(f"the terms of {direction} are undefined (inf - inf) at {int(torch.isnan(terms).sum())} "
                         "points: both densities are 0 (or infinite) there")
    if torch.isposinf(terms).any():
        return Gap(math.inf, math.inf)  # the other density is 0 where this one is not: an infinite KL
    result = _mean_and_error(terms)
    slack = 100 * torch.finfo(terms.dtype).eps * (1 + terms.abs().mean().item())  # rounding, not noise
    if result.nats < -_NEGATIVE_KL_ERRORS * result.standard_error - slack:
        below = -result.nats / result.standard_error if result.standard_error > 0 else math.inf
        raise ValueError(
            f"the estimate of {direction} is {result.nats:.4g} ± {result.standard_error:.2g} nats, {below:.3g} "
            f"standard errors below zero, but a KL divergence is never negative: {log_p_text}")
    return result


@torch.no_grad()
def gap(model, target, test):
    """KL(p || q) of the model q from the target p, from test samples x ~ p ((n, dim)):
    the mean of log p(x) - log q(x), with its standard error.

    KL(p || q) = E_p[log p - log q] = (test NLL of q) - H(p). The mean of -log q alone (the
    test NLL) minus the exact entropy estimates it too, but it carries the noise of the test
    sample's own -mean log p, which the exact log p(x) of each point cancels: for a model close
    to the truth the standard error is many times smaller. ``model`` is a Flow (or anything
    with ``log_prob``) or a callable returning log q(x); ``target`` needs ``log_prob``
    (normalised by ``log_normalizer()`` where it has one, as the energies do).

    ``test`` needs at least 2 finite points where the target's density is not 0. An estimate more
    than 5 standard errors below zero raises ValueError: a KL divergence is never negative, so the
    arguments are swapped, the target unnormalised or the test points not from the target. A model
    with density 0 at a test point is infinitely far: Gap(inf, inf).

    For a conditional target p(x | c) (with ``context_size`` k > 0) and a conditional model
    q(x | c), ``test`` is a pair (x, c) of test pairs (``target.sample(n)``), and the gap is
    E_c KL(p(. | c) || q(. | c)), the mean of log p(x | c) - log q(x | c)."""
    log_q = _log_prob_of(model, "model")
    log_p = _log_prob_of(target, "target")
    if getattr(target, "context_size", 0):
        test, context = _test_pairs(test, target)
        log_q, log_p = _given(log_q, context), _given(log_p, context)
    model_dim, target_dim = getattr(model, "dim", None), getattr(target, "dim", None)
    if isinstance(model_dim, int) and isinstance(target_dim, int) and model_dim != target_dim:
        raise ValueError(f"the model has dim = {model_dim} but the target has dim = {target_dim}")
    test = check_batch(test, target_dim, "test", owner="target")
    if isinstance(model, Flow):  # before the model is called, so that the message names test, not x
        check_batch(test, None, "test", owner="flow", dtype=getattr(model, "dtype", None))
    if len(test) < 2:
        raise ValueError(f"test must hold at least 2 points (samples of the target) for an estimate with a standard "
                         f"error, got {len(test)}")
    check_finite_rows(test, "test")
    log_p = _scores(log_p, test, "target.log_prob") - _log_normalizer(target)
    if torch.isneginf(log_p).any():
        rows = torch.isneginf(log_p).nonzero().flatten().tolist()
        raise ValueError(f"the target's density is 0 at {len(rows)} of the test points (rows "
                         f"{', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}): test must be samples of "
                         "the target (test = target.sample(n)); are model and target swapped? The order is "
                         "gap(model, target, test)")
    terms = log_p - _scores(log_q, test, "the model's log_prob")
    return _gap_of(terms, "KL(p || q)", "are model and target swapped (the order is gap(model, target, test)), is the "
                                        "target's log_prob unnormalised (give it a log_normalizer()), or are the "
                                        "test points not samples of the target?")


def _test_pairs(test, target):
    """(x, c) of a conditional target's test set, checked, else TypeError or ValueError."""
    if not (isinstance(test, tuple) and len(test) == 2):
        raise TypeError(f"a conditional target's test set is a pair (x, c), as target.sample(n) gives, got "
                        f"{type_name(test)}")
    x, context = test
    x = check_batch(x, target.dim, "test x", owner="target")
    context = check_batch(context, target.context_size, "test c", owner="target's context")
    if len(context) != len(x):
        raise ValueError(f"test c has {len(context)} rows for {len(x)} points x: one context per point")
    check_finite_rows(context, "test c")
    return x, context


def _given(log_prob, context):
    """log_prob(x) -> log_prob(x, context), with the rows of x and context paired."""
    return lambda x: log_prob(x, context)


@torch.no_grad()
def reverse_gap(flow, target, n=20_000, seed=0):
    """KL(q || p) of a flow q from the target p, from n samples x ~ q: the mean of
    log q(x) - log p~(x), plus log Z (``target.log_normalizer()``, 0 for a normalised target),
    with its standard error. This is what variational inference minimises (its loss is this
    KL minus log Z). Samples are drawn with ``seed`` (an integer >= 0); the global random state
    is left alone. ``n`` >= 2. As for ``gap``, an estimate far below zero raises ValueError, and a
    target with density 0 where the flow puts samples gives Gap(inf, inf)."""
    sample_and_log_prob = _log_prob_of(flow, "flow", "sample_and_log_prob")
    log_p = _log_prob_of(target, "target")
    check_int(n, "n", low=2)
    check_seed(seed)
    flow_dim, target_dim = getattr(flow, "dim", None), getattr(target, "dim", None)
    if isinstance(flow_dim, int) and isinstance(target_dim, int) and flow_dim != target_dim:
        raise ValueError(f"the flow has dim = {flow_dim} but the target has dim = {target_dim}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x, log_q = sample_and_log_prob(n)
    log_q = _scores(lambda _: log_q, x, "the flow's sample_and_log_prob")  # checks its shape and NaN
    terms = log_q - _scores(log_p, x, "target.log_prob")
    return _gap_of(terms + _log_normalizer(target), "KL(q || p)",
                   "is the target's log_prob unnormalised without a log_normalizer() saying log Z, or does its "
                   "log_normalizer() have the wrong sign?")
