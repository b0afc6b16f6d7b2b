"""How far a model is from the truth, in nats: the KL divergence between a target with an exact
density and a model, estimated by Monte Carlo with its standard error."""

import math
from typing import NamedTuple

import torch

from .checks import check_batch, check_positive_int


class Gap(NamedTuple):
    """A KL divergence estimate in nats and the standard error of that estimate."""

    nats: float
    standard_error: float

    def __str__(self):
        """E.g. '0.021 ± 0.002 nats': at least 3 decimals, and enough to show the standard
        error to two significant digits."""
        error = self.standard_error
        digits = 3 if not error > 0 else min(max(3, 1 - math.floor(math.log10(error))), 8)
        return f"{self.nats:.{digits}f} ± {error:.{digits}f} nats"


def _log_normalizer(target):
    return target.log_normalizer() if hasattr(target, "log_normalizer") else 0.0


def _mean_and_error(terms):
    terms = terms.double()
    error = terms.std().item() / math.sqrt(len(terms)) if len(terms) > 1 else float("nan")
    return Gap(terms.mean().item(), error)


@torch.no_grad()
def gap(model, target, test):
    """KL(p || q) of the model q from the target p, from test samples x ~ p ((n, dim)):
    the mean of log p(x) - log q(x), with its standard error.

    KL(p || q) = E_p[log p - log q] = (test NLL of q) - H(p). The mean of -log q alone (the
    test NLL) minus the exact entropy estimates it too, but it carries the noise of the test
    sample's own -mean log p, which the exact log p(x) of each point cancels: for a model close
    to the truth the standard error is many times smaller. ``model`` is a Flow (or anything
    with ``log_prob``) or a callable returning log q(x); ``target`` needs ``log_prob``
    (normalised by ``log_normalizer()`` where it has one, as the energies do)."""
    log_q = getattr(model, "log_prob", model)
    test = check_batch(test, getattr(target, "dim", None), "test", owner="target")
    log_p = target.log_prob(test) - _log_normalizer(target)
    return _mean_and_error(log_p - log_q(test))


@torch.no_grad()
def reverse_gap(flow, target, n=20_000, seed=0):
    """KL(q || p) of a flow q from the target p, from n samples x ~ q: the mean of
    log q(x) - log p~(x), plus log Z (``target.log_normalizer()``, 0 for a normalised target),
    with its standard error. This is what variational inference minimises (its loss is this
    KL minus log Z). Samples are drawn with ``seed``; the global random state is left alone."""
    check_positive_int(n, "n")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x, log_q = flow.sample_and_log_prob(n)
    return _mean_and_error(log_q - target.log_prob(x) + _log_normalizer(target))
