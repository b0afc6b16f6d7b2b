"""Planar and radial flows (Rezende & Mohamed, 2015), with their inverses.

Both are x = z + (a small residual); the matrix determinant lemma makes log|det J| cheap.
"""

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .bijector import Bijector
from .checks import check_positive_int, type_name

_SOFTPLUS_INV_ONE = math.log(math.e - 1)  # softplus(_SOFTPLUS_INV_ONE) = 1
_MIN_WU_HAT = -1 + 1e-6  # Planar's w.u_hat never goes below this, even when softplus underflows


def inverse_softplus(y):
    """The a with softplus(a) = log(1 + e^a) = y, for y > 0: a = y + log(1 - e^-y)."""
    y = torch.as_tensor(y, dtype=torch.float64)
    return y + torch.log(-torch.expm1(-y))


def _dtype(*values):
    """The floating dtype for a layer built from these values: float64 if any of them is a
    float64 tensor, else the default dtype."""
    dtypes = [v.dtype for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return functools.reduce(torch.promote_types, dtypes, torch.get_default_dtype())


def _vector(value, name, dtype, dim=None):
    """A 1D tensor of ``dtype``, else TypeError (not numbers) or ValueError."""
    vector = _as_tensor(value, name, dtype, "a vector of numbers")
    if vector.dim() != 1 or len(vector) == 0 or (dim is not None and len(vector) != dim):
        raise ValueError(f"{name} must be a vector{'' if dim is None else f' of length {dim}'}, got shape "
                         f"{tuple(vector.shape)}")
    if not torch.isfinite(vector).all():
        raise ValueError(f"{name} must be finite, got {vector.tolist()}")
    return vector


def _as_tensor(value, name, dtype, what):
    """torch.as_tensor(value, dtype) of real numbers, else TypeError naming ``name``."""
    if isinstance(value, (bool, str, bytes)) or value is None or (isinstance(value, torch.Tensor) and (
            value.dtype == torch.bool or value.is_complex())):
        raise TypeError(f"{name} must be {what}, got {type_name(value)} {value!r}")
    try:
        return torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be {what}, got {value!r}") from None


def _number(value, name):
    """A finite Python float from a number or a one-element 0D tensor, else TypeError or ValueError."""
    tensor = _as_tensor(value, name, torch.float64, "a number")  # no rounding of a Python float to float32
    if tensor.dim() != 0:
        raise ValueError(f"{name} must be a number, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor):
        raise ValueError(f"{name} must be finite, got {float(tensor)}")
    return float(tensor)


class Planar(Bijector):
    """x = z + u_hat tanh(w.z + b), log|det J| = log|1 + (w.u_hat) tanh'(w.z + b)|.

    Invertible iff w.u_hat >= -1, which the reparametrisation
    u_hat = u + (m(w.u) - w.u) w / |w|^2 with m(a) = -1 + softplus(a + log(e - 1))
    (clamped at -1 + 1e-6)
    guarantees for any raw u and w (m > -1, and m(0) = 0 so that u = 0 gives the identity).

    The inverse has no closed form: along w the map reduces to the scalar equation
    a + (w.u_hat) tanh(a) = w.x + b for a = w.z + b, which is monotone in a, so Newton's
    method solves it to machine precision; then z = x - u_hat tanh(a).
    """

    def __init__(self, dim=2, max_iterations=100):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.max_iterations = check_positive_int(max_iterations, "max_iterations")
        self.w = nn.Parameter(torch.randn(dim) * 0.1)
        self.u = nn.Parameter(torch.randn(dim) * 0.01)
        self.b = nn.Parameter(torch.zeros(()))

    @classmethod
    def with_parameters(cls, w, u_hat, b=0.0):
        """A planar layer x = z + u_hat tanh(w.z + b) with exactly these effective parameters
        (the raw u is solved from the reparametrisation: w.u = m^-1(w.u_hat)). Needs
        w.u_hat > -1, the condition for the layer to be invertible (precisely w.u_hat >= -1 + 1e-6,
        the floor of the reparametrisation); with w = 0 any u_hat is allowed (the layer is
        the translation by u_hat tanh(b)). Raises ValueError otherwise, or when the shapes
        disagree (w and u_hat vectors of one length, b a number)."""
        dtype = _dtype(w, u_hat)
        w = _vector(w, "w", dtype)
        u_hat = _vector(u_hat, "u_hat", dtype, len(w))
        b = _number(b, "b")
        wu_hat = float(w @ u_hat)
        if float(w @ w) > 0 and not wu_hat >= _MIN_WU_HAT:
            raise ValueError(f"w.u_hat must be > -1 for the layer to be invertible (and >= -1 + "
                             f"{_MIN_WU_HAT + 1:g}, the reparametrisation's floor), got {wu_hat:g}")
        layer = cls(len(w)).to(dtype)
        u = u_hat
        if float(w @ w) > 0:  # move u_hat along w to the raw u whose w.u maps to w.u_hat
            wu = inverse_softplus(wu_hat + 1) - _SOFTPLUS_INV_ONE
            u = u_hat - (wu_hat - wu) * w / (w @ w)
        with torch.no_grad():
            layer.w.copy_(w)
            layer.u.copy_(u)
            layer.b.fill_(b)
        return layer

    @staticmethod
    def nearest_invertible(w, u_hat, floor=-0.99):
        """(u_hat, moved): u_hat moved along w to w.u_hat = ``floor`` where w.u_hat < floor
        (the layer is invertible only for w.u_hat > -1; ``floor`` > -1 keeps a margin), else
        unchanged (also for w = 0). For sliders that must always show an invertible layer."""
        w, u_hat = torch.as_tensor(w), torch.as_tensor(u_hat)
        if float(w @ w) > 0 and float(w @ u_hat) < floor:
            return u_hat + (floor - w @ u_hat) * w / (w @ w), True
        return u_hat, False

    def u_hat(self):
        """The constrained u with w.u_hat >= -1."""
        wu = self.w @ self.u
        # clamp: when softplus underflows, w.u_hat must stay above -1 despite rounding
        m = F.softplus(wu + _SOFTPLUS_INV_ONE).clamp_min(_MIN_WU_HAT + 1) - 1
        return self.u + (m - wu) * self.w / (self.w @ self.w).clamp_min(1e-12)

    @staticmethod
    def _log_abs_det(t, wu_hat):
        """log(1 + (w.u_hat) tanh'(a)), from t = tanh(a) (tanh' = 1 - tanh^2)."""
        return torch.log1p(wu_hat * (1 - t**2))

    def _forward(self, z):
        u_hat = self.u_hat()
        t = torch.tanh(torch.addmv(self.b, z, self.w))  # tanh(z.w + b)
        return torch.addr(z, t, u_hat), self._log_abs_det(t, self.w @ u_hat)  # z + t u_hat^T

    def _inverse(self, x):
        u_hat = self.u_hat()
        c = self.w @ u_hat
        y = x @ self.w + self.b
        with torch.no_grad():
            a = solve_planar(y.detach(), c.detach(), self.max_iterations)
        # One Newton step with gradients on: exact at the root, and its derivative is the
        # implicit-function gradient, so maximum-likelihood training can use this inverse.
        t0 = torch.tanh(a)
        t = torch.tanh(a - (a + c * t0 - y) / (1 + c * (1 - t0**2)))
        return x - u_hat * t.unsqueeze(-1), -self._log_abs_det(t, c)

def solve_planar(y, c, max_iterations=100):
    """Solve a + c tanh(a) = y elementwise, for c >= -1 (the left side increases with a): the
    inverse of a planar layer along w.

    Newton from a0 = sign(y) max(0, |y| - c) converges monotonically: the root has the sign
    of y, and on that side the left side is concave (c > 0; a0 lies below the root) or
    convex (c < 0; a0 lies above it), so no step overshoots.
    """
    a = torch.sign(y) * (y.abs() - c).clamp_min(0)
    tol = 16 * torch.finfo(y.dtype).eps * (1 + c.abs())
    for _ in range(max_iterations):
        t = torch.tanh(a)
        step = (a + c * t - y) / (1 + c * (1 - t**2))
        a = a - step
        if (step.abs() <= tol * (1 + a.abs())).all():
            break
    return a


class Radial(Bijector):
    """x = z + beta h(r) (z - z0) with r = |z - z0|, h(r) = 1 / (alpha + r);
    log|det J| = (dim - 1) log(1 + beta h) + log(1 + beta alpha h^2).

    alpha = softplus(raw) > 0 and beta = -alpha + softplus(raw') >= -alpha keep it invertible.
    beta > 0 pushes points away from z0 (expansion), beta < 0 pulls them in (contraction).
    Inverse in closed form: |x - z0| = r (alpha + r + beta) / (alpha + r) is a quadratic in r.
    """

    def __init__(self, dim=2):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.z0 = nn.Parameter(torch.randn(dim))
        self.alpha_raw = nn.Parameter(torch.tensor(_SOFTPLUS_INV_ONE))
        self.beta_raw = nn.Parameter(torch.tensor(_SOFTPLUS_INV_ONE))  # beta = 0: the identity

    @classmethod
    def with_parameters(cls, z0, alpha, beta):
        """A radial layer x = z + beta (z - z0) / (alpha + |z - z0|) with exactly these effective
        parameters. Needs alpha > 0 and beta > -alpha (at beta = -alpha the centre's
        neighbourhood would collapse to a point); z0 a vector, alpha and beta numbers. Raises
        ValueError otherwise."""
        dtype = _dtype(z0, alpha, beta)
        z0 = _vector(z0, "z0", dtype)
        alpha, beta = _number(alpha, "alpha"), _number(beta, "beta")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha:g}")
        if not beta > -alpha:
            raise ValueError(f"beta must be > -alpha = {-alpha:g} for the layer to be invertible, got {beta:g}")
        layer = cls(len(z0)).to(dtype)
        with torch.no_grad():
            layer.z0.copy_(z0)
            layer.alpha_raw.copy_(inverse_softplus(alpha))
            layer.beta_raw.copy_(inverse_softplus(beta + alpha))
        return layer

    def alpha_beta(self):
        """The constrained (alpha, beta) with alpha > 0 and beta >= -alpha."""
        alpha = F.softplus(self.alpha_raw)
        return alpha, F.softplus(self.beta_raw) - alpha

    def _log_abs_det(self, r, alpha, beta):
        h = 1 / (alpha + r)
        return (self.dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h**2)

    def _forward(self, z):
        alpha, beta = self.alpha_beta()
        d = z - self.z0
        r = d.norm(dim=-1)
        x = z + (beta / (alpha + r)).unsqueeze(-1) * d
        return x, self._log_abs_det(r, alpha, beta)

    def _inverse(self, x):
        alpha, beta = self.alpha_beta()
        d = x - self.z0
        big_r = d.norm(dim=-1)
        # r^2 + p r - alpha R = 0 with p = alpha + beta - R; take the root >= 0 without cancellation.
        p = alpha + beta - big_r
        root = torch.sqrt(p**2 + 4 * alpha * big_r)
        tiny = torch.finfo(x.dtype).tiny
        r = torch.where(p > 0, 2 * alpha * big_r / (p.abs() + root).clamp_min(tiny), (root - p) / 2)
        scale = (alpha + r) / (alpha + r + beta).clamp_min(tiny)
        return self.z0 + scale.unsqueeze(-1) * d, -self._log_abs_det(r, alpha, beta)
