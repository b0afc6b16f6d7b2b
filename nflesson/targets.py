"""Targets for the course: densities that can be sampled, with exact log-densities and entropies.

Every target has ``name``, ``dim`` (1 or 2) and ``bounds``, a plotting box that holds essentially all
of the mass (``((xmin, xmax),)`` in 1D, ``((xmin, xmax), (ymin, ymax))`` in 2D), and the methods

- ``sample(n, generator=None)``: a CPU tensor (n, dim) of the default dtype; the same seed of the
  optional ``torch.Generator`` gives the same samples;
- ``log_prob(x)``: the log-density at the rows of ``x`` (batch, dim), shape (batch,), in x's dtype
  (float32 or float64); a batch of 0 rows gives shape (0,), a row with NaN gives NaN (as torch
  does), and a row with an infinite coordinate (and no NaN) gives -inf: every target's density
  vanishes at infinity (for u2, u3, u4 the density on their box, see ``Energy``);
- ``entropy()``: the entropy in nats, so that a model's mean test NLL minus ``entropy()`` estimates
  its KL divergence from the target;
- ``log_normalizer()``: log Z of ``exp(log_prob)``, 0.0 for every target except the energies.

The energies ``"u1"`` .. ``"u4"`` of Rezende & Mohamed (2015, Table 1) are unnormalised: their
``log_prob`` is -U(z), and KL(q || p) = E_q[log q(z) + U(z)] + ``log_normalizer()``.

Constants are kept in float64; ``log_prob`` returns the dtype of its input (mixtures and
quadratures compute in float64 inside, the closed formulas in the input's dtype).

Real data (the digits) is in nflesson.digits; ``nflesson.data`` gathers both.
"""

import math

import numpy as np
import torch

from .checks import (check_batch, check_bounds, check_generator, check_number, check_positive, check_positive_int,
                     type_name)

LOG_2PI = math.log(2 * math.pi)


def _f64(values):
    return torch.as_tensor(values, dtype=torch.float64)


def _real_tensor(values, name, shape_text):
    """``values`` (a tensor, or a nested sequence of numbers) as a float64 tensor of finite numbers,
    else TypeError (not numbers) or ValueError (NaN, inf); ``shape_text`` says the shape needed."""
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of {values.dtype}")
        tensor = values.detach().to("cpu", torch.float64).clone()
    else:
        if isinstance(values, (str, bytes, bool)) or values is None:
            raise TypeError(f"{name} must be {shape_text} of numbers, got {type_name(values)}")
        try:
            tensor = torch.as_tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            raise TypeError(f"{name} must be {shape_text} of numbers, got {values!r}") from None
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must hold finite numbers, got {values!r}")
    return tensor


def _check_weights(weights, count, name="weights"):
    """``weights`` as a float64 tensor of ``count`` numbers >= 0 that add up to 1, else raise."""
    weights = _real_tensor(weights, name, f"a sequence of {count}")
    if weights.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},), one per component, got shape {tuple(weights.shape)}")
    if (weights < 0).any() or abs(weights.sum().item() - 1) > 1e-9:
        raise ValueError(f"{name} must be >= 0 and add up to 1 (a density that integrates to 1), got "
                         f"{weights.tolist()} (sum {weights.sum().item():.12g}); normalise them: w / w.sum()")
    return weights


