"""Flows inside a variational autoencoder (lesson 11): amortized posteriors, the bounds on log p(x),
and the exact posterior of a 2-dimensional latent space on a grid.

The model: a prior p(z) = N(0, I), a decoder p(x | z) (here Bernoulli pixels: the decoder gives one
logit per pixel), and an encoder that maps x to a context h(x) read by a conditional nflesson
``Flow``, the approximate posterior q(z | x). For any q,

    log p(x) = ELBO(x) + KL(q(z | x) || p(z | x)),   ELBO(x) = E_q[log p(x, z) - log q(z | x)],

and with log-weights log w_k = log p(x, z_k) - log q(z_k | x) for z_1..z_K ~ q(z | x), the
importance-weighted bound (Burda et al., 2016)

    L_K(x) = E[log (1/K) sum_k w_k]

equals the ELBO at K = 1, increases with K and tends to log p(x) as K grows.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import flows
from .bijector import Bijector
from .checks import check_batch, check_bounds, check_int, check_positive_int, type_name
from .flow import Flow
from .planar_radial import solve_planar

_SOFTPLUS_INV_ONE = math.log(math.e - 1)  # softplus(_SOFTPLUS_INV_ONE) = 1


class AmortizedAffine(Bijector):
    """The encoder's Gaussian as the first layer of q(z | x): z = mu(c) + sigma(c) * eps, with
    (mu, log sigma) a linear function of the context c (the encoder's output h(x)) and
    log|det J| = sum_i log sigma_i(c). On the base eps ~ N(0, I) it gives q_0(z | x) =
    N(mu(c), diag sigma(c)^2), the usual VAE posterior. Starts as the identity (mu = 0, sigma = 1)."""

    noun = "AmortizedAffine layer"

    def __init__(self, dim=2, context=1):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.context_size = check_positive_int(context, "context")
        self.head = nn.Linear(self.context_size, 2 * self.dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def mean_and_log_scale(self, context):
        """(mu(c), log sigma(c)), each (batch, dim); log sigma is kept in [-10, 5]."""
        mu, log_scale = self.head(context).chunk(2, dim=1)
        return mu, log_scale.clamp(-10.0, 5.0)

    def _forward(self, z, context):
        mu, log_scale = self.mean_and_log_scale(context)
        return mu + z * log_scale.exp(), log_scale.sum(1)

    def _inverse(self, x, context):
        mu, log_scale = self.mean_and_log_scale(context)
        return (x - mu) * (-log_scale).exp(), -log_scale.sum(1)


class AmortizedPlanar(Bijector):
    """A planar layer whose parameters the encoder outputs (Rezende & Mohamed, 2015):
    x = z + u_hat(c) tanh(w(c).z + b(c)), log|det J| = log|1 + (w.u_hat) tanh'(w.z + b)|, with
    (w, u, b) a linear function of the context c and u_hat = u + (m(w.u) - w.u) w / |w|^2,
    m(a) = -1 + softplus(a + log(e - 1)), so that w.u_hat > -1 (invertible) for every context,
    as in ``nflesson.Planar``. The inverse solves a + (w.u_hat) tanh(a) = w.x + b by Newton's
    method, row by row. Starts close to the identity (u close to 0)."""

    noun = "AmortizedPlanar layer"

    def __init__(self, dim=2, context=1, max_iterations=100):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.context_size = check_positive_int(context, "context")
        self.max_iterations = check_positive_int(max_iterations, "max_iterations")
        self.head = nn.Linear(self.context_size, 2 * self.dim + 1)
        with torch.no_grad():
            self.head.weight.normal_(0, 0.01)
            self.head.bias.zero_()
            self.head.bias[:self.dim].normal_(0, 0.5)  # w: a random direction, u = 0: the identity

    def parameters_for(self, context):
        """(w, u_hat, b) for each row of the context: (batch, dim), (batch, dim), (batch,)."""
        out = self.head(context)
        w, u, b = out[:, :self.dim], out[:, self.dim:2 * self.dim], out[:, -1]
        wu = (w * u).sum(1, keepdim=True)
        m = F.softplus(wu + _SOFTPLUS_INV_ONE).clamp_min(1e-6) - 1
        u_hat = u + (m - wu) * w / (w * w).sum(1, keepdim=True).clamp_min(1e-12)
        return w, u_hat, b

    def _forward(self, z, context):
        w, u_hat, b = self.parameters_for(context)
        t = torch.tanh((w * z).sum(1) + b)
        return z + u_hat * t[:, None], torch.log1p((w * u_hat).sum(1) * (1 - t**2))

    def _inverse(self, x, context):
        w, u_hat, b = self.parameters_for(context)
        c = (w * u_hat).sum(1)
        y = (w * x).sum(1) + b
        with torch.no_grad():
            a = solve_planar(y, c, self.max_iterations)
        t0 = torch.tanh(a)  # one Newton step with gradients: exact at the root, implicit-function gradient
        t = torch.tanh(a - (a + c * t0 - y) / (1 + c * (1 - t0**2)))
        return x - u_hat * t[:, None], -torch.log1p(c * (1 - t**2))


def posterior(kind, context, layers=0, hidden=32, latent=2):
    """The approximate posterior q(z | x) as a conditional nflesson Flow reading the encoder's
    context of width ``context``: ``AmortizedAffine`` (the diagonal Gaussian), followed by
    ``layers`` ``AmortizedPlanar`` layers (``kind`` = "planar") or IAF layers conditioned on the
    context (``kind`` = "iaf", nflesson.flows.iaf with ``hidden`` units), or nothing more
    (``kind`` = "gaussian", layers = 0)."""
    if not isinstance(kind, str) or kind not in ("gaussian", "planar", "iaf"):
        raise ValueError(f"kind must be 'gaussian', 'planar' or 'iaf', got {kind!r}")
    context, latent = check_positive_int(context, "context"), check_positive_int(latent, "latent")
    layers = check_int(layers, "layers")
    if kind == "gaussian" and layers:
        raise ValueError(f"a Gaussian posterior has no flow layers: layers must be 0, got {layers}")
    if kind != "gaussian" and not layers:
        raise ValueError(f"a {kind} posterior needs layers >= 1, got 0")
    first = [AmortizedAffine(latent, context)]
    if kind == "planar":
        return Flow(first + [AmortizedPlanar(latent, context) for _ in range(layers)])
    if kind == "iaf":
        return Flow(first + list(flows.iaf(latent, layers, check_positive_int(hidden, "hidden"), context).layers))
    return Flow(first)


class VAE(nn.Module):
    """A VAE with prior N(0, I) in ``latent`` dimensions, Bernoulli pixels and a flow posterior.

    ``encoder``: a module x (batch, pixels) -> h(x) (batch, k); ``posterior``: a conditional
    nflesson Flow of dimension ``latent`` with context width k (``nflesson.vae.posterior``);
    ``decoder``: a module z (batch, latent) -> logits (batch, pixels) of p(x_i = 1 | z).
    """

    def __init__(self, encoder, posterior, decoder):
        super().__init__()
        for value, name in ((encoder, "encoder"), (decoder, "decoder")):
            if not isinstance(value, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type_name(value)}")
        if not isinstance(posterior, Flow) or not posterior.context_size:
            raise TypeError("posterior must be a conditional nflesson Flow (context width k > 0), e.g. "
                            f"nflesson.vae.posterior('iaf', context=k, layers=2), got {type_name(posterior)}")
        self.encoder, self.posterior, self.decoder = encoder, posterior, decoder
        self.latent = posterior.dim

    def _check_x(self, x):
        x = check_batch(x, None, "x", owner="VAE")
        if not ((x == 0) | (x == 1)).all():
            raise ValueError("x must hold binary pixels (0 or 1): binarise the images first, e.g. (x >= 8).float()")
        return x

    def log_likelihood(self, x, z):
        """log p(x | z) = sum_i [x_i log s(l_i) + (1 - x_i) log(1 - s(l_i))], l = decoder(z), for rows
        of x and z that match, or one x (a (pixels,) row) for every z; shape (batch,)."""
        logits = self.decoder(z)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def log_prior(self, z):
        """log N(z; 0, I), shape (batch,)."""
        return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)

    def log_joint(self, x, z):
        """log p(x, z) = log p(x | z) + log p(z), shape (batch,)."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def log_weights(self, x, samples=1):
        """log w = log p(x, z) - log q(z | x) for ``samples`` reparametrised z ~ q(z | x) per row of
        x, shape (samples, batch); differentiable (the training signal)."""
        x = self._check_x(x)
        samples = check_positive_int(samples, "samples")
        h = self.encoder(x)
        z, log_q = self.posterior.sample_and_log_prob(samples * len(x), context=h.repeat(samples, 1))
        return (self.log_joint(x.repeat(samples, 1), z) - log_q).reshape(samples, len(x))

    def elbo(self, x, samples=1):
        """A Monte Carlo estimate of ELBO(x) = E_q[log p(x, z) - log q(z | x)] from ``samples``
        draws per image, shape (batch,)."""
        return self.log_weights(x, samples).mean(0)

    def importance_weighted(self, x, samples=1000, chunk=20_000):
        """The importance-weighted estimate L_K of log p(x) with K = ``samples`` draws per image
        (``importance_weighted_bound`` of the log-weights), shape (batch,); no gradient. Images
        are scored a few at a time so that at most ``chunk`` draws are held at once."""
        x = self._check_x(x)
        samples, chunk = check_positive_int(samples, "samples"), check_positive_int(chunk, "chunk")
        step = max(1, chunk // samples)
        with torch.no_grad():
            return torch.cat([importance_weighted_bound(self.log_weights(x[i:i + step], samples))
                              for i in range(0, len(x), step)])


def importance_weighted_bound(log_weights):
    """log (1/K) sum_k w_k from log-weights of shape (K, batch) (K draws per column), computed
    stably as logsumexp - log K; shape (batch,). K = 1 gives the log-weight itself (the ELBO's
    one-sample estimate); on average it increases with K towards log p(x)."""
    if not isinstance(log_weights, torch.Tensor) or not log_weights.is_floating_point():
        raise TypeError(f"log_weights must be a floating tensor of shape (samples, batch), got "
                        f"{type_name(log_weights)}")
    if log_weights.dim() != 2 or log_weights.shape[0] == 0:
        raise ValueError(f"log_weights must have shape (samples, batch) with samples >= 1, got shape "
                         f"{tuple(log_weights.shape)}")
    return torch.logsumexp(log_weights, 0) - math.log(log_weights.shape[0])


class GridPosterior(NamedTuple):
    """A posterior on a regular grid of cell centres: ``axes`` (two 1D tensors), ``points``
    (size * size, 2, the first coordinate varying slowest), ``log_density`` (log p(z | x) at the
    points, normalised so that sum exp(log_density) * cell_area = 1), ``log_evidence`` (log p(x)
    = log of the integral of p(x, z) over the grid), ``cell_area``."""
    axes: tuple
    points: torch.Tensor
    log_density: torch.Tensor
    log_evidence: float
    cell_area: float

    @property
    def bounds(self):
        """((x0, x1), (y0, y1)), the grid's box (cell edges)."""
        return tuple((float(a[0]) - self._half(a), float(a[-1]) + self._half(a)) for a in self.axes)

    @staticmethod
    def _half(axis):
        return float(axis[1] - axis[0]) / 2

    def image(self):
        """The density as a (size, size) array for imshow(image.T, origin="lower", extent=...)."""
        return self.log_density.exp().reshape(len(self.axes[0]), len(self.axes[1]))


def _centres(bounds, size, dtype):
    return tuple(lo + (hi - lo) * (torch.arange(size, dtype=dtype) + 0.5) / size for lo, hi in bounds)


def grid_posterior(log_joint, bounds=((-4.0, 4.0), (-4.0, 4.0)), size=200, zoom=True, dtype=torch.float32):
    """The exact posterior of a 2-dimensional latent, p(z | x) = p(x, z) / p(x), by quadrature.

    ``log_joint`` maps points (n, 2) to log p(x, z), shape (n,) (e.g. ``lambda z: vae.log_joint(x, z)``).
    It is evaluated at the centres of size x size cells covering ``bounds``; the midpoint rule
    gives p(x) = sum_cells p(x, z_c) * cell_area and log p(z | x) = log p(x, z) - log p(x).
    With ``zoom`` (default), a second grid of the same size covers only the box where the first
    one found the posterior above e^-25 of its peak (padded by two cells), so that a narrow
    posterior gets fine cells. Returns a ``GridPosterior``. Mass outside ``bounds`` is missed:
    choose them wide enough (the prior N(0, I) has 1 - 2e-6 of its mass inside [-5, 5]^2)."""
    if not callable(log_joint):
        raise TypeError(f"log_joint must be a function of points (n, 2), got {type_name(log_joint)}")
    bounds = check_bounds(bounds, 2)
    size = check_int(size, "size", low=4)
    if not isinstance(zoom, bool):
        raise TypeError(f"zoom must be True or False, got {type_name(zoom)}")
    result = _grid(log_joint, bounds, size, dtype)
    if zoom:
        keep = (result.log_density >= result.log_density.max() - 25).reshape(size, size)
        box = []
        for axis, rows, (lo, hi) in zip(result.axes, (keep.any(1), keep.any(0)), bounds):
            where = rows.nonzero().flatten()
            half = (hi - lo) / size / 2
            first, last = max(int(where[0]) - 2, 0), min(int(where[-1]) + 2, size - 1)
            box.append((float(axis[first]) - half, float(axis[last]) + half))
        result = _grid(log_joint, tuple(box), size, dtype)
    return result


def _grid(log_joint, bounds, size, dtype):
    axes = _centres(bounds, size, dtype)
    points = torch.cartesian_prod(*axes)
    with torch.no_grad():
        log_p = log_joint(points)
    if not isinstance(log_p, torch.Tensor) or log_p.shape != (len(points),):
        raise ValueError(f"log_joint must return one number per point, shape ({len(points)},), got "
                         f"{type_name(log_p) if not isinstance(log_p, torch.Tensor) else tuple(log_p.shape)}")
    log_p = log_p.double()
    area = math.prod((hi - lo) / size for lo, hi in bounds)
    log_evidence = torch.logsumexp(log_p, 0).item() + math.log(area)
    return GridPosterior(axes, points, (log_p - log_evidence).to(dtype), log_evidence, area)


class QuadratureKL(NamedTuple):
    """KL(q || p) in nats by quadrature on a grid, and ``mass``, the share of q on the grid (close
    to 1 when the grid holds q; the KL misses what lies outside)."""
    nats: float
    mass: float


def kl_on_grid(log_q, grid):
    """KL(q || p) = integral of q(z) [log q(z) - log p(z)] dz by the midpoint rule on the grid of
    ``grid`` (a ``GridPosterior`` holding log p(z | x)), where ``log_q`` maps points (n, 2) to
    log q(z), shape (n,) (e.g. ``lambda z: vae.posterior.log_prob(z, context=h)``). Cells where q
    underflows to 0 add nothing (q log q -> 0). Returns ``QuadratureKL(nats, mass)``."""
    if not callable(log_q):
        raise TypeError(f"log_q must be a function of points (n, 2), got {type_name(log_q)}")
    if not isinstance(grid, GridPosterior):
        raise TypeError(f"grid must be a GridPosterior (from grid_posterior), got {type_name(grid)}")
    with torch.no_grad():
        log_q_values = log_q(grid.points)
    if not isinstance(log_q_values, torch.Tensor) or log_q_values.shape != grid.log_density.shape:
        raise ValueError(f"log_q must return one number per point, shape {tuple(grid.log_density.shape)}")
    log_q_values = log_q_values.double()
    q = log_q_values.exp()
    terms = torch.where(q > 0, q * (log_q_values - grid.log_density.double()), torch.zeros_like(q))
    return QuadratureKL(terms.sum().item() * grid.cell_area, q.sum().item() * grid.cell_area)
