"""Autoregressive layers (MAF, IAF, autoregressive neural spline flows): each coordinate is
mapped by an elementwise transformer whose parameters a MADE computes from the coordinates
before it. The Jacobian is triangular by construction, so log|det J| is the sum of the
transformer's log-derivatives. Scoring (``inverse``, data -> base) takes one network pass;
sampling (``forward``) takes dim passes; ``Inverse(...)`` of a layer swaps the costs (IAF)."""

import torch

from .bijector import Bijector
from .checks import check_positive_int
from .nets import MADE
from .transformers import AffineTransformer, SplineTransformer, check_transformer


class Autoregressive(Bijector):
    """x_i = f(z_i; theta_i(x_<i)), with f the elementwise ``transformer``
    (nflesson.transformers) and theta_i computed by a MADE from the coordinates before i in
    ``order``; log|det J| = sum_i log f'(z_i). Scoring inverts f with theta(x) in one pass;
    sampling runs dim passes, after pass k the first k coordinates (in order) are final.
    Starts as the identity (MADE's output layer starts at zero). With ``context`` = k > 0 the
    MADE also reads a context c (k numbers per point): theta_i = theta_i(x_<i, c), a conditional
    layer, still triangular in x, with the same log-det."""

    def __init__(self, dim, transformer, hidden=64, order=None, context=0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_transformer(transformer)
        self.transformer = transformer
        self.made = MADE(dim, hidden, params_per_dim=transformer.params_per_dim, order=order, context=context)
        self.context_size = context

    def transformer_parameters(self, x, context=None):
        """theta of every coordinate, (batch, params_per_dim, dim), each from the coordinates of
        the data-side point x that come before it (and from the context, if any)."""
        return self.made(x, context)

    def _forward(self, z, context=None):
        x = torch.zeros_like(z)
        for _ in range(self.dim):
            x, log_derivative = self.transformer(z, self.transformer_parameters(x, context))
        return x, log_derivative.sum(-1)

    def _inverse(self, x, context=None):
        z, log_derivative = self.transformer(x, self.transformer_parameters(x, context), inverse=True)
        return z, log_derivative.sum(-1)

    def extra_repr(self):
        context = f", context={self.context_size}" if self.context_size else ""
        return f"dim={self.dim}, {self.transformer!r}{context}"


class MaskedAutoregressive(Autoregressive):
    """A MAF layer (Papamakarios et al., 2017): x_i = z_i exp(s_i) + t_i with (t_i, s_i) computed
    by a MADE from x_<i; log|det J| = sum(s). Scoring is z = (x - t(x)) exp(-s(x)), one pass.
    The log-scale is bounded like the coupling layer's."""

    def __init__(self, dim=2, hidden=64, order=None, max_log_scale=3.0, context=0):
        super().__init__(dim, AffineTransformer(max_log_scale), hidden, order, context)
        self.max_log_scale = max_log_scale

    def shift_and_log_scale(self, x, context=None):
        """(t, s), each (batch, dim), from the data-side point x: t_i and s_i depend only on
        the coordinates before i in the order (MADE). x_i = z_i * exp(s_i) + t_i."""
        return self.transformer.shift_and_log_scale(self.transformer_parameters(x, context))


class SplineAutoregressive(Autoregressive):
    """An autoregressive layer whose transformer is a monotone rational-quadratic spline with
    ``bins`` bins on [-bound, bound]: x_i = f(z_i; theta_i(x_<i)) (as MaskedAutoregressive, with
    a spline in place of the affine map); log|det J| = sum_i log f'(z_i)."""

    def __init__(self, dim=2, hidden=64, bins=8, bound=5.0, order=None, context=0):
        transformer = SplineTransformer(bins, bound)
        super().__init__(dim, transformer, hidden, order, context)
        self.bins, self.bound = transformer.bins, transformer.bound
