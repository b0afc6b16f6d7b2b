"""Linear bijectors x = z W + b (points are rows, as in the tensors (batch, dim)) and coordinate permutations."""

import numbers

import torch
from torch import nn

from .bijector import Bijector, batch_constant
from .checks import check_positive_int


class Linear(Bijector):
    """x = z W + b with a dense W; log|det J| = log|det W| by torch.linalg.slogdet, O(dim^3).

    W starts as the identity and b at zero. The map is invertible while det W != 0.
    """

    def __init__(self, dim=2):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.weight = nn.Parameter(torch.eye(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def _log_abs_det(self, direction):
        """log|det W|, or ValueError if W is singular (not a bijection: no density either way)."""
        sign, log_abs_det = torch.linalg.slogdet(self.weight)
        if sign.item() == 0:
            raise ValueError(f"Linear.{direction} needs an invertible weight W, but det W = 0: the map flattens space "
                             "onto a lower-dimensional subspace, where it has no density, and no z maps to most x")
        return log_abs_det

    def _forward(self, z):
        return z @ self.weight + self.bias, batch_constant(self._log_abs_det("forward"), z)

    def _inverse(self, x):
        log_abs_det = self._log_abs_det("inverse")
        return torch.linalg.solve(self.weight, x - self.bias, left=False), batch_constant(-log_abs_det, x)


class LULinear(Bijector):
    """x = z L U + b with L unit lower triangular and U upper triangular with diagonal exp(log_diag).

    det W = prod(diag U), so log|det J| = sum(log_diag): O(dim) instead of slogdet's O(dim^3),
    and the inverse is two triangular solves. Starts as the identity.
    """

    def __init__(self, dim=2):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.lower = nn.Parameter(torch.zeros(dim, dim))
        self.upper = nn.Parameter(torch.zeros(dim, dim))
        self.log_diag = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def triangular_factors(self):
        """The factors (L, U) of W = L U."""
        eye = torch.eye(self.dim, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower.tril(-1) + eye
        upper = self.upper.triu(1) + torch.diag(self.log_diag.exp())
        return lower, upper

    @property
    def weight(self):
        """The dense matrix W = L U (for inspection and plots)."""
        lower, upper = self.triangular_factors()
        return lower @ upper

    def _forward(self, z):
        lower, upper = self.triangular_factors()
        return (z @ lower) @ upper + self.bias, batch_constant(self.log_diag.sum(), z)  # O(batch dim^2)

    def _inverse(self, x):
        lower, upper = self.triangular_factors()
        y = torch.linalg.solve_triangular(upper, x - self.bias, upper=True, left=False)
        z = torch.linalg.solve_triangular(lower, y, upper=False, left=False, unitriangular=True)
        return z, batch_constant(-self.log_diag.sum(), x)


class Permute(Bijector):
    """x = z[:, permutation]; |det J| = 1. ``Permute(dim)`` reverses the order of the coordinates."""

    def __init__(self, dim_or_permutation=2):
        super().__init__()
        if isinstance(dim_or_permutation, numbers.Integral) and not isinstance(dim_or_permutation, bool):
            permutation = torch.arange(check_positive_int(dim_or_permutation, "dim") - 1, -1, -1)
        elif not isinstance(dim_or_permutation, (list, tuple, range, torch.Tensor)):
            raise TypeError(f"Permute needs a dim >= 1 or a permutation of 0..n-1 (a list or a tensor), got "
                            f"{type(dim_or_permutation).__name__} {dim_or_permutation!r}")
        else:
            try:
                permutation = torch.as_tensor(dim_or_permutation)
            except (TypeError, ValueError, RuntimeError):
                permutation = torch.zeros(0)
            wrong_type = permutation.dtype == torch.bool or permutation.is_floating_point() or permutation.is_complex()
            if wrong_type and permutation.numel() > 0:
                raise TypeError(f"Permute needs a permutation of integers 0..n-1, got {permutation.dtype} values "
                                f"{dim_or_permutation!r}")
            n = permutation.numel()
            if permutation.dim() != 1 or n == 0 or not torch.equal(permutation.sort().values, torch.arange(n)):
                raise ValueError(
                    f"Permute needs a dim >= 1 or a permutation of 0..n-1, got {dim_or_permutation!r}"
                )
        self.dim = permutation.numel()
        self.register_buffer("permutation", permutation.long())
        self.register_buffer("inverse_permutation", torch.argsort(permutation).long())

    def _forward(self, z):
        return z[:, self.permutation], z.new_zeros(z.shape[0])

    def _inverse(self, x):
        return x[:, self.inverse_permutation], x.new_zeros(x.shape[0])

    def extra_repr(self):
        return f"permutation={self.permutation.tolist()}"
