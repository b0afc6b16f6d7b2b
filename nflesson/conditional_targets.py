"""Conditional targets for lesson 10: pairs (x, c) with an exact conditional density p(x | c).

A conditional target draws a context c from p(c) and then x from p(x | c). It knows log p(x | c)
exactly and the conditional entropy H(X | C), so that a conditional flow's gap

    E_c KL(p(. | c) || q(. | c)) = E[log p(x | c) - log q(x | c)] = E[-log q(x | c)] - H(X | C)

is known to the last digit. Every conditional target has ``name``, ``dim`` (2 here), ``context_size``
(k, the width of a context), ``bounds`` (a plotting box of x, ``dim`` (low, high) pairs),
``context_bounds`` (k (low, high) pairs: the range of the contexts it draws), ``snapshot_contexts``
(an (m, k) tensor of 3 to 5 typical contexts for pictures, sorted, spanning that range) and

- ``sample(n, generator=None)``: a pair (x (n, dim), c (n, k)) drawn from p(c) p(x | c);
- ``sample_contexts(n, generator=None)``: contexts c (n, k) drawn from p(c);
- ``sample_given(context, generator=None)``: one x drawn from p(x | c) per row of ``context``;
- ``log_prob(x, context)``: log p(x | c) at the rows of x, shape (batch,), in x's dtype;
- ``entropy_given(context)``: H(X | C = c) for each row of ``context``, a float64 tensor (batch,);
- ``conditional_entropy()``: H(X | C) = E_c H(X | C = c), a float.

Samples (points and contexts) are CPU tensors of ``torch.get_default_dtype()``; the same seed of
the optional ``torch.Generator`` gives the same samples. Constants and computations are float64
inside. A context is a floating tensor (batch, k), one row per point, or (k,), one context for
every point; contexts with NaN or inf are refused, and so are contexts that mean nothing to the
target (a radius <= 0, a class context that is not one-hot). Points follow nflesson.targets: NaN
in a row gives NaN, an infinite coordinate (and no NaN) gives -inf, 0 rows give shape (0,).

The three targets (``get(name)``, ``conditional_names()``; nflesson.data.get finds them too):

- ``"ring_by_radius"``: a ring whose radius is the context, c ~ U[1, 3];
- ``"rotated_moons"``: the course's moons rotated by the context, an angle c ~ U[0, pi];
- ``"gaussians_by_class"``: eight Gaussians, the context a one-hot class label (k = 8);
- ``"sum_and_product"``: a simulator for amortized inference: the points are two parameters
  theta, the context an observation x = (theta_1 + theta_2, theta_1 theta_2) + noise, and
  p(theta | x) is the exact posterior (``SumAndProduct``; also ``prior`` and ``simulate``).
"""

import math

import torch

from .checks import (check_batch, check_bounds, check_finite_rows, check_generator, check_number, check_positive_int,
                     type_name)
from .targets import LOG_2PI, Moons, Registry, gauss_legendre


def _f64(values):
    return torch.as_tensor(values, dtype=torch.float64)


