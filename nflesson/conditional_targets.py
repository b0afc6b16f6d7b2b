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
- ``"gaussians_by_class"``: eight Gaussians, the context a one-hot class label (k = 8).
"""

import math

import torch

from .checks import check_batch, check_bounds, check_finite_rows, check_generator, check_positive_int, type_name
from .targets import LOG_2PI, Moons, gauss_legendre


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


_CONDITIONAL_TARGETS = [RingByRadius(), RotatedMoons(), GaussiansByClass()]
_REGISTRY = {target.name: target for target in _CONDITIONAL_TARGETS}


def conditional_names():
    """The names of the conditional targets: ring_by_radius, rotated_moons, gaussians_by_class."""
    return list(_REGISTRY)


def get(name):
    """The conditional target called ``name`` (see ``conditional_names()``); ValueError for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"the conditional target's name must be a string, one of {', '.join(_REGISTRY)}; got "
                        f"{type_name(name)}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown conditional target {name!r}; valid names: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
