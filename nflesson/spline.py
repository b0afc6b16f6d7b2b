"""Monotone rational-quadratic splines (Durkan et al., 2019, "Neural Spline Flows").

On [-bound, bound] the map is made of ``bins`` pieces; on bin k, with knots (x_k, y_k) and
(x_{k+1}, y_{k+1}), slope s = h/w of the bin (w = x_{k+1} - x_k, h = y_{k+1} - y_k), derivatives
d_k, d_{k+1} at the knots and xi = (x - x_k) / w in [0, 1]:

    f(x) = y_k + h (s xi^2 + d_k xi (1 - xi)) / (s + (d_k + d_{k+1} - 2 s) xi (1 - xi)),
    f'(x) = s^2 (d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2) / (s + (d_k + d_{k+1} - 2 s) xi (1 - xi))^2.

f is increasing whenever the knots increase and every d > 0. Outside [-bound, bound] it is the
identity; the end derivatives are 1, so f and f' are continuous there too. Solving f(x) = y
for xi is a quadratic a xi^2 + b xi + c = 0, whose root in [0, 1] is taken as
2c / (-b - sqrt(b^2 - 4ac)) where b >= 0 and as (-b + sqrt(b^2 - 4ac)) / 2a where b < 0, the two
forms of the same root, each free of cancellation where it is used.

The raw numbers are bounded softly before they become knots (``knots``): with
clamp(r, c) = c tanh(r / c) (nflesson.nets.soft_clamp),

    widths w_k = MIN_BIN + (1 - bins MIN_BIN) softmax(clamp(raw widths, SIZE_BOUND))_k (heights alike),
    inner derivatives d_k = MIN_DERIVATIVE + softplus(clamp(raw d_k, DERIVATIVE_BOUND) + shift),

so two bins' widths (or heights) differ by less than a factor R = exp(2 SIZE_BOUND) = sqrt(MAX_BIN_SLOPE),
every bin's slope s = h/w lies in [1 / MAX_BIN_SLOPE, MAX_BIN_SLOPE] and every d_k in
[MIN_DERIVATIVE, MAX_DERIVATIVE]. However large a conditioner's outputs grow, the spline can become
neither arbitrarily steep nor arbitrarily sensitive to them, which keeps stacks of layers invertible
to near machine precision (tests/test_extreme_parameters.py). All-zero raw numbers still give the
identity: equal bins and unit derivatives, with shift = log(e^(1 - MIN_DERIVATIVE) - 1).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .bijector import Bijector
from .checks import check_positive, check_positive_int
from .nets import soft_clamp

MIN_BIN = 1e-3  # the smallest bin width and height, as a share of the interval
MAX_BIN_SLOPE = 1e3  # every bin's slope h / w lies in [1 / MAX_BIN_SLOPE, MAX_BIN_SLOPE]
SIZE_BOUND = math.log(MAX_BIN_SLOPE) / 4  # raw widths and heights are soft-clamped to (-SIZE_BOUND, SIZE_BOUND)
MIN_DERIVATIVE, MAX_DERIVATIVE = 1e-3, 1e3  # the inner knot derivatives lie in between
_DERIVATIVE_SHIFT = math.log(math.expm1(1 - MIN_DERIVATIVE))  # raw 0 -> derivative 1
# raw derivatives are soft-clamped to (-DERIVATIVE_BOUND, DERIVATIVE_BOUND), about +-999.5: the
# softplus^-1 of MAX_DERIVATIVE - MIN_DERIVATIVE (softplus^-1(y) = y + log(1 - e^-y)), less the shift
_LARGEST = MAX_DERIVATIVE - MIN_DERIVATIVE
DERIVATIVE_BOUND = _LARGEST + math.log(-math.expm1(-_LARGEST)) - _DERIVATIVE_SHIFT


def parameter_count(bins):
    """Unconstrained numbers per coordinate: bins widths, bins heights, bins - 1 inner derivatives."""
    return 3 * bins - 1


def knots(raw, bound):
    """Knot positions xs, ys (..., bins + 1) from -bound to bound and derivatives ds (..., bins + 1)
    from unconstrained ``raw`` (..., 3 bins - 1), each number soft-clamped first (module docstring):
    widths and heights by a softmax of clamp(raw, SIZE_BOUND) with a minimum share MIN_BIN, inner
    derivatives MIN_DERIVATIVE + softplus(clamp(raw, DERIVATIVE_BOUND) + shift), end derivatives 1.
    Bin slopes stay in [1 / MAX_BIN_SLOPE, MAX_BIN_SLOPE], inner derivatives in [MIN_DERIVATIVE,
    MAX_DERIVATIVE], whatever ``raw``. All-zero ``raw`` gives equal bins and unit derivatives: the identity."""
    xs_ys, ds = _knots(raw, bound)
    return xs_ys[..., 0, :], xs_ys[..., 1, :], ds


def _knots(raw, bound):
    """``knots`` with xs and ys stacked, (..., 2, bins + 1), and ds (..., bins + 1): widths and
    heights go through one softmax and one cumulative sum."""
    bins = (raw.shape[-1] + 1) // 3
    raw_sizes, raw_derivatives = raw.split([2 * bins, bins - 1], dim=-1)
    sizes = MIN_BIN + (1 - MIN_BIN * bins) * torch.softmax(
        soft_clamp(raw_sizes.unflatten(-1, (2, bins)), SIZE_BOUND), dim=-1)
    inner = bound * (2 * torch.cumsum(sizes[..., :-1], dim=-1) - 1)
    ends = inner.new_full(inner.shape[:-1] + (1,), bound)
    ones = raw.new_ones(raw.shape[:-1] + (1,))
    derivatives = MIN_DERIVATIVE + F.softplus(soft_clamp(raw_derivatives, DERIVATIVE_BOUND) + _DERIVATIVE_SHIFT)
    return torch.cat([-ends, inner, ends], dim=-1), torch.cat([ones, derivatives, ones], dim=-1)


def rational_quadratic(x, raw, bound, inverse=False):
    """The spline (or with ``inverse=True`` its inverse) applied elementwise to ``x`` (...),
    with parameters ``raw`` (..., 3 bins - 1); returns (output, log|f'|) of the direction
    called, both shaped like x. Outside [-bound, bound]: the identity, log-derivative 0."""
    xs_ys, ds = _knots(raw, bound)
    inside = (x >= -bound) & (x <= bound)
    x_in = x.clamp(-bound, bound)
    # the bin: how many inner knots lie at or left of the point (0 .. bins - 1)
    edges = xs_ys[..., int(inverse), 1:-1]
    k = (edges <= x_in.unsqueeze(-1)).sum(-1, keepdim=True)
    # x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1} in one gather
    table = torch.cat([xs_ys, ds.unsqueeze(-2)], dim=-2)  # (..., 3, bins + 1)
    ends = table.gather(-1, torch.cat([k, k + 1], -1).unsqueeze(-2).expand(*k.shape[:-1], 3, 2))
    x0, x1, y0, y1, d0, d1 = ends.flatten(-2).unbind(-1)
    w, h = x1 - x0, y1 - y0
    s = h / w
    bend = d0 + d1 - 2 * s
    if inverse:
        dy = x_in - y0
        a = h * (s - d0) + dy * bend
        b = h * d0 - dy * bend
        c = -s * dy
        root = (b * b - 4 * a * c).clamp_min(0).sqrt()
        # the root in [0, 1], (-b + root) / 2a = 2c / (-b - root): each form where it has no cancellation
        positive = b >= 0
        xi = torch.where(positive, 2 * c / torch.where(positive, -b - root, -1.0),
                         (-b + root) / torch.where(positive, 1.0, 2 * a)).clamp(0, 1)
        out = x0 + xi * w
    else:
        xi = (x_in - x0) / w
        out = y0 + h * (s * xi * xi + d0 * xi * (1 - xi)) / (s + bend * xi * (1 - xi))
    one_minus = 1 - xi
    log_derivative = (2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * xi * one_minus + d0 * one_minus * one_minus)
                      - 2 * torch.log(s + bend * xi * one_minus))
    if inverse:
        log_derivative = -log_derivative
    return torch.where(inside, out, x), torch.where(inside, log_derivative, torch.zeros_like(x))


def check_bins_and_bound(bins, bound):
    check_positive_int(bins, "bins")
    check_positive(bound, "bound")
    if MIN_BIN * bins >= 1:
        raise ValueError(f"bins must be below {int(1 / MIN_BIN)} (each bin keeps at least {MIN_BIN} of the interval)")


class RationalQuadraticSpline(Bijector):
    """An elementwise monotone rational-quadratic spline with its own learnable parameters:
    coordinate j is mapped by the spline with parameters ``raw[j]`` (``bins`` bins on
    [-bound, bound], identity outside); log|det J| = sum_j log f_j'(z_j). Starts as the identity.
    Used alone, it reshapes each coordinate's marginal; inside ``SplineCoupling`` and
    ``SplineAutoregressive`` (its transformer, nflesson.transformers.SplineTransformer) a network
    computes the parameters instead."""

    def __init__(self, dim=1, bins=8, bound=5.0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_bins_and_bound(bins, bound)
        self.bins, self.bound = bins, float(bound)
        self.raw = nn.Parameter(torch.zeros(dim, parameter_count(bins)))

    def _forward(self, z):
        x, log_derivative = rational_quadratic(z, self.raw.expand(len(z), -1, -1), self.bound)
        return x, log_derivative.sum(-1)

    def _inverse(self, x):
        z, log_derivative = rational_quadratic(x, self.raw.expand(len(x), -1, -1), self.bound, inverse=True)
        return z, log_derivative.sum(-1)

    def extra_repr(self):
        return f"dim={self.dim}, bins={self.bins}, bound={self.bound}"
