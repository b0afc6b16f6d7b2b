"""A normalizing flow: a base density pushed through a chain of bijectors.

log p(x) = log p_base(z) + sum_k log|det J_k^{-1}|, with z the image of x through the
inverses of the layers, last layer first.
"""

import math

import torch
from torch import distributions as D
from torch import nn

from .bijector import Bijector, call
from .checks import check_batch, check_flag, check_positive_int, check_stage, type_name
from .continuous import ContinuousFlow
from .elementwise import ActNorm


class Flow(Bijector):
    """x = b_K(...b_2(b_1(z))) with z ~ base; ``bijectors`` are listed base side first.

    ``base`` defaults to a standard normal on R^dim whose loc/scale are buffers, so the flow
    moves with ``.to(device)``/``.double()`` and its ``state_dict`` is complete. ``dim`` is
    taken from the bijectors when not given. A Flow is itself a Bijector (flows nest).

    A flow with conditional layers is a conditional density q(x | c): its ``context_size`` is
    theirs (they must agree), and ``log_prob``, ``sample``, ``sample_and_log_prob``, ``trace``,
    ``forward`` and ``inverse`` take ``context=c`` (nflesson.bijector), which every conditional
    layer reads and the others ignore.
    """

    noun = "flow"

    def __init__(self, bijectors, dim=None, base=None):
        super().__init__()
        if isinstance(bijectors, Bijector):
            bijectors = [bijectors]
        if not isinstance(bijectors, (list, tuple, nn.ModuleList)):
            raise TypeError(f"Flow takes a list of nflesson Bijectors, got {type(bijectors).__name__}")
        for b in bijectors:
            if not isinstance(b, Bijector):
                raise TypeError(f"Flow takes nflesson Bijectors, got {type(b).__name__}")
        dims = {b.dim for b in bijectors if b.dim is not None}
        if dim is not None:
            dims.add(check_positive_int(dim, "dim"))
        if len(dims) > 1:
            raise ValueError(f"the bijectors and dim disagree on the dimension: {sorted(dims)}")
        if not dims:
            raise ValueError("no bijector fixes the dimension: pass dim=...")
        self.dim = dims.pop()
        contexts = {b.context_size for b in bijectors if b.context_size}
        if len(contexts) > 1:
            raise ValueError(f"the conditional layers disagree on the context's width: {sorted(contexts)}")
        self.context_size = contexts.pop() if contexts else 0
        _check_base(base, self.dim)
        self.layers = nn.ModuleList(bijectors)
        self.custom_base = base
        self.register_buffer("base_loc", torch.zeros(self.dim))
        self.register_buffer("base_scale", torch.ones(self.dim))

    @property
    def base(self):
        """The base distribution (a torch.distributions object with event shape (dim,))."""
        if self.custom_base is not None:
            return self.custom_base
        return D.Independent(D.Normal(self.base_loc, self.base_scale, validate_args=False), 1, validate_args=False)

    def _forward(self, z, context=None):
        log_dets = []
        for layer in self.layers:
            z, log_det = call(layer, "_forward", z, context)
            log_dets.append(log_det)
        return z, _total(log_dets, z)

    def _forward_points(self, z, context=None):
        for layer in self.layers:
            z = layer._forward_points(z, context)
        return z

    def _inverse(self, x, context=None):
        log_dets = []
        for layer in reversed(self.layers):
            x, log_det = call(layer, "_inverse", x, context)
            log_dets.append(log_det)
        return x, _total(log_dets, x)

    def log_prob(self, x, context=None):
        """log p(x) = log p_base(f^{-1}(x)) + log|det J_{f^{-1}}(x)|, shape (batch,); NaN for a
        point with a NaN coordinate, -inf for one with an infinite coordinate (density 0).
        A conditional flow scores log q(x | c) with ``context`` c ((batch, k) or (k,))."""
        x = self.checked(x, "x")
        context = self.checked_context(context, len(x))
        if len(x) == 0:
            return x.new_zeros(0)
        fresh = self._uninitialized() if self.training and torch.is_grad_enabled() else ()
        try:
            z, log_det = self._inverse(x, context)
        except Exception:
            for layer in fresh:  # a failed pass initialises nothing
                layer.reset()
            raise
        log_p = self.base.log_prob(z) + log_det
        if not torch.isfinite(x).all():
            infinite = torch.isinf(x).any(-1) & ~torch.isnan(x).any(-1)
            log_p = torch.where(infinite, -math.inf, log_p)
        return log_p

    def _uninitialized(self):
        """The ActNorm layers that the next training pass would initialise."""
        return [m for m in self.modules() if isinstance(m, ActNorm) and not m.initialized]

    def sample(self, n, context=None):
        """n samples (no gradient), shape (n, dim); for a conditional flow, n samples of
        q(x | c) for a (k,) context, or one per row of an (n, k) context. Only the points are
        computed, not the log-dets (a ContinuousFlow layer skips its divergence)."""
        context = self.checked_context(context, check_positive_int(n, "n"))
        with torch.no_grad():
            return self._forward_points(self.base.sample((n,)), context)

    def sample_and_log_prob(self, n, context=None):
        """n reparametrised samples and their log-density in one forward pass:
        log p(x) = log p_base(z) - log|det J_f(z)|. Differentiable (used for reverse KL).
        ``context`` as for ``sample``."""
        context = self.checked_context(context, check_positive_int(n, "n"))
        z = self.base.rsample((n,))
        x, log_det = self._forward(z, context)
        return x, self.base.log_prob(z) - log_det

    def trace(self, points, inverse=False, context=None):
        """The points after each layer: [z, b_1(z), b_2(b_1(z)), ...] (base -> data), or with
        ``inverse=True`` [x, b_K^{-1}(x), ...] (data -> base). For layer-by-layer plots."""
        return LayerStages(self).points(points, check_flag(inverse, "inverse"), context=context)

    def stages(self, time_steps=16, solver=None):
        """The stages along the map, for plots: one per layer (``LayerStages``), or, for a Flow
        whose only layer is a ContinuousFlow, that flow's stages along its ODE time
        (``ContinuousFlow.stages``, which ``time_steps`` and ``solver`` are for).

        Every kind of stages has ``count`` (K: stage 0 is the input, stage K the output),
        ``end`` (the time of stage K, stage k lying at time k * end / K), ``points(x,
        inverse=False, log_det=False)`` (the list of the K + 1 stages' points and, with
        ``log_det``, the list of the cumulative log|det| from the input to each),
        ``back_from(k, x, context=None)`` ((points, log|det|) of the map from stage k back to the input) and
        ``name(t)`` (what the map shows at time t)."""
        ode = continuous_of(self)
        if ode is not None:
            return ode.stages(time_steps, solver)
        check_positive_int(time_steps, "time_steps")
        if solver is not None:
            raise ValueError("solver is for a flow holding a ContinuousFlow; this flow's stages are its layers, "
                             f"which need no solver: leave it None, got {solver!r}")
        return LayerStages(self)

    def as_distribution(self, context=None):
        """An equivalent torch.distributions.TransformedDistribution: ``log_prob`` of one point
        (dim,) or of points (..., dim), ``sample(shape)`` and ``rsample(shape)`` of shape
        ``shape + (dim,)``, batch shape () and event shape (dim,). Nothing is cached, so it follows
        the flow's parameters as they change. For a conditional flow, the distribution q(x | c)
        of one ``context`` c, a (k,) tensor."""
        return FlowDistribution(self, context)