class ConditionalTarget:
    """Base class: subclasses draw float64 contexts in ``_sample_contexts`` and points in
    ``_sample_given``, score in ``_log_prob`` and give H(X | C = c) in ``_entropy_given`` (all on
    checked float64 contexts), and may refuse context values in ``_check_context_values``."""

    def __init__(self, name, dim, context_size, bounds, context_bounds, snapshot_contexts):
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type_name(name)} {name!r}")
        self.name = name
        self.dim = check_positive_int(dim, "dim")
        self.context_size = check_positive_int(context_size, "context_size")
        self.bounds = check_bounds(bounds, dim)
        self.context_bounds = check_bounds(context_bounds, context_size, "context_bounds")
        snapshots = _f64(snapshot_contexts)
        self._snapshots = self._checked_context(snapshots, "snapshot_contexts", single=False)

    @property
    def snapshot_contexts(self):
        """3 to 5 typical contexts for pictures, an (m, k) tensor of the default dtype (a fresh copy)."""
        return self._snapshots.to(torch.get_default_dtype(), copy=True)

    # --- checks -------------------------------------------------------------------------------

    def _checked_context(self, context, what="context", single=True):
        """``context`` as a float64 (batch, k) tensor (a (k,) context as one row when ``single``),
        else TypeError or ValueError in words; the values are checked by ``_check_context_values``."""
        k, owner = self.context_size, f"conditional target ({self.name})"
        shapes = f"(batch, {k}) or ({k},)" if single else f"(batch, {k})"
        if context is None:
            raise ValueError(f"the {owner} needs a context: pass {what}, a tensor of shape {shapes} (draw some "
                             f"with sample_contexts(n); typical ones are in snapshot_contexts)")
        if not isinstance(context, torch.Tensor):
            raise TypeError(f"{what} must be a torch.Tensor of shape {shapes}, got {type_name(context)}; "
                            "torch.as_tensor(values, dtype=torch.float32) makes one")
        if not context.is_floating_point():
            hint = f" (one-hot labels: torch.nn.functional.one_hot(labels, {k}).float())" if k > 1 else ""
            raise TypeError(f"{what} must have a floating dtype (float32 or float64), got {context.dtype}; use "
                            f"{what}.float(){hint}")
        if context.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{what} must be float32 or float64, got {context.dtype}; use .float() or .double()")
        if single and context.dim() == 1:
            if len(context) != k:
                hint = f"; for a batch of {len(context)} scalar contexts use {what}.reshape(-1, 1)" if k == 1 else ""
                raise ValueError(f"{what} of shape ({len(context)},) is one context of width {len(context)}, but the "
                                 f"{owner} has contexts of width k = {k}{hint}")
            context = context[None]
        elif context.dim() == 2 and context.shape[1] != k:
            raise ValueError(f"{what} has {context.shape[1]} columns but the {owner} has contexts of width k = {k}")
        check_batch(context, k, what, owner=owner)
        context = context.detach().to("cpu", torch.float64)
        check_finite_rows(context, what)
        self._check_context_values(context, what)
        return context

    def _check_context_values(self, context, what):
        """Raise ValueError if a row of the float64 (batch, k) ``context`` means nothing to this target."""

    def _checked_pair(self, x, context):
        """``x`` checked as points (batch, dim) and ``context`` as a float64 (batch, k) tensor on x's device."""
        check_batch(x, self.dim, "x", owner=f"conditional target ({self.name})")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64, got {x.dtype}; use x.float() or x.double()")
        single = context is not None and isinstance(context, torch.Tensor) and context.dim() == 1
        context = self._checked_context(context)
        if single:
            context = context.expand(len(x), -1)
        elif len(context) != len(x):
            raise ValueError(f"context has {len(context)} rows for {len(x)} points: give one context per row of x, "
                             f"or one context of shape ({self.context_size},) for every row")
        return x, context.to(x.device)

    # --- public methods -----------------------------------------------------------------------

    def sample(self, n, generator=None):
        """``n`` pairs (x, c) from p(c) p(x | c): x (n, dim) and c (n, k), CPU tensors of
        ``torch.get_default_dtype()``; ``generator`` is None or a CPU ``torch.Generator``."""
        check_positive_int(n, "n")
        check_generator(generator)
        context = self._sample_contexts(n, generator)
        x = self._sample_given(context, generator)
        dtype = torch.get_default_dtype()
        return x.to(dtype), context.to(dtype)

    def sample_contexts(self, n, generator=None):
        """``n`` contexts drawn from p(c), a CPU tensor (n, k) of ``torch.get_default_dtype()``."""
        check_positive_int(n, "n")
        check_generator(generator)
        return self._sample_contexts(n, generator).to(torch.get_default_dtype())

    def sample_given(self, context=None, generator=None):
        """One x from p(x | c) per row of ``context`` (batch, k) (a (k,) context: one x), a CPU
        tensor (batch, dim) of ``torch.get_default_dtype()``; 0 rows give (0, dim). To draw n
        points for one context c, pass ``c.expand(n, -1)``."""
        context = self._checked_context(context)
        check_generator(generator)
        if len(context) == 0:
            return torch.zeros(0, self.dim, dtype=torch.get_default_dtype())
        return self._sample_given(context, generator).to(torch.get_default_dtype())

    def log_prob(self, x, context=None):
        """log p(x | c) at the rows of ``x`` (batch, dim) for the rows of ``context`` (batch, k) or
        for one context (k,); shape (batch,), dtype of ``x`` (float32 or float64), computed in
        float64. NaN in a row of x gives NaN; an infinite coordinate (and no NaN) gives -inf."""
        x, context = self._checked_pair(x, context)
        if len(x) == 0:
            return x.new_zeros(0)
        x64 = x.to(torch.float64)
        finite = torch.isfinite(x64).all(1)
        log_p = self._log_prob(torch.where(finite[:, None], x64, 0.0), context)
        if not finite.all():  # NaN in, NaN out; a point at infinity has density 0
            at_infinity = torch.full_like(log_p, -math.inf).masked_fill(torch.isnan(x64).any(1), math.nan)
            log_p = torch.where(finite, log_p, at_infinity)
        return log_p.to(x.dtype)

    def entropy_given(self, context=None):
        """H(X | C = c) in nats for each row of ``context`` (batch, k) (or one context (k,)): a
        float64 tensor (batch,). See the class docstring for how it is obtained."""
        context = self._checked_context(context)
        if len(context) == 0:
            return torch.zeros(0, dtype=torch.float64)
        return self._entropy_given(context)

    def conditional_entropy(self):
        """H(X | C) = E_c H(X | C = c) in nats, over the contexts p(c) draws (see the class docstring)."""
        return self._conditional_entropy

    def log_normalizer(self):
        """log of the integral of exp(log_prob(., c)) for every c: 0.0, the densities are normalised."""
        return 0.0

    def _sample_contexts(self, n, generator):
        raise NotImplementedError(f"{type(self).__name__} is a base class: subclasses draw contexts")

    def _sample_given(self, context, generator):
        raise NotImplementedError(f"{type(self).__name__} is a base class: subclasses draw points")

    def _log_prob(self, x, context):
        raise NotImplementedError(f"{type(self).__name__} is a base class: subclasses score points")

    def _entropy_given(self, context):
        raise NotImplementedError(f"{type(self).__name__} is a base class: subclasses give entropies")

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}, dim={self.dim}, context_size={self.context_size}>"


def _graded_rule(panels=24, levels=20, ratio=0.15, nodes=16):
    """Nodes and weights (float64) of a composite Gauss-Legendre rule on [0, 1]: ``panels`` equal
    panels, the first of them cut geometrically towards 0 into ``levels`` more (each ``ratio`` times
    the next), ``nodes`` nodes each. Exponentially accurate for smooth integrands, and for those with
    a log singularity at 0 (the grading resolves it: an hp rule)."""
    h = 1 / panels
    edges = [0.0] + [h * ratio**j for j in range(levels, 0, -1)] + [h * j for j in range(1, panels + 1)]
    edges = _f64(edges)
    xi, w = gauss_legendre(nodes)
    left, width = edges[:-1, None], (edges[1:] - edges[:-1])[:, None]
    return (left + width * (xi + 1) / 2).flatten(), (width * w / 2).flatten()