def _mixture_log_prob(x, means, stds, log_weights):
    """log sum_k w_k N(x; mean_k, std_k^2 I), by logsumexp (finite far from every component).

    ``x`` is (batch, d), ``means`` (K, d), ``stds`` and ``log_weights`` (K,). Each exponent
    log w_k - d log std_k - (d/2) log(2 pi) - |x - mean_k|^2 / (2 std_k^2) is expanded in |x|^2,
    x.mean_k and |mean_k|^2 and formed by one matrix product, in float64 (no cancellation trouble);
    the result has x's dtype. Rows go in chunks, so that a fine plotting grid times a thousand
    components stays small in memory.
    """
    x64 = x.to(torch.float64)
    means, stds, log_weights = means.to(x64), stds.to(x64), log_weights.to(x64)
    d = means.shape[1]
    precision = 1 / stds**2
    bias = log_weights - d * torch.log(stds) - 0.5 * d * LOG_2PI - 0.5 * precision * (means**2).sum(1)
    weight = torch.cat([means * precision[:, None], -0.5 * precision[:, None]], 1).T
    rows = max(1, 2**21 // len(means))
    parts = [
        torch.logsumexp(torch.addmm(bias, torch.cat([chunk, (chunk**2).sum(1, keepdim=True)], 1), weight), 1)
        for chunk in x64.split(rows)
    ]
    log_p = torch.cat(parts)
    if torch.isnan(log_p).any():  # |x|^2 overflowed (|x| > 1e154): so far out that the density is 0
        log_p = log_p.masked_fill(torch.isnan(log_p) & torch.isfinite(x64).all(1), -math.inf)
    return log_p.to(x.dtype)


def gauss_legendre(n):
    """Nodes (from 1 down to -1) and weights, float64 tensors, of the n-point Gauss-Legendre rule on
    [-1, 1], exact for polynomials of degree up to 2n - 1. The nodes are the roots of the Legendre
    polynomial P_n, by Newton's method from x_k = cos(pi (k - 1/4) / (n + 1/2)), with P_n by the
    recurrence (j + 1) P_{j+1} = (2j + 1) x P_j - j P_{j-1} and P_n' = n (P_{n-1} - x P_n) / (1 - x^2);
    the weights are 2 / ((1 - x^2) P_n'(x)^2). O(n^2): 1,152 nodes take milliseconds, and the weights
    are within 1e-11 of 40-digit values (numpy's leggauss, an eigenvalue problem: about a second, 1e-8)."""
    check_positive_int(n, "n")
    x = np.cos(np.pi * (np.arange(1, n + 1) - 0.25) / (n + 0.5))
    converged = False
    for _ in range(100):
        one_minus_x2 = (1 - x) * (1 + x)  # without the cancellation of 1 - x^2 near the ends
        previous, p = np.ones_like(x), x
        for j in range(1, n):
            previous, p = p, ((2 * j + 1) * x * p - j * previous) / (j + 1)
        slope = n * (previous - x * p) / one_minus_x2
        if converged:
            break
        step = p / slope
        x = x - step
        converged = np.abs(step).max() < 1e-15  # one more pass: P_n' at the nodes found
    return torch.from_numpy(x), torch.from_numpy(2 / (one_minus_x2 * slope**2))


class Target:
    """Base class: subclasses draw float64 samples in ``_sample`` and score in ``_log_prob``."""

    def __init__(self, name, dim, bounds, entropy):
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type_name(name)} {name!r}")
        self.name = name
        self.dim = check_positive_int(dim, "dim")
        self.bounds = check_bounds(bounds, dim)
        self._entropy = check_number(entropy, "entropy")

    def sample(self, n, generator=None):
        """``n`` samples, a CPU tensor (n, dim) of ``torch.get_default_dtype()``; ``generator`` is
        None (the global random state) or a CPU ``torch.Generator``."""
        check_positive_int(n, "n")
        check_generator(generator)
        return self._sample(n, generator).to(torch.get_default_dtype())

    def log_prob(self, x):
        """Log-density at the rows of ``x`` (batch, dim); shape (batch,), dtype of ``x`` (float32
        or float64). NaN in a row gives NaN; an infinite coordinate (and no NaN) gives -inf."""
        check_batch(x, self.dim, "x", owner=f"target ({self.name})")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64, got {x.dtype}; use x.float() or x.double()")
        log_p = self._log_prob(x)
        finite = torch.isfinite(x).all(1)
        if not finite.all():  # NaN in, NaN out; a point at infinity has density 0
            at_infinity = torch.full_like(log_p, -math.inf).masked_fill(torch.isnan(x).any(1), math.nan)
            log_p = torch.where(finite, log_p, at_infinity)
        return log_p

    def _sample(self, n, generator):
        raise NotImplementedError(f"{type(self).__name__} is a base class: subclasses draw samples in _sample")

    def _log_prob(self, x):
        raise NotImplementedError(f"{type(self).__name__} is a base class: subclasses score points in _log_prob")

    def entropy(self):
        """Entropy in nats (see the class docstring for how it was obtained)."""
        return self._entropy

    def log_normalizer(self):
        """log of the integral of exp(log_prob): 0.0, the density is normalised."""
        return 0.0

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}, dim={self.dim}>"


