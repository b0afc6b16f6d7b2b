"""Coupling layers (NICE, RealNVP, neural spline flows): keep one part of the vector and map
each coordinate of the other part by an elementwise transformer whose parameters a conditioner
network computes from the kept part. The Jacobian is triangular (kept coordinates first), so
log|det J| is the sum of the transformer's log-derivatives, and both directions take one
network pass."""

import torch

from .bijector import Bijector
from .checks import check_flag, check_int, check_positive_int
from .nets import mlp
from .transformers import AdditiveTransformer, AffineTransformer, SplineTransformer, check_transformer


def coupling_mask(dim, mask):
    """A boolean tensor of length dim, True where a coordinate is kept (fed to the conditioner).

    ``mask`` is None or "halves" (the first dim // 2 kept), "alternating" (even indices kept),
    or a sequence of dim booleans / 0-1 values; both parts must be non-empty.
    """
    if mask is None or (isinstance(mask, str) and mask == "halves"):
        mask = torch.arange(dim) < dim // 2
    elif isinstance(mask, str) and mask == "alternating":
        mask = torch.arange(dim) % 2 == 0
    elif isinstance(mask, str):
        raise ValueError(f'mask must be "halves", "alternating" or a sequence of {dim} booleans, got {mask!r}')
    elif not isinstance(mask, (list, tuple, torch.Tensor)):
        raise TypeError(f'mask must be "halves", "alternating" or a sequence of {dim} booleans, got '
                        f"{type(mask).__name__}")
    else:
        try:
            mask = torch.as_tensor(mask)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"mask must be a sequence of {dim} booleans or 0/1 values, got {mask!r}") from None
        if mask.shape != (dim,):
            raise ValueError(f"mask must have length dim = {dim}, got shape {tuple(mask.shape)}")
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"mask must hold booleans or 0/1 values, got {mask.tolist()}")
        mask = mask.bool()
    if mask.all() or not mask.any():
        raise ValueError(f"mask must keep some coordinates and change others, got {mask.tolist()} (needs dim >= 2)")
    return mask


def _interleave(evens, odds):
    """The points whose even coordinates are ``evens`` and odd ones ``odds`` (batch, n): the
    inverse of taking z[:, 0::2] and z[:, 1::2]."""
    n = odds.shape[-1]
    woven = torch.stack([evens[:, :n], odds], -1).flatten(1)
    return woven if evens.shape[-1] == n else torch.cat([woven, evens[:, n:]], -1)


class Coupling(Bijector):
    """x_kept = z_kept, x_j = f(z_j; theta_j(z_kept)) for each changed coordinate j, with f the
    elementwise ``transformer`` (nflesson.transformers) and theta from the conditioner, a
    two-hidden-layer MLP of the kept coordinates; log|det J| = sum_j log f'(z_j). The inverse
    runs the same conditioner on x_kept = z_kept and inverts each f. Starts as the identity
    (the conditioner's last layer starts at zero). With ``context`` = k > 0 the conditioner also
    reads a context c (k numbers per point): theta = theta(z_kept, c), a conditional layer; the
    Jacobian in z and its log-det are unchanged."""

    def __init__(self, dim, transformer, mask=None, hidden=64, context=0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        check_int(context, "context")
        check_transformer(transformer)
        mask = coupling_mask(dim, mask)
        self.transformer = transformer
        self.register_buffer("mask", mask)
        kept, changed = mask.nonzero().flatten(), (~mask).nonzero().flatten()
        self.register_buffer("kept", kept)
        self.register_buffer("changed", changed)
        self.register_buffer("unshuffle", torch.argsort(torch.cat([kept, changed])))
        # A mask that keeps a leading or trailing block (like "halves" and its complement), or
        # every other coordinate ("alternating" and its complement), is split and joined with
        # slices, which cost less than gathers in both passes (half as much for "alternating").
        n_kept, even = len(kept), torch.arange(dim) % 2 == 0
        self.block = ("first" if mask[:n_kept].all() else "last" if mask[-n_kept:].all()
                      else "even" if torch.equal(mask, even) else "odd" if torch.equal(mask, ~even) else None)
        self.context_size = context
        self.conditioner = mlp(len(kept), hidden, transformer.params_per_dim * len(changed), context=context)

    def transformer_parameters(self, kept, context=None):
        """theta of the changed coordinates, (batch, params_per_dim, changed), from the kept part
        (and the context, (batch, k), for a conditional layer)."""
        inputs = kept if context is None else torch.cat([kept, context], -1)
        return self.conditioner(inputs).unflatten(-1, (self.transformer.params_per_dim, -1))

    def _split(self, z):
        """(kept, changed) parts of z."""
        n_kept = len(self.kept)
        if self.block == "first":
            return z[:, :n_kept], z[:, n_kept:]
        if self.block == "last":
            return z[:, -n_kept:], z[:, :-n_kept]
        if self.block == "even":
            return z[:, 0::2], z[:, 1::2]
        if self.block == "odd":
            return z[:, 1::2], z[:, 0::2]
        return z[:, self.kept], z[:, self.changed]

    def _join(self, kept, changed):
        """The inverse of _split."""
        if self.block == "first":
            return torch.cat([kept, changed], -1)
        if self.block == "last":
            return torch.cat([changed, kept], -1)
        if self.block == "even":
            return _interleave(kept, changed)
        if self.block == "odd":
            return _interleave(changed, kept)
        return torch.cat([kept, changed], -1)[:, self.unshuffle]

    def _transform(self, points, inverse, context):
        kept, changed = self._split(points)
        changed, log_derivative = self.transformer(changed, self.transformer_parameters(kept, context), inverse)
        return self._join(kept, changed), log_derivative.sum(-1)

    def _forward(self, z, context=None):
        return self._transform(z, False, context)

    def _inverse(self, x, context=None):
        return self._transform(x, True, context)

    def extra_repr(self):
        context = f", context={self.context_size}" if self.context_size else ""
        return f"dim={self.dim}, mask={self.mask.int().tolist()}, {self.transformer!r}{context}"


class AffineCoupling(Coupling):
    """x_kept = z_kept, x_changed = z_changed * exp(s(z_kept)) + t(z_kept); log|det J| = sum(s)
    (RealNVP). With ``additive=True`` s = 0 (NICE: volume preserving). The log-scale is bounded,
    s = soft_clamp(raw, max_log_scale)."""

    def __init__(self, dim=2, mask=None, hidden=64, additive=False, max_log_scale=3.0, context=0):
        check_flag(additive, "additive")
        transformer = AdditiveTransformer() if additive else AffineTransformer(max_log_scale)
        super().__init__(dim, transformer, mask, hidden, context)
        self.additive, self.max_log_scale = additive, max_log_scale

    def shift_and_log_scale(self, kept, context=None):
        """(t, s) for the changed coordinates, each (batch, changed), from the kept part
        (batch, kept); s is None for an additive layer. x_changed = z_changed * exp(s) + t."""
        return self.transformer.shift_and_log_scale(self.transformer_parameters(kept, context))


class SplineCoupling(Coupling):
    """A coupling layer whose transformer is a monotone rational-quadratic spline with ``bins``
    bins on [-bound, bound] (Durkan et al., 2019): x_j = f(z_j; theta_j(z_kept)), 3 bins - 1
    parameters per changed coordinate; log|det J| = sum_j log f'(z_j)."""

    def __init__(self, dim=2, mask=None, hidden=64, bins=8, bound=5.0, context=0):
        transformer = SplineTransformer(bins, bound)
        super().__init__(dim, transformer, mask, hidden, context)
        self.bins, self.bound = transformer.bins, transformer.bound
