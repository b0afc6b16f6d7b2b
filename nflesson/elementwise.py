"""Elementwise bijectors: each coordinate is mapped on its own, so the Jacobian is diagonal
and log|det J| is the sum of the log-derivatives."""

import torch
import torch.nn.functional as F
from torch import nn

from .bijector import Bijector, batch_constant
from .checks import check_finite_rows, check_positive_int


class Affine(Bijector):
    """x = z * exp(log_scale) + shift, log|det J| = sum(log_scale).

    Parametrising the scale by its logarithm keeps it positive whatever the optimiser does;
    both parameters start at zero, so a fresh layer is the identity.
    """

    def __init__(self, dim=1):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def _forward(self, z):
        return z * self.log_scale.exp() + self.shift, batch_constant(self.log_scale.sum(), z)

    def _inverse(self, x):
        return (x - self.shift) * torch.exp(-self.log_scale), batch_constant(-self.log_scale.sum(), x)


class Exp(Bijector):
    """x = exp(z), log|det J| = sum(z). Turns a normal into a log-normal."""

    def _forward(self, z):
        return z.exp(), z.sum(-1)

    def _inverse(self, x):
        if (x <= 0).any():
            raise ValueError("Exp.inverse needs x > 0: exp only reaches the positive numbers")
        z = x.log()
        return z, -z.sum(-1)


class Sigmoid(Bijector):
    """x = 1 / (1 + exp(-z)), log|det J| = sum(log x + log(1 - x)) = -sum(softplus(z) + softplus(-z))."""

    def _forward(self, z):
        return torch.sigmoid(z), -(F.softplus(z) + F.softplus(-z)).sum(-1)

    def _inverse(self, x):
        if ((x <= 0) | (x >= 1)).any():
            raise ValueError("Sigmoid.inverse needs 0 < x < 1: the sigmoid only reaches (0, 1)")
        return torch.logit(x), -(x.log() + torch.log1p(-x)).sum(-1)


class ActNorm(Affine):
    """An Affine layer (x = z * exp(log_scale) + shift) with data-dependent initialisation (Glow).

    The first ``inverse`` pass (the scoring direction, data -> base) in training mode with
    gradients on, that is the first step of ``nflesson.fit``, sets shift = mean(x) and
    log_scale = log std(x), so that its output has zero mean and unit variance per coordinate;
    passes without gradients (plots, ``nflesson.gap``) leave it alone. A batch that cannot set
    them (fewer than 2 points, a NaN or inf, a coordinate that does not vary) is refused with
    ValueError and the layer stays uninitialised; so does a layer whose flow's pass fails
    later on (``reset``). The ``initialized`` flag is a buffer: a reloaded state_dict keeps its
    trained values and is not re-initialised. Until initialised the layer is the identity map
    it starts as.
    """

    def __init__(self, dim=1):
        super().__init__(dim)
        self.register_buffer("initialized", torch.tensor(False))

    def _inverse(self, x):
        if self.training and not self.initialized and torch.is_grad_enabled():
            self._initialize(x)
        return super()._inverse(x)

    @torch.no_grad()
    def reset(self):
        """Back to a fresh, uninitialised layer: the identity."""
        self.shift.zero_()
        self.log_scale.zero_()
        self.initialized.fill_(False)

    @torch.no_grad()
    def _initialize(self, x):
        first = "ActNorm sets its shift and scale from the first batch it scores in training mode"
        if len(x) < 2:
            raise ValueError(f"{first}, which needs at least 2 points, got {len(x)}; score a larger batch first, "
                             "or call flow.eval() to keep it the identity")
        check_finite_rows(x, "the first batch")
        std = x.std(0)
        flat = (std <= 1e-6 * (1 + x.abs().amax(0))).nonzero().flatten().tolist()
        if flat:
            raise ValueError(f"{first}, which must vary in every coordinate; coordinates {flat[:10]} are constant "
                             "in this batch (for pixels, dequantize them first: transform=nflesson.dequantize)")
        self.shift.copy_(x.mean(0))
        self.log_scale.copy_(std.log())
        self.initialized.fill_(True)