class RingByRadius(ConditionalTarget):
    """A ring whose radius is the context: c ~ U[1, 3] (k = 1), x = r (cos a, sin a) with a ~ U[0, 2 pi)
    and r ~ N(c, sigma^2), sigma = 0.1, truncated to r > 0 (drawn by rejection, exactly).

    Density (exact, polar coordinates): p(x | c) = p_r(|x|) / (2 pi |x|) with
    p_r(r) = phi((r - c) / sigma) / (sigma Phi(c / sigma)) for r > 0 (log Phi by torch.special.log_ndtr).
    At x = 0 this is the limit, +inf (p_r(0) > 0, although below exp(-48) for c >= 1).
    Contexts: any radius c > 0 is scored exactly (contexts beyond [1, 3] serve to study
    extrapolation); c <= 0 is refused.

    Entropy given c: H(X | C = c) = H(r) + log(2 pi) + E[log r] (the polar change of variables has
    Jacobian r). With u = (r - c) / sigma, truncated to u > -c / sigma:
    H(r) = log sigma + log(2 pi) / 2 + log Phi(c / sigma) + E[u^2] / 2, and E[u^2], E[log r] are
    integrals over u in [max(-c / sigma, -12), 12] (the rest of the mass is below 1e-32), by a
    composite Gauss-Legendre rule of 704 nodes graded towards the lower end, where log r is singular
    when c < 12 sigma (log r = log c + log1p(sigma u / c) otherwise, accurate for any c). A test
    checks it against an independent midpoint rule in s = sqrt(r) of 10^6 points (they agree to
    1e-15 for c in [1, 3], to 1e-11 for c = 0.05, where the midpoint rule is the less accurate)
    and against a Monte Carlo estimate.
    H(X | C) = (1/2) int_1^3 H(X | C = c) dc by 48-point Gauss-Legendre in c (the integrand is
    smooth, about 0.5 log(2 pi e sigma^2) + log(2 pi) + log c; 24 and 96 points agree to 1e-15):
    H(X | C) = 1.600469977008 nats.
    """

    sigma, span, c_low, c_high = 0.1, 12.0, 1.0, 3.0

    def __init__(self, c_nodes=48):
        super().__init__("ring_by_radius", 2, 1, ((-4.0, 4.0), (-4.0, 4.0)), ((self.c_low, self.c_high),),
                         [[1.0], [1.5], [2.0], [2.5], [3.0]])
        self._t, self._w = _graded_rule()
        self._conditional_entropy = self._average_entropy(c_nodes)

    def _average_entropy(self, c_nodes):
        xi, w = gauss_legendre(c_nodes)
        c = self.c_low + (self.c_high - self.c_low) * (xi + 1) / 2
        return (w / 2 * self._entropy_given(c[:, None])).sum().item()

    def _check_context_values(self, context, what):
        bad = (context[:, 0] <= 0).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"{what} is the radius of the ring and must be > 0 (the target draws radii in "
                             f"[{self.c_low:g}, {self.c_high:g}]); got {context[bad[0], 0].item()!r} in row {bad[0]}")

    def _sample_contexts(self, n, generator):
        u = torch.rand(n, 1, generator=generator, dtype=torch.float64)
        return self.c_low + (self.c_high - self.c_low) * u

    def _sample_given(self, context, generator):
        c = context[:, 0]
        r = c + self.sigma * torch.randn(len(c), generator=generator, dtype=torch.float64)
        rejected = r <= 0
        while rejected.any():  # r > 0 only: draw again where r <= 0 (rare unless c < 3 sigma)
            index = rejected.nonzero().flatten()
            r[index] = c[index] + self.sigma * torch.randn(len(index), generator=generator, dtype=torch.float64)
            rejected = r <= 0
        angle = 2 * math.pi * torch.rand(len(c), generator=generator, dtype=torch.float64)
        return r[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)

    def _log_r_density(self, r, c):
        """log p_r(r) for r > 0 (float64)."""
        u = (r - c) / self.sigma
        return -0.5 * u**2 - 0.5 * LOG_2PI - math.log(self.sigma) - torch.special.log_ndtr(c / self.sigma)

    def _log_prob(self, x, context):
        r = torch.linalg.vector_norm(x, dim=1)
        c = context[:, 0]
        return self._log_r_density(r, c) - LOG_2PI - torch.log(r)

    def _entropy_given(self, context):
        parts = []
        for c in context[:, 0].split(2048):
            a = (c / self.sigma)[:, None]
            truncated = a < self.span  # the lower end of u is -c / sigma, where r = 0 and log r is singular
            lower = torch.where(truncated, -a, -self.span)
            u = lower + (self.span - lower) * self._t
            weight = (self.span - lower) * self._w
            r_near_zero = (c[:, None] + self.sigma * self.span) * self._t  # r on [0, c + 12 sigma], exactly > 0
            u = torch.where(truncated, (r_near_zero - c[:, None]) / self.sigma, u)
            log_r = torch.where(truncated, torch.log(r_near_zero),
                                torch.log(c[:, None]) + torch.log1p(self.sigma * u / c[:, None]))
            log_z = torch.special.log_ndtr(a[:, 0])
            p = torch.exp(-0.5 * u**2 - 0.5 * LOG_2PI - log_z[:, None]) * weight
            mean_u2, mean_log_r = (p * u**2).sum(1), (p * log_r).sum(1)
            h_r = math.log(self.sigma) + 0.5 * LOG_2PI + log_z + 0.5 * mean_u2
            parts.append(h_r + LOG_2PI + mean_log_r)
        return torch.cat(parts)


class RotatedMoons(ConditionalTarget):
    """The course's moons (nflesson.targets, "moons") rotated by the context, an angle c ~ U[0, pi]
    (k = 1): x = R(c) m with m ~ moons and R(c) the rotation by c.

    Density (exact; a rotation has Jacobian 1): log p(x | c) = log p_moons(R(-c) x), the moons'
    own density (a Gauss-Legendre mixture that integrates to 1, see nflesson.targets.TwoArms).
    Any finite angle is a valid context (rotations are 2 pi periodic).
    Entropy (exact, rotations keep volume): H(X | C = c) = H(moons) for every c, so
    H(X | C) = H(moons) = 1.675528098676 (the moons' grid value, see nflesson.targets).
    """

    def __init__(self):
        super().__init__("rotated_moons", 2, 1, ((-4.0, 4.0), (-4.0, 4.0)), ((0.0, math.pi),),
                         [[0.0], [math.pi / 4], [math.pi / 2], [3 * math.pi / 4], [math.pi]])
        self.moons = Moons()
        self._conditional_entropy = self.moons.entropy()

    def _sample_contexts(self, n, generator):
        return math.pi * torch.rand(n, 1, generator=generator, dtype=torch.float64)

    def _sample_given(self, context, generator):
        m = self.moons._sample(len(context), generator)
        cos, sin = torch.cos(context[:, 0]), torch.sin(context[:, 0])
        return torch.stack([cos * m[:, 0] - sin * m[:, 1], sin * m[:, 0] + cos * m[:, 1]], 1)

    def _log_prob(self, x, context):
        cos, sin = torch.cos(context[:, 0]), torch.sin(context[:, 0])
        m = torch.stack([cos * x[:, 0] + sin * x[:, 1], -sin * x[:, 0] + cos * x[:, 1]], 1)
        log_p = self.moons._log_prob(m)
        return log_p.masked_fill(~torch.isfinite(m).all(1), -math.inf)  # the rotation overflowed: density 0

    def _entropy_given(self, context):
        return torch.full((len(context),), self._conditional_entropy, dtype=torch.float64)