def _check_base(base, dim):
    """Raise TypeError or ValueError unless ``base`` is None or a torch distribution over vectors of
    length ``dim`` (event shape (dim,), batch shape ())."""
    if base is None:
        return
    if not isinstance(base, D.Distribution):
        raise TypeError(f"base must be a torch.distributions.Distribution, got {type(base).__name__}")
    if tuple(base.event_shape) != (dim,) or tuple(base.batch_shape) != ():
        raise ValueError(f"base must have event shape ({dim},) and batch shape (), got event shape "
                         f"{tuple(base.event_shape)} and batch shape {tuple(base.batch_shape)}; e.g. "
                         "torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1) with loc "
                         f"and scale of length {dim}")


def continuous_of(flow):
    """The ContinuousFlow that ``flow`` consists of (a Flow whose only layer is one), or None."""
    if isinstance(flow, Flow) and len(flow.layers) == 1 and isinstance(flow.layers[0], ContinuousFlow):
        return flow.layers[0]
    return None


class LayerStages:
    """The stages of a Flow of layers: stage k is the output of layer k (k = 0..K), at layer
    time k (see ``Flow.stages``)."""

    def __init__(self, flow):
        self.flow = flow
        self.count = self.end = len(flow.layers)

    @torch.no_grad()
    def points(self, x, inverse=False, log_det=False, context=None):
        """[x, b_1(x), b_2(b_1(x)), ...] (with ``inverse=True``: [x, b_K^{-1}(x), ...]) and,
        with ``log_det``, [0, log|det J_1|, log|det J_1| + log|det J_2|, ...]; ``context``
        for a conditional flow."""
        x = self.flow.checked(x, "points")
        context = self.flow.checked_context(context, len(x))
        check_flag(inverse, "inverse")
        check_flag(log_det, "log_det")
        layers = reversed(self.flow.layers) if inverse else self.flow.layers
        points, totals = [x], [x.new_zeros(x.shape[0])]
        for layer in layers:
            x, step = layer.inverse(x, context) if inverse else layer(x, context)
            points.append(x)
            if log_det:
                totals.append(totals[-1] + step)
        return (points, totals) if log_det else points

    @torch.no_grad()
    def back_from(self, k, x, context=None):
        """(b_1^{-1}(...b_k^{-1}(x)), its log|det|): stage k carried back to the input (for the
        ``context`` of a conditional flow)."""
        check_stage(k, self.count)
        return Flow(list(self.flow.layers[:k]), dim=self.flow.dim).inverse(x, context)

    def name(self, t):
        """'the base', 'layer k of K at work' or 'the data: all K layers applied' (one: 'the layer')."""
        if t <= 0:
            return "the base"
        if t >= self.end:
            return "the data: the layer applied" if self.end == 1 else f"the data: all {self.end} layers applied"
        return f"layer {math.ceil(t)} of {self.end} at work"


