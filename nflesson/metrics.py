"""How far a model is from the truth, in nats: the KL divergence between a target with an exact
density and a model, estimated by Monte Carlo with its standard error (``gap``, ``reverse_gap``);
and whether a posterior's credible regions can be trusted: the expected coverage of its
highest-density regions, by simulation-based calibration (``coverage``)."""

import math
import numbers
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


def mean_and_error(terms):
    """The Monte Carlo estimate of a gap from its terms (n,), e.g. log p(x) - log q(x) at test
    points: their mean and its standard error, std / sqrt(n) (NaN for one term)."""
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


def _scores(function, points, who, what="the gap"):
    """``function(points)``, checked to be a tensor of shape (len(points),) without NaN (which would
    make ``what`` undefined)."""
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
                         f"{', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}), so {what} is undefined")
    return values


def _gap_of(terms, direction, log_p_text):
    """The Gap of the terms, +inf if some are +inf, and a ValueError if it lies far below zero."""
    if torch.isnan(terms).any():  # inf - inf: both densities infinite or both 0 at a point
        raise ValueError(f"the terms of {direction} are undefined (inf - inf) at {int(torch.isnan(terms).sum())} "
                         "points: both densities are 0 (or infinite) there")
    if torch.isposinf(terms).any():
        return Gap(math.inf, math.inf)  # the other density is 0 where this one is not: an infinite KL
    result = mean_and_error(terms)
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


# --- calibration of a posterior: simulation-based calibration ---------------------------------------------------

class Coverage(NamedTuple):
    """What ``coverage`` measures: at each nominal credibility ``levels[j]``, the fraction
    ``coverage[j]`` of the held-out pairs whose true parameter lies in the highest-density region
    of that level; ``low[j]`` and ``high[j]``, the pointwise central ``confidence`` band of that
    fraction for an exactly calibrated posterior (Binomial(n, level) / n); ``hpd_levels``, per
    pair, the level of the smallest highest-density region that holds its true parameter (uniform
    on [0, 1] for a calibrated posterior: its histogram is the rank plot of simulation-based
    calibration); ``samples``, the posterior draws per pair. All tensors are float64 on the CPU."""

    levels: torch.Tensor
    coverage: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    hpd_levels: torch.Tensor
    confidence: float
    samples: int

    def __str__(self):
        """E.g. 'coverage of 500 pairs at 10%, 50%, 90%: 0.096, 0.488, 0.902 (95% band for a calibrated
        posterior: ±0.026, ±0.044, ±0.026)'."""
        n = len(self.hpd_levels)
        shown = [j for j, level in enumerate(self.levels.tolist())
                 if any(abs(level - nice) < 1e-9 for nice in (0.1, 0.25, 0.5, 0.75, 0.9, 0.95))]
        shown = shown or list(range(len(self.levels)))
        levels = ", ".join(f"{self.levels[j].item():.0%}" for j in shown)
        values = ", ".join(f"{self.coverage[j].item():.3f}" for j in shown)
        band = ", ".join(f"±{(self.high[j] - self.low[j]).item() / 2:.3f}" for j in shown)
        return (f"coverage of {n} pairs at {levels}: {values} ({self.confidence:.0%} band for a calibrated posterior: "
                f"{band})")


def _levels(levels):
    """``levels`` (None: 0.05, 0.10, ..., 0.95) as a float64 tensor of numbers in [0, 1]."""
    if levels is None:
        return torch.arange(1, 20, dtype=torch.float64) / 20
    if isinstance(levels, torch.Tensor):
        if not levels.is_floating_point():
            raise TypeError(f"levels must be numbers in [0, 1] (a sequence or a floating tensor), got a tensor of "
                            f"{levels.dtype}")
        values = levels.detach().to("cpu", torch.float64).reshape(-1) if levels.dim() <= 1 else None
        if values is None:
            raise ValueError(f"levels must be a sequence of numbers in [0, 1], got a tensor of shape "
                             f"{tuple(levels.shape)}")
    else:
        if isinstance(levels, (str, bytes)) or not hasattr(levels, "__iter__"):
            raise TypeError(f"levels must be a sequence of numbers in [0, 1], e.g. (0.5, 0.9), got {type_name(levels)}")
        levels = list(levels)
        for level in levels:
            if isinstance(level, bool) or not isinstance(level, numbers.Real):
                raise TypeError(f"levels must be numbers in [0, 1], got {type_name(level)} {level!r} among them")
        values = torch.tensor([float(level) for level in levels], dtype=torch.float64)
    if len(values) == 0:
        raise ValueError("levels is empty: give at least one credibility level in [0, 1], e.g. (0.5, 0.9)")
    bad = ~((values >= 0) & (values <= 1))  # NaN too
    if bad.any():
        raise ValueError(f"levels must be credibility levels in [0, 1], got {values[bad][0].item()!r}")
    return values


def _binomial_band(n, levels, confidence):
    """The central ``confidence`` interval of Binomial(n, p) / n for each p in ``levels``: the
    (1 - confidence) / 2 and (1 + confidence) / 2 quantiles, from the exact distribution."""
    k = torch.arange(n + 1, dtype=torch.float64)
    low, high = torch.empty_like(levels), torch.empty_like(levels)
    for j, p in enumerate(levels.tolist()):
        if p in (0.0, 1.0):
            low[j] = high[j] = p
            continue
        cdf = torch.distributions.Binomial(n, probs=torch.tensor(p, dtype=torch.float64)).log_prob(k).exp().cumsum(0)
        for band, quantile in ((low, (1 - confidence) / 2), (high, (1 + confidence) / 2)):
            band[j] = min(torch.searchsorted(cdf, torch.tensor(quantile, dtype=torch.float64)).item(), n) / n
    return low, high


