"""The bijector interface: an invertible map with the log-determinant of its Jacobian.

Convention (as in torch.distributions): ``forward`` maps base -> data (sampling),
``inverse`` maps data -> base (scoring). Tensors are (batch, dim); each call returns the
image and ``log|det J|`` of the direction called, shape (batch,). A bijector with parameters
takes points of their dtype; a batch of 0 points gives an empty result (nflesson.checks).

A conditional bijector (``context_size`` k > 0) also takes a context c, a (batch, k) tensor or
one (k,) row for the whole batch, which its networks read: x = f(z; c). The Jacobian is taken
with respect to the points only, so every log-det formula stays as it is. Bijectors without a
conditioner accept a context and ignore it.
"""

import itertools

import torch
from torch import nn

from .checks import check_batch


class Bijector(nn.Module):
    """Base class. Subclasses implement ``_forward(z)`` and ``_inverse(x)`` (a conditional one,
    with ``context_size`` > 0, ``_forward(z, context)`` and ``_inverse(x, context)``), both
    returning ``(output, log_abs_det)``; the public ``forward``/``inverse`` check their input
    first.

    ``dim`` is the number of columns the bijector accepts (None: any).
    """

    dim = None
    context_size = 0  # the width k of the context a conditional bijector reads (0: none)
    noun = None  # what error messages call it (None: its class name)

    @property
    def dtype(self):
        """The floating dtype of the parameters and buffers, which inputs must have (None for a
        map without any, such as Exp: it takes float32 and float64 alike)."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
        return None

    def checked(self, points, what="input"):
        """``points`` if they are a (batch, dim) tensor of this bijector's dtype, else TypeError
        or ValueError (nflesson.checks.check_batch) naming ``what`` they are."""
        return check_batch(points, self.dim, what, owner=self.noun or type(self).__name__, dtype=self.dtype)

    def checked_context(self, context, batch):
        """The context of ``batch`` points as a (batch, k) tensor for a conditional bijector (a
        (k,) row is repeated for every point), None for an unconditional one (which ignores any
        context); else TypeError or ValueError saying what is needed."""
        k = self.context_size
        if not k:
            return None
        owner = self.noun or type(self).__name__
        if context is None:
            raise ValueError(f"this {owner} is conditional on a context of width {k}: pass context=c, a tensor "
                             f"of shape (batch, {k}) or ({k},)")
        if not isinstance(context, torch.Tensor):
            raise TypeError(f"context must be a tensor of shape (batch, {k}) or ({k},), got {type(context).__name__}")
        if context.dim() == 1:
            context = context.expand(batch, -1)
        context = check_batch(context, k, "context", owner=f"{owner}'s context", dtype=self.dtype)
        if len(context) != batch:
            raise ValueError(f"context has {len(context)} rows for {batch} points: give one row per point, or one "
                             f"({k},) row for all")
        return context

    def forward(self, z, context=None):
        return self._checked_pass("_forward", self.checked(z), context)

    def inverse(self, x, context=None):
        return self._checked_pass("_inverse", self.checked(x), context)

    def _checked_pass(self, method, points, context):
        context = self.checked_context(context, len(points))
        return (points.clone(), points.new_zeros(0)) if len(points) == 0 else call(self, method, points, context)

    def _forward(self, z):
        raise NotImplementedError

    def _forward_points(self, z, context=None):
        """The forward map's points without the log-det, which sampling does not need; a bijector
        whose log-det costs extra work (ContinuousFlow: the divergence) overrides it."""
        return call(self, "_forward", z, context)[0]

    def _inverse(self, x):
        raise NotImplementedError

    def extra_repr(self):
        return "" if self.dim is None else f"dim={self.dim}"


class Inverse(Bijector):
    """The bijector ``b`` with its two directions swapped: forward = b.inverse, inverse = b.forward.

    ``Inverse(MaskedAutoregressive(d))`` is an IAF layer: one pass to sample, d passes to score.
    """

    def __init__(self, bijector):
        super().__init__()
        if not isinstance(bijector, Bijector):
            raise TypeError(f"Inverse needs a nflesson.Bijector, got {type(bijector).__name__}")
        self.bijector = bijector
        self.dim, self.context_size = bijector.dim, bijector.context_size

    def _forward(self, z, context=None):
        return call(self.bijector, "_inverse", z, context)

    def _inverse(self, x, context=None):
        return call(self.bijector, "_forward", x, context)


def call(bijector, method, points, context):
    """``bijector._forward(points)`` (or ``_inverse``), with the context for a conditional
    bijector: unconditional ones take no context argument."""
    if bijector.context_size:
        return getattr(bijector, method)(points, context)
    return getattr(bijector, method)(points)


def batch_constant(value, x):
    """Broadcast a scalar log-det (a 0-d tensor) to shape (batch,) of ``x``."""
    return value.expand(x.shape[0])