def _total(log_dets, points):
    """The sum of the layers' log-dets: one stacked sum rather than a chain of additions, which
    saves an operation per layer in both passes (deep planar flows feel it)."""
    if not log_dets:
        return points.new_zeros(points.shape[0])
    return torch.stack(log_dets).sum(0)


class FlowDistribution(D.TransformedDistribution):
    """A Flow as a torch.distributions.TransformedDistribution (``Flow.as_distribution``), whose
    ``log_prob`` is the flow's (one pass through the layers, data -> base) and whose ``sample``
    and ``rsample`` check their arguments in nflesson's words."""

    def __init__(self, flow, context=None):
        if flow.context_size:
            if not isinstance(context, torch.Tensor) or context.shape != (flow.context_size,):
                raise ValueError(f"the distribution of a conditional flow is that of one context: pass a tensor of "
                                 f"shape ({flow.context_size},), got {context!r}")
            context = flow.checked_context(context, 1)[0]
        super().__init__(flow.base, [BijectorTransform(b, context) for b in flow.layers], validate_args=False)
        self.flow, self.context = flow, context

    def log_prob(self, value):
        """log q of one point (dim,) or of points (..., dim), shape value.shape[:-1]."""
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            raise TypeError(f"value must be a tensor of points (..., {self.flow.dim}), got {type_name(value)}")
        flat = check_batch(value.reshape(-1, value.shape[-1]), self.flow.dim, "value", dtype=self.flow.dtype)
        return self.flow.log_prob(flat, self.context).reshape(value.shape[:-1])

    def sample(self, sample_shape=torch.Size()):
        """Points of shape sample_shape + (dim,), without gradients."""
        return super().sample(_sample_shape(sample_shape))

    def rsample(self, sample_shape=torch.Size()):
        """Points of shape sample_shape + (dim,), differentiable in the flow's parameters."""
        return super().rsample(_sample_shape(sample_shape))


def _sample_shape(shape):
    if not isinstance(shape, (tuple, list, torch.Size)) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise TypeError(f"sample_shape must be a tuple of sizes such as (5,) or (3, 4), as in torch.distributions, "
                        f"got {type_name(shape)} {shape!r}")
    return torch.Size(shape)


class BijectorTransform(D.Transform):
    """Wraps a nflesson Bijector as a torch.distributions.Transform acting on vectors of any
    leading shape (..., dim): the points are flattened into one batch for the bijector and given
    back their shape. Nothing is cached (cache_size=0), so a changed parameter is seen at once.
    A conditional bijector maps with the fixed ``context`` (k,) it is given."""

    domain = D.constraints.real_vector
    codomain = D.constraints.real_vector
    bijective = True

    def __init__(self, bijector, context=None):
        super().__init__(cache_size=0)
        self.bijector, self.context = bijector, context

    def _apply(self, points, inverse):
        flat = points.reshape(-1, points.shape[-1])
        out, log_det = self.bijector.inverse(flat, self.context) if inverse else self.bijector(flat, self.context)
        return out.reshape(points.shape), log_det.reshape(points.shape[:-1])

    def _call(self, z):
        return self._apply(z, inverse=False)[0]

    def _inverse(self, x):
        return self._apply(x, inverse=True)[0]

    def log_abs_det_jacobian(self, z, x):
        """log|det dx/dz| at z (x = forward(z))."""
        return self._apply(z, inverse=False)[1]
