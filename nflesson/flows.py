"""Ready-made flows with defaults that fit the 2D targets of the course in seconds (and
``glow`` for the 64 pixels of the digits)."""

import torch

from .autoregressive import MaskedAutoregressive, SplineAutoregressive
from .bijector import Inverse
from .checks import check_flag, check_int, check_positive_int
from .coupling import AffineCoupling, SplineCoupling, coupling_mask
from .flow import Flow
from .elementwise import ActNorm
from .linear import Linear, LULinear
from .planar_radial import Planar, Radial
from .spline import check_bins_and_bound


def _check_sizes(factory, dim, layers, hidden=None, min_dim=1, context=0):
    """Check a factory's sizes before any layer is built (building draws random numbers)."""
    check_positive_int(dim, "dim")
    check_int(context, "context")
    check_positive_int(layers, "layers")
    if hidden is not None:
        check_positive_int(hidden, "hidden")
    if dim < min_dim:
        raise ValueError(f"{factory} needs dim >= {min_dim}: each layer keeps some coordinates and changes the "
                         f"others, got dim = {dim}")


def linear(dim=2, layers=1):
    """Dense linear layers x = z W + b: a Gaussian model, however many layers."""
    _check_sizes("linear", dim, layers)
    return Flow([Linear(dim) for _ in range(layers)])


def planar(dim=2, layers=8):
    """A stack of planar layers."""
    _check_sizes("planar", dim, layers)
    return Flow([Planar(dim) for _ in range(layers)])


def radial(dim=2, layers=8):
    """A stack of radial layers."""
    _check_sizes("radial", dim, layers)
    return Flow([Radial(dim) for _ in range(layers)])


def _alternate(first, second, layers):
    """``layers`` items alternating between first and second, ending with first: the layer
    next to the data gets ``first`` (as in zuko's flows, whose transforms start at the data)."""
    return [first if (layers - 1 - i) % 2 == 0 else second for i in range(layers)]


def _masks(dim, layers, mask="halves"):
    """Coupling masks alternating between ``mask`` (by default: keep the first half) and its
    complement; the layer next to the data uses ``mask``."""
    mask = coupling_mask(dim, mask)
    return _alternate(mask, ~mask, layers)


def _orders(dim, layers):
    """Autoregressive orders flipping from layer to layer; the layer next to the data uses the
    order 0, 1, ..., dim - 1."""
    order = torch.arange(dim)
    return _alternate(order, order.flip(0), layers)


def realnvp(dim=2, layers=8, hidden=64, additive=False, context=0, mask="halves"):
    """RealNVP: affine coupling layers whose masks alternate between keeping the first half and
    keeping the second half, so that every coordinate gets transformed; the layer next to the
    data keeps the first half. ``mask="alternating"`` alternates between keeping the even and
    the odd coordinates instead (the same in 2D; on an image stored row after row, a changed
    pixel's neighbours along its row are kept, which fits the 8x8 digits about 0.04 bits/dim
    better for about 7% more time per step, benchmarks/compare_digits.md); any mask that
    ``AffineCoupling`` takes works, alternating with its complement. ``additive=True`` gives
    NICE's additive coupling layers, a volume-preserving flow (log-det 0); NICE itself ends with
    a diagonal scaling, which you add as ``Flow([*flow.layers, Affine(dim)])``. ``context`` =
    k > 0 makes it conditional: q(x | c) for a context c of k numbers, which every conditioner
    reads (nflesson.bijector)."""
    _check_sizes("realnvp", dim, layers, hidden, min_dim=2, context=context)
    check_flag(additive, "additive")
    return Flow([AffineCoupling(dim, m, hidden, additive, context=context) for m in _masks(dim, layers, mask)])


def glow(dim=64, layers=4, hidden=32, context=0):
    """Glow (Kingma & Dhariwal, 2018) for vectors: ``layers`` steps, each (from the data side)
    ActNorm, then LULinear (Glow's invertible 1x1 convolution: a learned mixing of all
    coordinates), then an affine coupling layer whose masks alternate as in ``realnvp``. For
    pixels, end it with the pixel-to-real map: ``Flow([*glow(64).layers, LogitPixels(17)])``.
    The defaults suit the 1,000 training digits (wider networks overfit them within 1,000 steps).
    ``context`` = k > 0: conditional on k numbers (e.g. a one-hot label, k = 10), which the
    coupling layers' conditioners read; ActNorm and LULinear stay unconditional (a class-
    conditional Glow with the same number of layers and the same step cost, bar the k extra
    inputs of each conditioner's first layer)."""
    _check_sizes("glow", dim, layers, hidden, min_dim=2, context=context)
    steps = [[AffineCoupling(dim, m, hidden, context=context), LULinear(dim), ActNorm(dim)]
             for m in _masks(dim, layers)]
    return Flow([layer for step in steps for layer in step])


def _autoregressive_layers(dim, layers, hidden, context):
    """MAF layers whose autoregressive orders flip from layer to layer (``_orders``)."""
    return [MaskedAutoregressive(dim, hidden, o, context=context) for o in _orders(dim, layers)]


def maf(dim=2, layers=8, hidden=64, context=0):
    """Masked autoregressive flow: scoring in one pass per layer, sampling in dim passes.
    ``context`` = k > 0: conditional on k numbers, as in ``realnvp``."""
    _check_sizes("maf", dim, layers, hidden, context=context)
    return Flow(_autoregressive_layers(dim, layers, hidden, context))


def iaf(dim=2, layers=8, hidden=64, context=0):
    """Inverse autoregressive flow: sampling (and sample_and_log_prob) in one pass per layer,
    scoring new points in dim passes. The flow of choice for variational inference.
    ``context`` = k > 0: conditional on k numbers, as in ``realnvp``."""
    _check_sizes("iaf", dim, layers, hidden, context=context)
    return Flow([Inverse(layer) for layer in _autoregressive_layers(dim, layers, hidden, context)])


def nsf(dim=2, layers=4, hidden=64, bins=8, bound=5.0, autoregressive=False, context=0):
    """Neural spline flow (Durkan et al., 2019): spline coupling layers whose masks alternate as
    in ``realnvp``, or with ``autoregressive=True`` spline autoregressive layers whose orders
    flip as in ``maf`` (one pass to score, dim passes to sample). Each changed coordinate goes
    through a monotone rational-quadratic spline with ``bins`` bins on [-bound, bound].
    ``context`` = k > 0: conditional on k numbers, as in ``realnvp``."""
    check_flag(autoregressive, "autoregressive")
    _check_sizes("nsf", dim, layers, hidden, min_dim=1 if autoregressive else 2, context=context)
    check_bins_and_bound(bins, bound)
    if autoregressive:
        return Flow([SplineAutoregressive(dim, hidden, bins, bound, o, context) for o in _orders(dim, layers)])
    return Flow([SplineCoupling(dim, m, hidden, bins, bound, context) for m in _masks(dim, layers)])
