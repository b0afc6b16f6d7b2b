"""Elementwise transformers: the monotone maps y = f(x; theta) that coupling and autoregressive
layers apply to each changed coordinate, with parameters theta that a network computes. A
transformer is a value: it needs ``params_per_dim`` numbers per coordinate, and
``transformer(x, params, inverse=False)`` maps x (batch, n) with params (batch, params_per_dim, n)
to (y, log|f'(x)|), both (batch, n), or with ``inverse=True`` applies f^{-1} and returns its
log-derivative. Its log|det J| within a layer is the sum of the log-derivatives."""

import torch

from .checks import check_positive
from .nets import soft_clamp
from .spline import check_bins_and_bound, rational_quadratic


def check_transformer(transformer):
    """Raise TypeError unless ``transformer`` is one (a callable with ``params_per_dim``)."""
    if isinstance(transformer, type):
        raise TypeError(f"transformer must be an instance, e.g. {transformer.__name__}(), got the class itself")
    if not callable(transformer) or not isinstance(getattr(transformer, "params_per_dim", None), int):
        raise TypeError("transformer must be an elementwise transformer such as AffineTransformer(), "
                        f"AdditiveTransformer() or SplineTransformer(bins, bound), got {type(transformer).__name__}")
    return transformer


class AffineTransformer:
    """y = x exp(s) + t with theta = (t, raw) and s = soft_clamp(raw, max_log_scale), so that one
    bad step cannot make a scale explode; log|f'| = s."""

    params_per_dim = 2

    def __init__(self, max_log_scale=3.0):
        self.max_log_scale = check_positive(max_log_scale, "max_log_scale")

    def shift_and_log_scale(self, params):
        """(t, s), each (batch, n), from params (batch, 2, n)."""
        shift, raw = params.unbind(-2)
        return shift, soft_clamp(raw, self.max_log_scale)

    def __call__(self, x, params, inverse=False):
        if inverse:
            # -s = tanh(raw / bound) * (-bound): the same numbers as -soft_clamp(raw, bound), with
            # one operation fewer (and one fewer in the backward pass) than negating s twice.
            shift, raw = params.unbind(-2)
            minus_log_scale = torch.tanh(raw / self.max_log_scale) * -self.max_log_scale
            return (x - shift) * minus_log_scale.exp(), minus_log_scale
        shift, log_scale = self.shift_and_log_scale(params)
        return x * log_scale.exp() + shift, log_scale

    def __repr__(self):
        return f"affine (|s| < {self.max_log_scale:g})"


class AdditiveTransformer:
    """y = x + t (NICE): volume preserving, log|f'| = 0."""

    params_per_dim = 1

    def shift_and_log_scale(self, params):
        """(t, None) from params (batch, 1, n): an additive map has no log-scale."""
        return params[..., 0, :], None

    def __call__(self, x, params, inverse=False):
        shift = params[..., 0, :]
        return (x - shift if inverse else x + shift), torch.zeros_like(x)

    def __repr__(self):
        return "additive"


class SplineTransformer:
    """A monotone rational-quadratic spline with ``bins`` bins on [-bound, bound], the identity
    outside (nflesson.spline): 3 bins - 1 parameters per coordinate (bins widths, bins heights,
    bins - 1 inner derivatives)."""

    def __init__(self, bins=8, bound=5.0):
        check_bins_and_bound(bins, bound)
        self.bins, self.bound = bins, float(bound)
        self.params_per_dim = 3 * bins - 1

    def __call__(self, x, params, inverse=False):
        return rational_quadratic(x, params.transpose(-1, -2), self.bound, inverse)

    def __repr__(self):
        return f"rational-quadratic spline (bins={self.bins}, bound={self.bound:g})"
