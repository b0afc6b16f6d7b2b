"""Coupling layers (NICE, RealNVP): keep one part of the vector, transform the other part
elementwise with parameters computed from the kept part. The Jacobian is triangular (after
ordering kept coordinates first), so log|det J| is the sum of the log-scales, and both
directions take one network pass."""

import torch
from torch import nn

from .bijector import Bijector
from .checks import check_positive, check_positive_int


def mlp(inputs, hidden, outputs):
    """A two-hidden-layer ReLU network whose last layer starts at zero (so the layer using it
    starts as the identity)."""
    net = nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, outputs)
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def soft_clamp(raw, bound):
    """bound * tanh(raw / bound): about the identity near 0, never beyond +-bound. Used for
    log-scales, so that one bad step cannot make a scale explode."""
    return bound * torch.tanh(raw / bound)


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
    else:
        mask = torch.as_tensor(mask)
        if mask.shape != (dim,):
            raise ValueError(f"mask must have length dim = {dim}, got shape {tuple(mask.shape)}")
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"mask must hold booleans or 0/1 values, got {mask.tolist()}")
        mask = mask.bool()
    if mask.all() or not mask.any():
        raise ValueError(f"mask must keep some coordinates and change others, got {mask.tolist()} (needs dim >= 2)")
    return mask


class Coupling(Bijector):
    """What every coupling layer shares: the mask, a conditioner MLP from the kept coordinates
    to ``per_coordinate`` numbers for each changed coordinate, and the split and join of a
    point into its kept and changed parts. Subclasses transform the changed part."""

    def __init__(self, dim, mask, hidden, per_coordinate):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(hidden, "hidden")
        mask = coupling_mask(dim, mask)
        self.register_buffer("mask", mask)
        kept, changed = mask.nonzero().flatten(), (~mask).nonzero().flatten()
        self.register_buffer("kept", kept)
        self.register_buffer("changed", changed)
        self.register_buffer("unshuffle", torch.argsort(torch.cat([kept, changed])))
        # A mask that keeps a leading or trailing block (like "halves" and its complement) is
        # split and joined with slices, which cost less than gathers in both passes.
        n_kept = len(kept)
        self.block = "first" if mask[:n_kept].all() else "last" if mask[-n_kept:].all() else None
        self.conditioner = mlp(len(kept), hidden, per_coordinate * len(changed))

    def _split(self, z):
        """(kept, changed) parts of z."""
        n_kept = len(self.kept)
        if self.block == "first":
            return z[:, :n_kept], z[:, n_kept:]
        if self.block == "last":
            return z[:, -n_kept:], z[:, :-n_kept]
        return z[:, self.kept], z[:, self.changed]

    def _join(self, kept, changed):
        """The inverse of _split."""
        if self.block == "first":
            return torch.cat([kept, changed], -1)
        if self.block == "last":
            return torch.cat([changed, kept], -1)
        return torch.cat([kept, changed], -1)[:, self.unshuffle]


class AffineCoupling(Coupling):
    """x_kept = z_kept, x_changed = z_changed * exp(s(z_kept)) + t(z_kept);
    log|det J| = sum(s). With ``additive=True`` s = 0 (NICE: volume preserving).

    The log-scale is bounded, s = soft_clamp(raw, max_log_scale). The conditioner is a
    two-hidden-layer MLP.
    """

    def __init__(self, dim=2, mask=None, hidden=64, additive=False, max_log_scale=3.0):
        super().__init__(dim, mask, hidden, 1 if additive else 2)
        self.additive = additive
        self.max_log_scale = check_positive(max_log_scale, "max_log_scale")

    def shift_and_log_scale(self, kept):
        """(t, s) for the changed coordinates, each (batch, changed), from the kept part
        (batch, kept): the conditioner's outputs, with s = soft_clamp(raw, max_log_scale);
        s is None for an additive layer. x_changed = z_changed * exp(s) + t."""
        out = self.conditioner(kept)
        if self.additive:
            return out, None
        shift, raw = out.chunk(2, dim=-1)
        return shift, soft_clamp(raw, self.max_log_scale)

    def _forward(self, z):
        kept, changed = self._split(z)
        shift, log_scale = self.shift_and_log_scale(kept)
        if self.additive:
            changed, log_det = changed + shift, z.new_zeros(z.shape[0])
        else:
            changed, log_det = changed * log_scale.exp() + shift, log_scale.sum(-1)
        return self._join(kept, changed), log_det

    def _inverse(self, x):
        kept, changed = self._split(x)
        shift, log_scale = self.shift_and_log_scale(kept)
        changed = changed - shift
        if self.additive:
            log_det = x.new_zeros(x.shape[0])
        else:
            changed, log_det = changed * torch.exp(-log_scale), -log_scale.sum(-1)
        return self._join(kept, changed), log_det

    def extra_repr(self):
        kind = "additive" if self.additive else "affine"
        return f"dim={self.dim}, mask={self.mask.int().tolist()}, {kind}"