def _posterior_of(model):
    """(draws(context, generator) -> (points, log q), log_q(points, context)) of a conditional model:
    a conditional Flow (or anything with sample_and_log_prob and log_prob with a context), or a
    conditional target (its exact posterior: sample_given and log_prob), else TypeError."""
    if isinstance(model, type):
        raise TypeError(f"model must be a trained conditional flow or a conditional target, got the class "
                        f"{model.__name__} itself")
    log_prob = getattr(model, "log_prob", None)
    if callable(getattr(model, "sample_and_log_prob", None)) and callable(log_prob):
        return (lambda context, generator: model.sample_and_log_prob(len(context), context=context)), log_prob
    if callable(getattr(model, "sample_given", None)) and callable(log_prob):
        def draws(context, generator):
            points = model.sample_given(context, generator=generator)
            return points, log_prob(points, context)
        return draws, log_prob
    hint = ", and a bijector is not a model: wrap it as nf.Flow([b])" if isinstance(model, Bijector) else ""
    raise TypeError(f"model must be a conditional flow q(theta | x) (with sample_and_log_prob and log_prob), or a "
                    f"conditional target (with sample_given and log_prob), got {type_name(model)}{hint}")


@torch.no_grad()
def coverage(model, theta, x, levels=None, samples=1000, confidence=0.95, seed=0):
    """Simulation-based calibration of a posterior q(theta | x): the expected coverage of its
    highest-density credible regions, from held-out pairs (theta*_i, x*_i), i = 1..n, drawn
    from the prior and the simulator (e.g. ``simulator.sample(n)``). Returns a ``Coverage``.

    Definition. The highest-density region of level alpha of q(. | x) is HPD_alpha = {theta :
    q(theta | x) >= t_alpha}, with t_alpha such that it holds mass alpha of q. For each pair,
    ``samples`` draws theta_s ~ q(. | x*_i) give the level of the smallest such region that holds
    theta*_i,

        u_i = (#{s : log q(theta_s | x*_i) > log q(theta*_i | x*_i)} + 1/2) / (samples + 1),

    (the fraction of q's mass denser than theta*_i, to within 1 / samples), and theta*_i lies in
    HPD_alpha exactly when u_i <= alpha. The coverage at alpha is the fraction of the n pairs
    with u_i <= alpha. If q is the exact posterior p(theta | x), theta*_i is itself a draw of
    q(. | x*_i), u_i is uniform on [0, 1] and the coverage is alpha up to binomial noise, which
    ``low`` and ``high`` bound (pointwise, with probability ``confidence`` at each level). Below
    the diagonal the regions are too small (an overconfident posterior), above it too large (an
    underconfident one). Calibration is necessary, not sufficient: the prior itself, q(theta |
    x) = p(theta), is calibrated too; KL(p || q) measures how close q is, coverage whether its
    credible regions can be trusted.

    ``model``: a conditional flow q(theta | x) (or anything with ``sample_and_log_prob(n,
    context=...)`` and ``log_prob(theta, context)``), or a conditional target, whose exact
    posterior (``sample_given``, ``log_prob``) is calibrated by construction: the reference.
    ``theta`` (n, dim) and ``x`` (n, k), n >= 1, finite, in the flow's dtype; ``levels``: nominal
    levels in [0, 1] (default 0.05, 0.10, ..., 0.95); ``samples`` >= 1 draws per pair; ``confidence``
    in (0, 1) for the band; ``seed`` (an integer >= 0) seeds the draws (the global random state is
    left alone)."""
    draws, log_q = _posterior_of(model)
    dim, k = getattr(model, "dim", None), getattr(model, "context_size", None)
    if k == 0:
        raise ValueError("model is unconditional (it reads no context): coverage checks a conditional posterior "
                         "q(theta | x), e.g. nf.flows.nsf(2, context=k) trained on pairs from a simulator")
    dtype = model.dtype if isinstance(model, Flow) else None
    theta = check_batch(theta, dim if isinstance(dim, int) else None, "theta", owner="model", dtype=dtype)
    x = check_batch(x, k if isinstance(k, int) else None, "x", owner="model's context", dtype=dtype)
    if len(x) != len(theta):
        raise ValueError(f"x has {len(x)} rows for {len(theta)} rows of theta: one observation per parameter")
    if len(theta) == 0:
        raise ValueError("theta and x are empty: coverage needs at least one held-out pair (theta*, x*)")
    check_finite_rows(theta, "theta")
    check_finite_rows(x, "x")
    levels = _levels(levels)
    samples = check_int(samples, "samples", low=1)
    confidence = check_number(confidence, "confidence", low=0, high=1, low_open=True, high_open=True)
    check_seed(seed)
    n = len(theta)
    chunk = max(1, 2**16 // samples)  # pairs per batch of draws
    counts = torch.empty(n, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, n, chunk):
            truth, context = theta[start:start + chunk], x[start:start + chunk]
            log_truth = _scores(lambda points: log_q(points, context), truth, "the model's log_prob", "the coverage")
            _, log_drawn = draws(context.repeat_interleave(samples, 0), generator)
            log_drawn = _scores(lambda points: log_drawn, context.repeat_interleave(samples, 0),
                                "the log-density of the model's draws", "the coverage")
            above = log_drawn.reshape(len(truth), samples) > log_truth[:, None]
            counts[start:start + chunk] = above.sum(1).to("cpu", torch.float64)
    hpd_levels = (counts + 0.5) / (samples + 1)
    covered = (hpd_levels[:, None] <= levels[None, :]).double().mean(0)
    low, high = _binomial_band(n, levels, confidence)
    return Coverage(levels, covered, low, high, hpd_levels, confidence, samples)
