"""Autoregressive flows: MADE (a masked MLP whose output i sees only inputs before i) and the
MAF layer built on it. The Jacobian is triangular by construction, so log|det J| is the sum
of the log-scales."""

import torch
import torch.nn.functional as F
from torch import nn

from .bijector import Bijector
from .checks import check_positive, check_positive_int
from .coupling import soft_clamp


class MaskedLinear(nn.Linear):
    """y = x (W * M)^T + b: a Linear layer whose weight is multiplied by a fixed 0/1 mask M."""

    def __init__(self, mask):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation (Germain et al., 2015).

    Maps x (batch, dim) to parameters (batch, params_per_dim, dim) such that the parameters of
    coordinate i depend only on the coordinates that come before i in ``order`` (default
    0, 1, ..., dim - 1). Each unit gets a degree; a weight from a unit of degree k to a hidden
    unit of degree m is kept iff m >= k, and to an output of degree d iff d > m. Hidden degrees
    cycle through 1..dim-1, so every allowed connection exists. The output layer starts at zero.
    """

    def __init__(self, dim=2, hidden=64, params_per_dim=2, order=None, hidden_layers=2):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        self.params_per_dim = check_positive_int(params_per_dim, "params_per_dim")
        check_positive_int(hidden_layers, "hidden_layers")
        order = torch.arange(dim) if order is None else torch.as_tensor(order)
        if order.shape != (dim,) or not torch.equal(order.sort().values, torch.arange(dim)):
            raise ValueError(f"order must be a permutation of 0..{dim - 1}, got {order.tolist()}")
        in_degrees = torch.empty(dim, dtype=torch.long)
        in_degrees[order] = torch.arange(1, dim + 1)
        hidden_degrees = torch.arange(hidden) % max(dim - 1, 1) + 1 if dim > 1 else torch.zeros(hidden, dtype=torch.long)
        out_degrees = in_degrees.repeat(params_per_dim)
        self.register_buffer("degrees", in_degrees)
        layers, previous = [], in_degrees
        for _ in range(hidden_layers):
            layers += [MaskedLinear(hidden_degrees[:, None] >= previous[None, :]), nn.ReLU()]
            previous = hidden_degrees
        layers.append(MaskedLinear(out_degrees[:, None] > previous[None, :]))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def masks(self):
        """The 0/1 masks of the layers, input side first (for drawing the connectivity)."""
        return [m.mask for m in self.net if isinstance(m, MaskedLinear)]

    def forward(self, x):
        return self.net(x).unflatten(-1, (self.params_per_dim, self.dim))


class MaskedAutoregressive(Bijector):
    """A MAF layer (Papamakarios et al., 2017): x_i = z_i exp(s_i) + t_i with (t_i, s_i) computed
    by a MADE from x_<i; log|det J| = sum(s).

    Scoring (``inverse``, data -> base) is one network pass: z = (x - t(x)) exp(-s(x)).
    Sampling (``forward``) is dim passes: after pass k the first k coordinates are final.
    ``Inverse(MaskedAutoregressive(...))`` is an IAF layer, with the costs swapped.
    The log-scale is bounded like the coupling layer's.
    """

    def __init__(self, dim=2, hidden=64, order=None, max_log_scale=3.0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.max_log_scale = check_positive(max_log_scale, "max_log_scale")
        self.made = MADE(dim, hidden, params_per_dim=2, order=order)

    def shift_and_log_scale(self, x):
        """(t, s), each (batch, dim), from the data-side point x: t_i and s_i depend only on
        the coordinates before i in the order (MADE), s = soft_clamp(raw, max_log_scale).
        x_i = z_i * exp(s_i) + t_i."""
        shift, raw = self.made(x).unbind(1)
        return shift, soft_clamp(raw, self.max_log_scale)

    def _forward(self, z):
        x = torch.zeros_like(z)
        for _ in range(self.dim):
            shift, log_scale = self.shift_and_log_scale(x)
            x = z * log_scale.exp() + shift
        return x, log_scale.sum(-1)

    def _inverse(self, x):
        shift, log_scale = self.shift_and_log_scale(x)
        return (x - shift) * torch.exp(-log_scale), -log_scale.sum(-1)