class GaussiansByClass(ConditionalTarget):
    """Eight Gaussians, one per class: a label y in {0, ..., 7}, uniform, given as a one-hot context
    (k = 8); x ~ N(mu_y, sigma^2 I) with sigma = 0.5 and mu_y = 4 (cos(y pi / 4), sin(y pi / 4)).

    Density (exact): log p(x | c) = -|x - mu_y|^2 / (2 sigma^2) - log(2 pi sigma^2), y the label of c.
    A context that is not one-hot (every entry 0 or 1, exactly one 1) is refused with a ValueError.
    Entropy (exact): H(X | C = c) = log(2 pi e sigma^2) = 1 + log(2 pi) + log 0.25 for every class,
    so H(X | C) = log(2 pi e 0.25) = 1.451582705289 nats.
    ``one_hot(labels)`` makes contexts of labels, ``labels(context)`` the labels of contexts.
    """

    classes, radius, sigma = 8, 4.0, 0.5

    def __init__(self):
        k = self.classes
        self.means = _f64([[self.radius * math.cos(y * math.pi / 4), self.radius * math.sin(y * math.pi / 4)]
                           for y in range(k)])
        super().__init__("gaussians_by_class", 2, k, ((-6.5, 6.5), (-6.5, 6.5)), ((0.0, 1.0),) * k,
                         torch.eye(k, dtype=torch.float64)[[0, 2, 4, 6]])
        self._conditional_entropy = 1 + LOG_2PI + 2 * math.log(self.sigma)

    def _check_context_values(self, context, what):
        binary = (context == 0) | (context == 1)
        bad = (~binary.all(1) | (context.sum(1) != 1)).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"{what} must be one-hot (every entry 0 or 1, exactly one 1: the class label y as "
                             f"torch.nn.functional.one_hot(y, {self.classes}).float()), got {context[bad[0]].tolist()} "
                             f"in row {bad[0]} ({len(bad)} rows are not one-hot)")

    def one_hot(self, labels):
        """The contexts of class ``labels`` (a sequence or an integer tensor of labels in 0..7): a
        tensor (n, 8) of the default dtype."""
        if isinstance(labels, torch.Tensor):
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise TypeError(f"labels must be integers in 0..{self.classes - 1}, got a tensor of {labels.dtype}")
        else:
            try:
                labels = torch.as_tensor(labels)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError(f"labels must be a sequence of integers in 0..{self.classes - 1}, got "
                                f"{type_name(labels)} {labels!r}") from None
            if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
                raise TypeError(f"labels must be integers in 0..{self.classes - 1}, got {labels.tolist()!r}")
        labels = labels.reshape(-1).cpu()
        if ((labels < 0) | (labels >= self.classes)).any():
            raise ValueError(f"labels must be in 0..{self.classes - 1}, got {labels.tolist()}")
        return torch.eye(self.classes, dtype=torch.get_default_dtype())[labels.long()]

    def labels(self, context):
        """The class labels (int64, (batch,)) of one-hot contexts (batch, 8) or of one context (8,)."""
        return self._checked_context(context).argmax(1)

    def _sample_contexts(self, n, generator):
        y = torch.randint(self.classes, (n,), generator=generator)
        return torch.eye(self.classes, dtype=torch.float64)[y]

    def _sample_given(self, context, generator):
        eps = torch.randn(len(context), 2, generator=generator, dtype=torch.float64)
        return self.means[context.argmax(1)] + self.sigma * eps

    def _log_prob(self, x, context):
        mean = self.means.to(x.device)[context.argmax(1)]
        return -0.5 * ((x - mean) ** 2).sum(1) / self.sigma**2 - LOG_2PI - 2 * math.log(self.sigma)

    def _entropy_given(self, context):
        return torch.full((len(context),), self._conditional_entropy, dtype=torch.float64)


# --- amortized inference: a simulator with an exact posterior ------------------------------------

def _log1mexp(d):
    """log(1 - exp(d)) for d <= 0 (float64), accurate on both sides of d = -log 2."""
    return torch.where(d > -math.log(2), torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))


def _log_ndtr_difference(low, high):
    """log(Phi(high) - Phi(low)) for low < high (float64) without cancellation: where low > 0 it
    is computed as log(Phi(-low) - Phi(-high)), from the lower tail, where log_ndtr is accurate."""
    upper = low > 0
    low, high = torch.where(upper, -high, low), torch.where(upper, -low, high)
    log_high = torch.special.log_ndtr(high)
    return log_high + _log1mexp(torch.special.log_ndtr(low) - log_high)


def _ndtri_of_log(log_p):
    """The z with log Phi(z) = log_p (float64, log_p < 0): ndtri(exp(log_p)) where exp(log_p) is a
    normal float, and Newton's method on log_ndtr from z = -sqrt(-2 log_p) beyond (log_p < -600,
    z < -34), where exp(log_p) would underflow; log Phi is concave, so Newton's steps from there
    rise monotonically to the root."""
    tail = log_p < -600
    z = torch.special.ndtri(torch.exp(log_p))
    if tail.any():
        goal = log_p[tail]
        z_tail = -torch.sqrt(-2 * goal)
        for _ in range(10):
            log_cdf = torch.special.log_ndtr(z_tail)
            z_tail = z_tail - (log_cdf - goal) * torch.exp(log_cdf + 0.5 * z_tail**2 + 0.5 * LOG_2PI)
        z = z.masked_scatter(tail, z_tail)
    return z