class Gaussian(Target):
    """N(mean, cov): log p(x) = -|L^-1 (x - mean)|^2 / 2 - sum log diag(L) - (d/2) log(2 pi), cov = L L^T.

    Entropy (exact): 0.5 log det(2 pi e cov). ``mean`` and ``cov`` are float64 tensors.
    """

    def __init__(self, name, mean, cov, bounds):
        self.mean, self.cov = _check_gaussian(mean, cov)
        self.scale_tril = torch.linalg.cholesky(self.cov)
        self._half_log_det = torch.log(torch.diagonal(self.scale_tril)).sum().item()
        dim = len(self.mean)
        super().__init__(name, dim, bounds, 0.5 * dim * (1 + LOG_2PI) + self._half_log_det)

    def _sample(self, n, generator):
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.mean + eps @ self.scale_tril.T

    def _log_prob(self, x):
        z = torch.linalg.solve_triangular(self.scale_tril.to(x), (x - self.mean.to(x)).T, upper=False)
        return -0.5 * (z**2).sum(0) - self._half_log_det - 0.5 * self.dim * LOG_2PI


def _check_gaussian(mean, cov):
    """``mean`` (d,) and ``cov`` (d, d), symmetric positive definite, as float64 tensors, else raise."""
    mean = _real_tensor(mean, "mean", "a sequence")
    if mean.dim() != 1 or len(mean) == 0:
        raise ValueError(f"mean must be a vector (d,) with d >= 1, got shape {tuple(mean.shape)}")
    d = len(mean)
    cov = _real_tensor(cov, "cov", f"a {d} x {d} matrix")
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}) to match the mean of length {d}, got shape "
                         f"{tuple(cov.shape)}")
    if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * cov.abs().max().item()):
        raise ValueError(f"cov must be symmetric (cov[i, j] = cov[j, i]), got {cov.tolist()}")
    if torch.linalg.cholesky_ex(cov).info != 0:
        raise ValueError(f"cov must be positive definite (a covariance: every eigenvalue > 0), got {cov.tolist()} "
                         f"with eigenvalues {torch.linalg.eigvalsh(cov).tolist()}")
    return mean, cov


class IsotropicMixture(Target):
    """p(x) = sum_k w_k N(x; mean_k, std_k^2 I), by logsumexp.

    Entropy: a precomputed constant (``entropy`` argument), see the registry below.
    """

    def __init__(self, name, means, stds, weights, bounds, entropy):
        means = _real_tensor(means, "means", "a (K, d) matrix")
        if means.dim() != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(f"means must have shape (K, d), one row per component, got shape {tuple(means.shape)}")
        count = len(means)
        stds = _real_tensor(stds, "stds", f"a sequence of {count}")
        if stds.shape != (count,) or (stds <= 0).any():
            raise ValueError(f"stds must be {count} numbers > 0, one per component, got {stds.tolist()}")
        weights = _check_weights(weights, count)
        self.means, self.stds, self.weights = means, stds, weights
        super().__init__(name, self.means.shape[1], bounds, entropy)

    def _sample(self, n, generator):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * eps

    def _log_prob(self, x):
        return _mixture_log_prob(x, self.means, self.stds, torch.log(self.weights))