def _truncated_normal(mean, precision_sqrt, low, high, u):
    """mean + z / precision_sqrt with z a standard normal truncated to [(low - mean) precision_sqrt,
    (high - mean) precision_sqrt], by the inverse CDF at u in (0, 1) (float64 tensors that
    broadcast). Computed from the lower tail (the interval is reflected when it lies above 0), in
    log space (``_ndtri_of_log``), so that it stays exact however far the interval is from the mean."""
    lower, upper = (low - mean) * precision_sqrt, (high - mean) * precision_sqrt
    flip = lower > 0
    lower, upper = torch.where(flip, -upper, lower), torch.where(flip, -lower, upper)
    log_p = torch.logaddexp(torch.special.log_ndtr(lower) + torch.log1p(-u),
                            torch.special.log_ndtr(upper) + torch.log(u))
    z = torch.minimum(torch.maximum(_ndtri_of_log(log_p), lower), upper)
    return mean + torch.where(flip, -z, z) / precision_sqrt


def _truncated_normal_entropy(precision, lower, upper, log_mass):
    """Entropy of N(m, 1 / precision) truncated to standardised bounds [lower, upper] of mass
    exp(log_mass): log(sqrt(2 pi e / precision) Z) + (lower phi(lower) - upper phi(upper)) / (2 Z)."""
    def term(z):  # z phi(z) / Z, 0 at an infinite bound
        return torch.where(torch.isfinite(z), z * torch.exp(-0.5 * z**2 - 0.5 * LOG_2PI - log_mass), 0.0)
    return 0.5 * (LOG_2PI + 1 - torch.log(precision)) + log_mass + 0.5 * (term(lower) - term(upper))


def _edge_graded_rule(low, high, panels=64, nodes=12, levels=16, ratio=0.3):
    """Nodes (ascending) and weights (float64) of a composite Gauss-Legendre rule on [low, high]:
    ``panels`` equal panels, the first and the last cut geometrically towards their end point into
    ``levels`` more (each ``ratio`` times the next), ``nodes`` nodes each: exponentially accurate
    for smooth integrands, also for those that fall steeply from an end point (the grading)."""
    h = (high - low) / panels
    near = [h * ratio**j for j in range(levels, 0, -1)]
    edges = _f64([low] + [low + d for d in near] + [low + h * j for j in range(1, panels)]
                 + [high - d for d in reversed(near)] + [high])
    xi, w = gauss_legendre(nodes)
    xi, w = xi.flip(0), w.flip(0)
    left, width = edges[:-1, None], (edges[1:] - edges[:-1])[:, None]
    return (left + width * (xi + 1) / 2).flatten(), (width * w / 2).flatten()


def _sample_shape(sample_shape):
    """``sample_shape`` (an int, or a sequence of ints >= 0, as torch.Size takes) as a torch.Size."""
    if isinstance(sample_shape, bool):
        raise TypeError("sample_shape must be a tuple of integers >= 0, e.g. (1000,), got a bool")
    if isinstance(sample_shape, int):
        sample_shape = (sample_shape,)
    if isinstance(sample_shape, (str, bytes)) or not hasattr(sample_shape, "__iter__"):
        raise TypeError(f"sample_shape must be a tuple of integers >= 0, e.g. (1000,), got {type_name(sample_shape)} "
                        f"{sample_shape!r}")
    sizes = list(sample_shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in sizes):
        raise TypeError(f"sample_shape must be a tuple of integers >= 0, e.g. (1000,), got {sample_shape!r}")
    if any(n < 0 for n in sizes):
        raise ValueError(f"sample_shape must hold integers >= 0, got {tuple(sizes)!r}")
    return torch.Size(sizes)


class BoxedNormal(torch.distributions.Distribution):
    """``dim`` independent N(0, scale^2) coordinates truncated to the box [-bound, bound]^dim, a
    ``torch.distributions.Distribution`` with event_shape (dim,): the prior of ``sum_and_product``
    (dim = 2, scale = 1, bound = 3, where the truncation removes 0.27% of each coordinate's mass).

    ``sample(sample_shape=(), generator=None)``: exact draws (the inverse CDF of each truncated
    coordinate), a CPU tensor sample_shape + (dim,) of ``torch.get_default_dtype()`` (an int n
    is the shape (n,)); ``log_prob(value)``: (...,) for value (..., dim), in value's dtype, -inf
    outside the box (and at infinity), NaN where a coordinate is NaN; ``entropy()``, ``mean``,
    ``variance``, ``support`` and ``bound``, ``scale``."""

    arg_constraints = {}
    has_rsample = False

    def __init__(self, dim=2, scale=1.0, bound=3.0):
        dim = check_positive_int(dim, "dim")
        scale = check_number(scale, "scale", low=0, low_open=True)
        bound = check_number(bound, "bound", low=0, low_open=True)
        self.scale, self.bound, self._dim = scale, bound, dim
        a = bound / scale
        self._log_mass = math.log(math.erf(a / math.sqrt(2)))  # log(Phi(a) - Phi(-a)), one coordinate
        self._phi_ratio = math.exp(-0.5 * a * a - 0.5 * LOG_2PI - self._log_mass)  # phi(a) / mass
        super().__init__(torch.Size(), torch.Size([dim]), validate_args=False)

    @property
    def support(self):
        return torch.distributions.constraints.independent(
            torch.distributions.constraints.interval(-self.bound, self.bound), 1)

    @property
    def mean(self):
        return torch.zeros(self._dim, dtype=torch.get_default_dtype())

    @property
    def variance(self):
        a = self.bound / self.scale
        return torch.full((self._dim,), self.scale**2 * (1 - 2 * a * self._phi_ratio), dtype=torch.get_default_dtype())

    def entropy(self):
        """The entropy in nats, a float64 tensor (): dim times that of one truncated coordinate,
        log(sqrt(2 pi e) scale Z) - a phi(a) / Z with a = bound / scale and Z = Phi(a) - Phi(-a)."""
        a = self.bound / self.scale
        one = 0.5 * (LOG_2PI + 1) + math.log(self.scale) + self._log_mass - a * self._phi_ratio
        return torch.tensor(self._dim * one, dtype=torch.float64)

    def _draw(self, shape, generator):
        """float64 draws of the given leading shape (the inverse CDF of each coordinate)."""
        u = torch.rand(*shape, self._dim, generator=generator, dtype=torch.float64)
        a = self.bound / self.scale
        low = torch.special.ndtr(torch.tensor(-a, dtype=torch.float64))
        z = torch.special.ndtri(low + u * math.exp(self._log_mass))
        return (self.scale * z).clamp(-self.bound, self.bound)

    def sample(self, sample_shape=torch.Size(), generator=None):
        """Draws of shape sample_shape + (dim,) (an int n: (n, dim)), a CPU tensor of the default
        dtype; ``generator``: None or a CPU torch.Generator (the same seed, the same draws)."""
        shape = _sample_shape(sample_shape)
        check_generator(generator)
        return self._draw(shape, generator).to(torch.get_default_dtype())

    def log_prob(self, value):
        """log density at ``value`` (..., dim), shape (...,), in value's dtype: -inf outside the box."""
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"value must be a torch.Tensor of shape (..., {self._dim}), got {type_name(value)}")
        if value.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"value must be float32 or float64, got {value.dtype}")
        if value.dim() == 0 or value.shape[-1] != self._dim:
            raise ValueError(f"value must have shape (..., {self._dim}), got shape {tuple(value.shape)}")
        v = value.detach().to(torch.float64)
        inside = (v.abs() <= self.bound).all(-1)
        constant = self._dim * (0.5 * LOG_2PI + math.log(self.scale) + self._log_mass)
        log_p = -0.5 * (torch.where(inside[..., None], v, 0.0) / self.scale).pow(2).sum(-1) - constant
        log_p = torch.where(inside, log_p, -math.inf).masked_fill(torch.isnan(v).any(-1), math.nan)
        return log_p.to(value.dtype)

    def __repr__(self):
        return f"BoxedNormal(dim={self._dim}, scale={self.scale:g}, bound={self.bound:g})"


class SumAndProduct(ConditionalTarget):
    """Amortized inference with an exact posterior: guess two numbers from their noisy sum and
    product. The points are the parameters theta = (a, b) (dim 2), the context an observation x
    (k = 2) of the simulator

        theta ~ prior = N(0, I) truncated to the box [-3, 3]^2 (``prior``, a ``BoxedNormal``),
        x = (a + b, a b) + sigma eps,  eps ~ N(0, I), sigma = 0.25   (``simulate(theta)``),

    and log_prob(theta, x) is the exact log posterior log p(theta | x) = log p(theta) +
    log p(x | theta) - log p(x). Swapping a and b gives the same x, so every posterior is symmetric
    about the diagonal a = b: two mirror-image modes where the roots of z^2 - x_1 z + x_2 are
    real and apart (x = (0, -1): modes near (1, -1) and (-1, 1)), a curved ridge along the
    hyperbola a b = x_2 where they are close, one blob on the diagonal where they are complex.

    Exact posterior. Given a, the likelihood times the prior is Gaussian in b, so b | a, x is
    N(m(a), 1 / P(a)) truncated to [-3, 3], P = 1 + (1 + a^2) / sigma^2, m = (x_1 - a + a x_2) /
    (sigma^2 P), and its integral over b is closed-form (log_ndtr). What is left, the marginal
    g(a) = p(a, x) and the evidence p(x) = int g(a) da, is a 1D integral over [-3, 3], done by a
    composite Gauss-Legendre rule of 1152 nodes (64 panels of 12 nodes, the end panels graded
    geometrically towards +-3, where the posteriors of far observations pile up). Against a rule of
    42 000 nodes, log p(x) agrees to 1e-12 for |x| <= 20, 4e-12 for |x| <= 50, and to rounding
    (2e-16 of |log p(x)|) up to |x| = 1000; tests check it against a 22 000-node rule and
    log_prob against Bayes' rule on a 1000 x 1000 grid (to 1e-9, the grid's own accuracy). It
    costs about 0.1 ms per distinct observation (one for a whole grid of theta). Contexts with
    |x_i| > 1000 are refused (the simulator's observations lie within +-12, and beyond 1000 the
    rounding of |x - f(theta)|^2 would eat the accuracy); any finite theta is scored (-inf
    outside the box).

    ``sample_given(x)``: a ~ p(a | x) by rejection from the piecewise log-linear interpolant of
    g between the rule's nodes and +-3 (accepting with probability g / (interpolant e^0.02),
    about 98% of proposals; exact as long as g stays below interpolant e^0.02, and a test finds
    it below interpolant e^0.005 (e^0.003 at worst) inside every cell, for observations out to
    1000), then b | a, x
    by the inverse CDF of its truncated normal (in log space, exact however far the normal's
    mean lies outside the box): exact draws, up to floating point.
    ``entropy_given(x)`` = H(A | x) + E[H(B | A, x)] by the same rule (the second term closed-
    form); ``conditional_entropy()`` = H(Theta | X) = H(Theta) + H(X | Theta) - H(X) with
    H(X | Theta) = log(2 pi e sigma^2) and H(X) = -int p(x) log p(x) dx by a 2D Gauss-Legendre rule
    over x in [-9, 9] x [-12, 12] (outside lies mass below 1e-30: |a + b| <= 6 and |a b| <= 9, so
    the noise would have to exceed 12 sigma): H(Theta | X) = 0.2152329800 nats
    (``_conditional_entropy_by_quadrature``: panels of 1, 0.5 and 0.25 with 8 or 12 nodes agree to
    5e-9, the last three to 1e-12; a test also checks it against Monte Carlo).

    ``sample(n)`` draws theta from the prior and x from the simulator (pairs from p(theta) p(x |
    theta)), ``sample_contexts(n)`` observations x from the prior predictive p(x).
    ``log_likelihood(theta, x)`` is log p(x | theta), ``log_evidence(x)`` log p(x) (float64).
    ``snapshot_contexts``: four observations, (0, -1) two modes apart, (1, 0.2) a curved ridge,
    (-1.5, 0) two modes on one arc, (0, 0.6) one blob (the roots are complex); ``context_bounds``:
    the box [-3.5, 3.5]^2, which holds 98% of the observations.
    """

    noise, box, max_observation = 0.25, 3.0, 1000.0
    _H_THETA_GIVEN_X = 0.2152329800162  # nats: see the class docstring (_conditional_entropy_by_quadrature)

    def __init__(self):
        b = self.box
        super().__init__("sum_and_product", 2, 2, ((-b, b), (-b, b)), ((-3.5, 3.5), (-3.5, 3.5)),
                         [[0.0, -1.0], [1.0, 0.2], [-1.5, 0.0], [0.0, 0.6]])
        self.prior = BoxedNormal(2, 1.0, b)
        self._nodes, self._weights = _edge_graded_rule(-b, b)
        self._log_weights = torch.log(self._weights)
        self._cell_edges = torch.cat([_f64([-b]), self._nodes, _f64([b])])  # the sampler's cells
        sigma2 = self.noise**2
        self._log_constant = -2 * LOG_2PI - 2 * self.prior._log_mass - math.log(sigma2)  # prior and likelihood
        self._conditional_entropy = self._H_THETA_GIVEN_X

    # --- the simulator --------------------------------------------------------------------------

    def _mean_observation(self, theta):
        return torch.stack([theta[:, 0] + theta[:, 1], theta[:, 0] * theta[:, 1]], 1)

    def simulate(self, theta, generator=None):
        """One observation x = (a + b, a b) + 0.25 eps per row of ``theta`` (batch, 2), eps ~ N(0, I):
        a tensor (batch, 2) in theta's dtype and device (computed in float64). Any finite theta is
        simulated, inside the prior's box or not; ``generator``: None or a CPU torch.Generator."""
        check_batch(theta, 2, "theta", owner=f"simulator ({self.name})")
        if theta.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"theta must be float32 or float64, got {theta.dtype}; use theta.float() or theta.double()")
        check_finite_rows(theta, "theta")
        check_generator(generator)
        t = theta.detach().to("cpu", torch.float64)
        return self._simulate(t, generator).to(theta.device, theta.dtype)

    def _simulate(self, theta, generator):
        eps = torch.randn(len(theta), 2, generator=generator, dtype=torch.float64)
        return self._mean_observation(theta) + self.noise * eps

    def sample(self, n, generator=None):
        """``n`` pairs (theta, x): theta (n, 2) from the prior and x (n, 2) from the simulator, CPU
        tensors of ``torch.get_default_dtype()`` (the same draws as prior.sample((n,), generator)
        followed by simulate(theta, generator), in float64)."""
        check_positive_int(n, "n")
        check_generator(generator)
        theta = self.prior._draw((n,), generator)
        x = self._simulate(theta, generator)
        dtype = torch.get_default_dtype()
        return theta.to(dtype), x.to(dtype)

    def _sample_contexts(self, n, generator):
        return self._simulate(self.prior._draw((n,), generator), generator)

    # --- exact densities ------------------------------------------------------------------------

    def _check_context_values(self, context, what):
        bad = (context.abs() > self.max_observation).any(1).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"{what} is an observation x = (a + b, a b) + noise, and this target computes posteriors "
                             f"for |x_i| <= {self.max_observation:g} (the simulator's observations lie within +-12); "
                             f"got "
                             f"{context[bad[0]].tolist()} in row {bad[0]}")

    def _given_a(self, a, x1, x2):
        """For values a and observations (x1, x2) (float64, broadcasting): log g(a) = log p(a, x) (the
        joint of a and x, b integrated out in closed form), and the mean m and sqrt(P) of the
        normal of b given a and x before its truncation to the box."""
        sigma2, b = self.noise**2, self.box
        precision = 1 + (1 + a * a) / sigma2
        m = (x1 - a + a * x2) / (sigma2 * precision)
        residual = m * m + ((x1 - a - m) ** 2 + (x2 - a * m) ** 2) / sigma2  # the minimum over b, no cancellation
        root = torch.sqrt(precision)
        log_mass = _log_ndtr_difference(root * (-b - m), root * (b - m))
        log_g = -0.5 * (a * a + residual) + 0.5 * (LOG_2PI - torch.log(precision)) + log_mass + self._log_constant
        return log_g, m, root

    def _per_context(self, context, function, chunk=256):
        """``function(unique contexts (u, 2))`` -> (u,), for the distinct rows of ``context``, in chunks,
        given back row by row."""
        if (context == context[:1]).all():  # one observation for every row (a grid of theta): no sort
            return function(context[:1]).expand(len(context)).clone()
        unique, inverse = torch.unique(context, dim=0, return_inverse=True)
        values = torch.cat([function(part) for part in unique.split(chunk)])
        return values[inverse]

    def _log_evidence(self, x):
        nodes, log_w = self._nodes.to(x.device), self._log_weights.to(x.device)
        log_g = self._given_a(nodes, x[:, :1], x[:, 1:])[0]
        return torch.logsumexp(log_g + log_w, 1)

    def log_evidence(self, context=None):
        """log p(x), the density of the observations (the prior predictive), at each row of
        ``context`` (batch, 2) (or one (2,)): a float64 tensor (batch,)."""
        context = self._checked_context(context)
        if len(context) == 0:
            return torch.zeros(0, dtype=torch.float64)
        return self._per_context(context, self._log_evidence)

    def _log_likelihood(self, theta, x):
        return -0.5 * ((x - self._mean_observation(theta)) ** 2).sum(1) / self.noise**2 - LOG_2PI - \
            2 * math.log(self.noise)

    def log_likelihood(self, theta, context=None):
        """log p(x | theta) of the observations ``context`` (batch, 2) (or one (2,)) at the rows of
        ``theta`` (batch, 2): shape (batch,), theta's dtype; NaN and inf rows as in ``log_prob``."""
        theta, context = self._checked_pair(theta, context)
        if len(theta) == 0:
            return theta.new_zeros(0)
        t = theta.to(torch.float64)
        log_l = self._log_likelihood(torch.where(torch.isfinite(t), t, 0.0), context)
        finite = torch.isfinite(t).all(1)
        at_infinity = torch.full_like(log_l, -math.inf).masked_fill(torch.isnan(t).any(1), math.nan)
        return torch.where(finite, log_l, at_infinity).to(theta.dtype)

    def _log_prob(self, theta, context):
        log_p = self.prior.log_prob(theta) + self._log_likelihood(theta, context)
        return log_p - self._per_context(context, self._log_evidence)

    def _entropy_given(self, context):
        return self._per_context(context, self._entropy_of)

    def _entropy_of(self, x):
        """H(A | x) + E[H(B | A, x)] for distinct observations x (u, 2), by the rule over a."""
        nodes, log_w = self._nodes.to(x.device), self._log_weights.to(x.device)
        log_g, m, root = self._given_a(nodes, x[:, :1], x[:, 1:])
        log_evidence = torch.logsumexp(log_g + log_w, 1, keepdim=True)
        log_p_a = log_g - log_evidence  # log p(a | x) at the nodes
        weight = torch.exp(log_p_a + log_w)
        lower, upper = root * (-self.box - m), root * (self.box - m)
        h_b = _truncated_normal_entropy(root**2, lower, upper, _log_ndtr_difference(lower, upper))
        return (weight * (h_b - log_p_a)).sum(1)

    # --- exact posterior samples ----------------------------------------------------------------

    _envelope = 0.02  # log of the rejection sampler's margin over the interpolant (see the class docstring)

    def _sample_given(self, context, generator):
        if (context == context[:1]).all():  # n draws for one observation: no sort
            unique, inverse = context[:1], torch.zeros(len(context), dtype=torch.long)
        else:
            unique, inverse = torch.unique(context, dim=0, return_inverse=True)
        theta = torch.empty(len(context), 2, dtype=torch.float64)
        for start in range(0, len(unique), 256):
            rows = ((inverse >= start) & (inverse < start + 256)).nonzero().flatten()
            theta[rows] = self._posterior_draws(unique[start:start + 256], inverse[rows] - start, generator)
        return theta

    def _posterior_draws(self, x, which, generator):
        """One theta from p(theta | x[which[i]]) for each i (float64 (len(which), 2))."""
        t = self._cell_edges
        log_g = self._given_a(t, x[:, :1], x[:, 1:])[0]  # (u, cells + 1): g at the cells' ends
        width, slope = t.diff(), log_g.diff(dim=1)  # slope: the change of log g across each cell
        top = torch.maximum(log_g[:, 1:], log_g[:, :-1])
        flat = slope.abs() < 1e-12
        spread = torch.where(flat, 1.0, -torch.expm1(-slope.abs()) / torch.where(flat, 1.0, slope.abs()))
        log_cell = top + torch.log(width) + torch.log(spread)  # the interpolant's mass in each cell
        cdf = torch.exp(log_cell - log_cell.max(1, keepdim=True).values).cumsum(1)
        cdf = cdf / cdf[:, -1:]
        cells = cdf.shape[1]
        # each row's cdf offset by the row's index: one sorted sequence for searchsorted
        ladder = (cdf + torch.arange(len(x), dtype=torch.float64)[:, None]).flatten()
        a = torch.empty(len(which), dtype=torch.float64)
        pending = torch.arange(len(which))
        while len(pending):
            u = torch.rand(len(pending), 3, generator=generator, dtype=torch.float64)
            row = which[pending]
            cell = torch.searchsorted(ladder, row + u[:, 0], right=True) - row * cells
            cell = cell.clamp(0, cells - 1)
            d = slope[row, cell]
            e = -d.abs()  # within the cell, the density ~ exp(d y), y in [0, 1]: its inverse CDF
            v = torch.where(d < 0, u[:, 1], 1 - u[:, 1])
            small = e > -1e-12
            y = torch.where(small, v, torch.log1p(v * torch.expm1(e)) / torch.where(small, -1.0, e))
            y = torch.where(d < 0, y, 1 - y).clamp(0, 1)
            candidate = t[cell] + width[cell] * y
            interpolant = log_g[row, cell] + d * y
            exact = self._given_a(candidate, x[row, 0], x[row, 1])[0]
            accept = torch.log(u[:, 2]) < exact - interpolant - self._envelope
            a[pending[accept]] = candidate[accept]
            pending = pending[~accept]
        _, m, root = self._given_a(a, x[which, 0], x[which, 1])
        u = torch.rand(len(which), generator=generator, dtype=torch.float64)
        b = _truncated_normal(m, root, -self.box, self.box, u)
        return torch.stack([a, b], 1)

    # --- H(Theta | X) -------------------------------------------------------------------------

    def _conditional_entropy_by_quadrature(self, panel=0.25, nodes=8, chunk=2048):
        """H(Theta | X) = H(Theta) + log(2 pi e sigma^2) - H(X), with H(X) = -int p(x) log p(x) dx
        by a composite Gauss-Legendre rule (panels of width ``panel``, ``nodes`` nodes each) over
        x in [-9, 9] x [-12, 12]."""
        def rule(low, high):
            count = round((high - low) / panel)
            edges = torch.linspace(low, high, count + 1, dtype=torch.float64)
            xi, w = gauss_legendre(nodes)
            left, width = edges[:-1, None], (edges[1:] - edges[:-1])[:, None]
            return (left + width * (xi + 1) / 2).flatten(), (width * w / 2).flatten()
        (x1, w1), (x2, w2) = rule(-9.0, 9.0), rule(-12.0, 12.0)
        points = torch.stack(torch.meshgrid(x1, x2, indexing="ij"), -1).reshape(-1, 2)
        weights = (w1[:, None] * w2[None, :]).flatten()
        log_p = torch.cat([self._log_evidence(part) for part in points.split(chunk)])
        h_x = -(weights * torch.exp(log_p) * log_p).sum().item()
        h_noise = 1 + LOG_2PI + 2 * math.log(self.noise)
        return self.prior.entropy().item() + h_noise - h_x


# ring_by_radius computes its entropy when built: the registry builds each target on first use.
_REGISTRY = Registry("conditional target", {
    "ring_by_radius": RingByRadius, "rotated_moons": RotatedMoons, "gaussians_by_class": GaussiansByClass,
    "sum_and_product": SumAndProduct})


def conditional_names():
    """The names of the conditional targets: ring_by_radius, rotated_moons, gaussians_by_class, sum_and_product."""
    return _REGISTRY.names()


def get(name):
    """The conditional target called ``name`` (see ``conditional_names()``), the same object at every call;
    ValueError for an unknown name."""
    return _REGISTRY.get(name)