class Checkerboard(Target):
    """Uniform on the 8 unit squares [i-2, i-1] x [j-2, j-1] with i + j even of the 4x4 board [-2, 2]^2.

    log p = -log 8 inside those squares, -inf elsewhere (the density is truly zero there).
    Entropy (exact): log 8.
    """

    def __init__(self):
        super().__init__("checkerboard", 2, ((-2.5, 2.5), (-2.5, 2.5)), math.log(8))
        self.corners = _f64([(i - 2, j - 2) for i in range(4) for j in range(4) if (i + j) % 2 == 0])

    def _sample(self, n, generator):
        k = torch.randint(len(self.corners), (n,), generator=generator)
        return self.corners[k] + torch.rand(n, 2, generator=generator, dtype=torch.float64)

    def _log_prob(self, x):
        cell = torch.floor(x + 2)
        inside = ((cell >= 0) & (cell <= 3)).all(1) & (cell.sum(1) % 2 == 0)
        return x.new_full((len(x),), -math.log(8)).masked_fill(~inside, -math.inf)


class Rings(Target):
    """Concentric circles of radii R_k, weights w_k, uniform angle, blurred by N(0, sigma^2 I):

    p(x) = sum_k w_k exp(-(|x| - R_k)^2 / (2 sigma^2)) i0e(|x| R_k / sigma^2) / (2 pi sigma^2),
    the closed form of exp(-(|x|^2 + R^2) / (2 sigma^2)) I0(|x| R / sigma^2) / (2 pi sigma^2) with the
    exponentially scaled Bessel function i0e(t) = exp(-t) I0(t), stable for any |x|.
    Entropy: a precomputed constant, see the registry below.
    """

    def __init__(self, radii, weights, sigma, bounds, entropy):
        radii = _real_tensor(radii, "radii", "a sequence")
        if radii.dim() != 1 or len(radii) == 0 or (radii < 0).any():
            raise ValueError(f"radii must be a sequence of numbers >= 0 (at least one), got {radii.tolist()}")
        weights = _check_weights(weights, len(radii))
        self.radii, self.weights, self.sigma = radii, weights, check_positive(sigma, "sigma")
        super().__init__("rings", 2, bounds, entropy)

    def _sample(self, n, generator):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        circle = self.radii[k, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return circle + self.sigma * torch.randn(n, 2, generator=generator, dtype=torch.float64)

    def _log_prob(self, x):
        r = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        radii, s2 = self.radii.to(x), self.sigma**2
        terms = -0.5 * (r - radii) ** 2 / s2 + torch.log(torch.special.i0e(r * radii / s2))
        terms = terms + torch.log(self.weights.to(x)) - math.log(2 * math.pi * s2)
        return torch.logsumexp(terms, dim=1)


class Banana(Target):
    """x1 ~ N(0, 1), x2 | x1 ~ N(b (x1^2 - 1), s^2): log p = log N(x1; 0, 1) + log N(x2; b (x1^2 - 1), s^2).

    Entropy (exact, chain rule; the shear x2 - b (x1^2 - 1) has Jacobian 1):
    H = 0.5 log(2 pi e) + 0.5 log(2 pi e s^2).
    """

    def __init__(self, b=0.4, s=0.3):
        check_number(b, "b")
        self.b, self.s = b, check_positive(s, "s")
        super().__init__("banana", 2, ((-4.0, 4.0), (-2.0, 6.0)), 1 + LOG_2PI + math.log(s))

    def _sample(self, n, generator):
        x1, e = torch.randn(2, n, generator=generator, dtype=torch.float64)
        return torch.stack([x1, self.b * (x1**2 - 1) + self.s * e], 1)

    def _log_prob(self, x):
        x1, x2 = x[:, 0], x[:, 1]
        r = (x2 - self.b * (x1**2 - 1)) / self.s
        return -0.5 * (x1**2 + r**2) - LOG_2PI - math.log(self.s)


class TwoArms(Target):
    """Two point-symmetric curves c(t) and -c(t), t in [0, 1], blurred by N(0, sigma^2 I).

    Each arm has weight 1/2 and the position t along it has density rho(t) = (power + 1) t^power
    (sampled as t = u^(1 / (power + 1)), u uniform). The exact density
    p(x) = 1/2 sum_{+-} int_0^1 rho(t) N(x; +-c(t), sigma^2 I) dt
    is computed by Gauss-Legendre quadrature with ``nodes`` nodes per arm, i.e. as a mixture of
    2 * nodes Gaussians whose weights are the quadrature weights (so it integrates to 1 exactly).
    The default ``nodes`` is accurate to 1e-4 nats over ``bounds`` (a test checks it against 8 times
    as many nodes). Subclasses set ``name``, ``power``, ``sigma``, ``nodes`` (the default),
    ``bounds``, ``entropy_value`` and ``curve``.
    """

    power = 0

    def __init__(self, nodes=None):
        if not hasattr(type(self), "curve"):
            raise TypeError("TwoArms is a base class: use Moons() or Spirals(), or a subclass that sets name, power, "
                            "sigma, nodes, bounds, entropy_value and curve")
        self.nodes = type(self).nodes if nodes is None else check_positive_int(nodes, "nodes")
        super().__init__(self.name, 2, self.bounds, self.entropy_value)
        xi, w = gauss_legendre(self.nodes)
        t, w = (xi + 1) / 2, w / 2
        c = self.curve(t)
        self.centres = torch.cat([c, -c])
        self.log_weights = torch.log(0.5 * w * (self.power + 1) * t**self.power).repeat(2)
        self.stds = torch.full((2 * self.nodes,), self.sigma, dtype=torch.float64)

    def _sample(self, n, generator):
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        sign = 1 - 2 * torch.randint(2, (n, 1), generator=generator, dtype=torch.float64)
        c = sign * self.curve(u ** (1 / (self.power + 1)))
        return c + self.sigma * torch.randn(n, 2, generator=generator, dtype=torch.float64)

    def _log_prob(self, x):
        return _mixture_log_prob(x, self.centres, self.stds, self.log_weights)


class Moons(TwoArms):
    """Two interleaving half circles (scikit-learn's make_moons, centred and scaled by 2):

    c(t) = (2 cos(pi t) - 1, 2 sin(pi t) - 1/2), t uniform on [0, 1]; the other moon is -c(t);
    noise sigma = 0.1. Entropy: a precomputed constant, see the registry below.
    """

    name, sigma, nodes, bounds = "moons", 0.1, 128, ((-4.0, 4.0), (-3.0, 3.0))
    entropy_value = 1.675528098676  # grid, see the registry

    @staticmethod
    def curve(t):
        return torch.stack([2 * torch.cos(math.pi * t) - 1, 2 * torch.sin(math.pi * t) - 0.5], -1)


class Spirals(TwoArms):
    """Two interleaved Archimedean spiral arms of 1.5 turns, blurred by noise sigma = 0.15:

    c(t) = r (cos theta, sin theta) with theta = 3 pi t and r = 3.5 t; t has density 2 t (so theta
    is distributed like the classic two-spirals data, 3 pi sqrt(u), and points are spread nearly
    evenly along the arm); the other arm is -c(t). Entropy: a precomputed constant, see the registry.
    """

    name, power, sigma, nodes, bounds = "spirals", 1, 0.15, 320, ((-4.5, 4.5), (-4.5, 4.5))
    entropy_value = 3.054545565316  # grid, see the registry

    @staticmethod
    def curve(t):
        theta = 3 * math.pi * t
        return 3.5 * t[..., None] * torch.stack([torch.cos(theta), torch.sin(theta)], -1)


def _w1(z):
    w = torch.sin(math.pi * z[:, 0] / 2)
    if torch.isnan(w).any():  # pi z1 / 2 overflowed (|z1| near the largest float): reduce z1 modulo 4 first
        w = torch.where(torch.isnan(w), torch.sin(math.pi / 2 * torch.remainder(z[:, 0], 4)), w)
    return w


def _w2(z):
    return 3 * torch.exp(-0.5 * ((z[:, 0] - 1) / 0.6) ** 2)


def _w3(z):
    return 3 * torch.sigmoid((z[:, 0] - 1) / 0.3)


def _u1(z):
    """U1 = ((|z| - 2) / 0.4)^2 / 2 - log(exp(-((z1 - 2) / 0.6)^2 / 2) + exp(-((z1 + 2) / 0.6)^2 / 2))."""
    ring = 0.5 * ((torch.linalg.vector_norm(z, dim=1) - 2) / 0.4) ** 2
    return ring - torch.logaddexp(-0.5 * ((z[:, 0] - 2) / 0.6) ** 2, -0.5 * ((z[:, 0] + 2) / 0.6) ** 2)


def _u2(z):
    """U2 = ((z2 - w1) / 0.4)^2 / 2."""
    return 0.5 * ((z[:, 1] - _w1(z)) / 0.4) ** 2


def _u3(z):
    """U3 = -log(exp(-((z2 - w1) / 0.35)^2 / 2) + exp(-((z2 - w1 + w2) / 0.35)^2 / 2))."""
    a = z[:, 1] - _w1(z)
    return -torch.logaddexp(-0.5 * (a / 0.35) ** 2, -0.5 * ((a + _w2(z)) / 0.35) ** 2)


def _u4(z):
    """U4 = -log(exp(-((z2 - w1) / 0.4)^2 / 2) + exp(-((z2 - w1 + w3) / 0.35)^2 / 2))."""
    a = z[:, 1] - _w1(z)
    return -torch.logaddexp(-0.5 * (a / 0.4) ** 2, -0.5 * ((a + _w3(z)) / 0.35) ** 2)


class Energy(Target):
    """An unnormalised density p(z) = exp(-U(z)) / Z of Rezende & Mohamed (2015), Table 1.

    ``log_prob(z)`` is -U(z), NOT normalised; ``log_normalizer()`` is log Z. U2, U3 and U4 do not decay
    in z1, so exp(-U) is not integrable over the plane: for them Z and the entropy refer to the box
    ``bounds`` = [-4, 4]^2 (the box of the paper's figures). U1 decays, and its Z is over the plane
    (its box integral is smaller by a factor 1 - 1e-8). ``entropy()`` is that of the normalised
    density over the same region. Both constants were precomputed by a product Gauss-Legendre rule
    (see the registry). ``sample`` is exact rejection sampling from the uniform law on the box, with
    the bound exp(-U) <= exp(log_max) that holds on the whole plane.
    """

    def __init__(self, name, energy, log_max, log_z, entropy):
        if not callable(energy):
            raise TypeError(f"energy must be a function U of points (batch, 2), got {type_name(energy)}")
        check_number(log_max, "log_max")
        check_number(log_z, "log_z")
        super().__init__(name, 2, ((-4.0, 4.0), (-4.0, 4.0)), entropy)
        self.energy, self.log_max, self._log_z = energy, log_max, log_z

    def _log_prob(self, x):
        return -self.energy(x)

    def log_normalizer(self):
        """log Z, Z = integral of exp(-U) over the plane (U1) or over the box [-4, 4]^2 (U2, U3, U4)."""
        return self._log_z

    def _sample(self, n, generator):
        accepted, count = [], 0
        while count < n:
            z = 8 * torch.rand(2**16, 2, generator=generator, dtype=torch.float64) - 4
            u = torch.rand(2**16, generator=generator, dtype=torch.float64)
            z = z[torch.log(u) < self._log_prob(z) - self.log_max]
            accepted.append(z)
            count += len(z)
        return torch.cat(accepted)[:n]


# The entropies of mixture1d, eight_gaussians, moons, rings and spirals and the constants of u1..u4
# were computed once, in float64, by a product Gauss-Legendre rule (20 panels of 64 nodes per axis)
# of p and -p log p over the bounds widened by 2 on each side (all but < 1e-12 of the mass; for u1:
# [-6, 6]^2, the plane up to exp(-50)) or, for u2, u3, u4, over their box [-4, 4]^2; 10 panels gave
# the same values to 1e-10. u1 over its box instead of the plane: log Z and entropy lower by 1e-8
# and 2e-7. Checks: u2 has log Z = log(8 * 0.4 sqrt(2 pi)) and entropy log Z + 1/2 up to 1e-12.
# log_max, the rejection bound, is the supremum of -U on the plane: U2 >= 0; U3, U4 >= -log 2 (two
# terms <= 1 each); U1 >= -log(1 + exp(-100/9)), as the two exponents of its sum add up to
# (z1^2 + 4) / 0.36 >= 100/9.
_CONSTRUCTORS = {
    "gaussian1d": lambda: Gaussian("gaussian1d", [1.0], [[0.25]], ((-1.5, 3.5),)),
    "mixture1d": lambda: IsotropicMixture(
        "mixture1d", [[-2.0], [1.5]], [0.5, 0.7], [0.35, 0.65], ((-5.0, 5.0),), entropy=1.586884577995
    ),
    # The covariance of the articles' code; their prose mistypes it as [[2, 7], [7, 1]], which is not
    # positive definite (its determinant is 2 - 49 < 0), so it is no covariance at all.
    "gaussian2d": lambda: Gaussian("gaussian2d", [5.0, 7.0], [[2.0, 0.7], [0.7, 1.0]], ((-2.0, 12.0), (2.0, 12.0))),
    "banana": Banana,
    "eight_gaussians": lambda: IsotropicMixture(
        "eight_gaussians",
        [[2.5 * math.cos(k * math.pi / 4), 2.5 * math.sin(k * math.pi / 4)] for k in range(8)],
        [0.3] * 8,
        [1 / 8] * 8,
        ((-4.0, 4.0), (-4.0, 4.0)),
        entropy=2.505267736141,
    ),
    "moons": Moons,
    # Weights proportional to the radius: the same density per unit length on every ring.
    "rings": lambda: Rings([1.0, 2.0, 3.0], [1 / 6, 2 / 6, 3 / 6], 0.12, ((-4.0, 4.0), (-4.0, 4.0)), 2.927138474296),
    "spirals": Spirals,
    "checkerboard": Checkerboard,
    "u1": lambda: Energy("u1", _u1, math.log1p(math.exp(-100 / 9)), log_z=1.877501626110, entropy=2.660012535936),
    "u2": lambda: Energy("u2", _u2, 0.0, log_z=2.082089343010, entropy=2.582089343010),
    "u3": lambda: Energy("u3", _u3, math.log(2), log_z=2.641705130859, entropy=2.626706569526),
    "u4": lambda: Energy("u4", _u4, math.log(2), log_z=2.684567670243, entropy=2.766181078296),
}


class Registry:
    """Named targets built on first use (``get`` returns the same object at every call), so that
    importing nflesson builds none of them; ``kind`` names them in error messages."""

    def __init__(self, kind, constructors):
        self.kind, self.constructors, self.built = kind, constructors, {}

    def names(self):
        return list(self.constructors)

    def get(self, name):
        if not isinstance(name, str):
            raise TypeError(f"the {self.kind}'s name must be a string, one of {', '.join(self.constructors)}; got "
                            f"{type_name(name)}")
        if name not in self.constructors:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.constructors)}")
        if name not in self.built:
            self.built[name] = self.constructors[name]()
        return self.built[name]


_REGISTRY = Registry("target", _CONSTRUCTORS)


def names():
    """All target names, in teaching order: 1D targets, 2D data sets, then the energies u1..u4."""
    return _REGISTRY.names()


def get(name):
    """The target called ``name`` (see ``names()``), the same object at every call; ValueError for an
    unknown name."""
    return _REGISTRY.get(name)
