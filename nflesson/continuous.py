"""Continuous-time flows (lesson 09): x = x(1) where dx/dt = v(x, t) and x(0) = z ~ base.

The log-density moves by the instantaneous change of variables d log p(x(t)) / dt = -div v(x(t), t),
so log|det dx(1)/dz| = integral from 0 to 1 of div v dt, solved alongside x by torchdiffeq.
The velocity is trained by maximum likelihood through the solver (FFJORD, Grathwohl et al. 2019:
``nflesson.fit``) or by conditional flow matching (Lipman et al. 2023; Liu et al. 2023:
``nflesson.fit_flow_matching``, whose loss is ``flow_matching_loss``). A conditional flow
v(x, t, c) can be sampled with classifier-free guidance (``ContinuousFlow.guided``,
``GuidedVelocity``).
"""

import contextlib
import math

import torch
from torch import nn

from .bijector import Bijector
from .checks import (check_batch, check_callable, check_flag, check_int, check_number, check_positive,
                     check_positive_int, check_stage)
from .nets import VelocityMLP

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "adaptive_heun")
FIXED_METHODS = ("euler", "midpoint", "rk4")
FIXED_STEPS = 20  # a fixed-step method's steps when none are given
DIVERGENCES = ("exact", "hutchinson")


def velocity_and_divergence(velocity, x, t, noise=None, create_graph=False, context=None):
    """(v(x, t), div v(x, t)), both per point. Exact (``noise=None``): the trace of the Jacobian
    dv/dx, one autograd pass per dimension. Hutchinson's estimator (``noise`` e of shape
    (batch, dim) with E[e e^T] = I, e.g. Rademacher): e^T (dv/dx) e from one vector-Jacobian
    product, an unbiased estimate of the trace, not the trace. ``create_graph=True`` keeps the
    result differentiable (for training); otherwise both come back detached. A ``context`` c,
    if given, is passed on, v(x, t, c); the divergence is taken in x only."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        v = checked_velocity(velocity(x, t) if context is None else velocity(x, t, context), x)
        if not v.requires_grad:  # v does not depend on x (nor on anything trained)
            div = x.new_zeros(x.shape[0])
        elif noise is None:
            div = sum(torch.autograd.grad(v[:, i].sum(), x, create_graph=create_graph, retain_graph=True,
                                          allow_unused=True, materialize_grads=True)[0][:, i]
                      for i in range(x.shape[1]))
        else:
            vjp = torch.autograd.grad(v, x, noise, create_graph=create_graph, allow_unused=True,
                                      materialize_grads=True)[0]
            div = (vjp * noise).sum(-1)
    if not create_graph:
        v, div = v.detach(), div.detach()
    return v, div


def _times(times):
    """``times`` as a flat float64 tensor, else TypeError."""
    try:
        if not isinstance(times, (list, tuple, range, torch.Tensor)):
            raise TypeError
        return torch.as_tensor(times, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"times must be a sequence or a tensor of times in [0, 1], got {times!r}") from None


def checked_velocity(v, x):
    """``v`` if it is a tensor shaped like the points ``x`` (one velocity per point), else
    TypeError or ValueError: a velocity of another shape would otherwise broadcast or fail deep
    inside the solver."""
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"the velocity v(x, t) must return a tensor, got {type(v).__name__}")
    if v.shape != x.shape:
        raise ValueError(f"the velocity v(x, t) returned shape {tuple(v.shape)} for points of shape "
                         f"{tuple(x.shape)}: it must return one velocity per point, shape (batch, dim)")
    return v


def rademacher(shape, dtype=None, device=None):
    """Independent +-1 entries with probability 1/2 each (from the global random state)."""
    return torch.randint(0, 2, shape, device=device).to(dtype or torch.get_default_dtype()) * 2 - 1


class ContinuousFlow(Bijector):
    """forward: z -> x(1) with dx/dt = v(x, t) from x(0) = z (t = 0 is the base, t = 1 the data);
    inverse: the same ODE from t = 1 back to t = 0. The log-det of the direction called,
    log|det dx(1)/dz| = integral_0^1 div v(x(t), t) dt (minus it for the inverse), is solved for
    alongside x (torchdiffeq's ``odeint``, differentiable through the solver's steps).

    ``velocity``: a callable v(x, t) -> (batch, dim) (None: a fresh ``VelocityMLP(dim)``, so the
    flow starts as the identity). Solver: ``method="dopri5"`` (adaptive Dormand-Prince 5(4) with
    tolerances ``rtol``, ``atol`` on the root-mean-square error over the whole batch, as
    torchdiffeq measures it; also "dopri8", "bosh3", ...) or a fixed-step method ("rk4",
    "midpoint", "euler") with ``steps`` steps per unit of time (default 20): fast and
    predictable, but with no error control. ``divergence="exact"`` takes the trace of the
    Jacobian (one autograd pass per dimension: fine in low dimension); "hutchinson" uses
    Hutchinson's estimator with one Rademacher probe per point, fixed over each solve, so that
    log-dets and log-densities are unbiased *estimates* (``exact`` is then False).

    ``nfe`` is the number of evaluations of v (with its divergence, where the log-det is
    solved for) in the last solve. ``solver(...)`` changes the solver settings for a ``with``
    block, ``set_solver(...)`` for good. A solve uses the threads torch is set to; on a busy CPU,
    one (``torch.set_num_threads(1)``, as the lessons do, or ``with nflesson.threads.one_thread():``,
    as training does) can be many times faster for a small velocity. Score without gradients under
    ``torch.no_grad()`` (``nf.gap``, ``Flow.sample`` and the plots do): with gradients on, every
    step of the solve is kept for backpropagation, which for 20,000 points takes gigabytes."""

    def __init__(self, dim, velocity=None, method="dopri5", steps=None, rtol=1e-5, atol=1e-5,
                 divergence="exact", context=0):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.context_size = check_int(context, "context")
        if velocity is None:
            velocity = VelocityMLP(dim, context=context)
        if isinstance(velocity, type):
            raise TypeError(f"velocity must be an instance, e.g. {velocity.__name__}({dim}), got the class itself")
        if not callable(velocity):
            raise TypeError(f"velocity must be a callable v(x, t), got {type(velocity).__name__}")
        if getattr(velocity, "dim", dim) != dim:
            raise ValueError(f"the velocity has dim = {velocity.dim} but the flow has dim = {dim}")
        if getattr(velocity, "context_size", context) != context:
            raise ValueError(f"the velocity reads a context of width {velocity.context_size} but the flow has "
                             f"context = {context}")
        self.velocity = velocity
        self.nfe = 0
        self.method, self.steps, self.rtol, self.atol, self.divergence = "dopri5", None, rtol, atol, divergence
        self.set_solver(method=method, steps=steps, rtol=rtol, atol=atol, divergence=divergence)

    def guided(self, weight, null_context=None):
        """This flow sampled with classifier-free guidance (Ho & Salimans, 2022) of strength
        ``weight`` w: a new ContinuousFlow, with this one's solver settings, whose velocity is
        ``GuidedVelocity(self.velocity, weight, null_context)``,

            v_w(x, t, c) = (1 + w) v(x, t, c) - w v(x, t, null) = v(x, t, c) + w (v(x, t, c) - v(x, t, null)),

        which pushes each point further in the direction the context c adds to the velocity.
        It shares this flow's velocity (and so its parameters: nothing is copied or retrained);
        w = 0 is this flow, w = -1 the flow of the null context. ``null_context``: the (k,)
        context that stands for "no condition" in training (None: zeros, e.g. an all-zero
        one-hot label). Guidance only makes sense for a velocity trained on both, i.e. with the
        context replaced by the null one for some of the training pairs.

        The guided flow is a flow of its own, with its own density: its ``log_prob`` (solved with
        the guided velocity's divergence) is the density of its samples, which for w != 0 is not
        the conditional density q(x | c) that the training fitted."""
        if not self.context_size:
            raise ValueError("classifier-free guidance mixes v(x, t, c) with v(x, t, null): it needs a conditional "
                             "flow, ContinuousFlow(dim, context=k) with k > 0, got an unconditional one")
        velocity = GuidedVelocity(self.velocity, weight, null_context, context=self.context_size)
        return ContinuousFlow(self.dim, velocity, method=self.method, steps=self.steps, rtol=self.rtol,
                              atol=self.atol, divergence=self.divergence, context=self.context_size)

    @property
    def exact(self):
        """True when log-dets use the exact divergence, False for Hutchinson's estimate."""
        return self.divergence == "exact"

    def set_solver(self, method=None, steps=None, rtol=None, atol=None, divergence=None):
        """Change the solver settings (those not given stay, except that ``steps`` is reset
        when the method changes). Returns the flow."""
        method = self.method if method is None else method
        if method not in ADAPTIVE_METHODS + FIXED_METHODS:
            raise ValueError(f"method must be one of {ADAPTIVE_METHODS + FIXED_METHODS}, got {method!r}")
        if method in FIXED_METHODS:
            keep = self.steps if method == self.method else None
            steps = check_positive_int(steps, "steps") if steps is not None else keep or FIXED_STEPS
        elif steps is not None:
            raise ValueError(f"steps is for the fixed-step methods {FIXED_METHODS}; {method} chooses its own "
                             "steps from rtol and atol")
        divergence = self.divergence if divergence is None else divergence
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
        rtol = check_positive(self.rtol if rtol is None else rtol, "rtol")
        atol = check_positive(self.atol if atol is None else atol, "atol")
        self.method, self.steps, self.rtol, self.atol, self.divergence = method, steps, rtol, atol, divergence
        return self

    @contextlib.contextmanager
    def solver(self, **settings):
        """``with flow.solver(method="rk4", steps=10): ...`` uses those settings (as in
        ``set_solver``) inside the block and restores the flow's own afterwards."""
        saved = (self.method, self.steps, self.rtol, self.atol, self.divergence)
        self.set_solver(**settings)
        try:
            yield self
        finally:
            self.method, self.steps, self.rtol, self.atol, self.divergence = saved

    def _forward(self, z, context=None):
        x, log_det = self._solve(z, torch.tensor([0.0, 1.0]), True, context)
        return x[-1], log_det[-1]

    def _inverse(self, x, context=None):
        z, log_det = self._solve(x, torch.tensor([1.0, 0.0]), True, context)
        return z[-1], log_det[-1]

    def _forward_points(self, z, context=None):
        """x(1) alone: the ODE without the divergence (d autograd passes per step in d dimensions)."""
        return self._solve(z, torch.tensor([0.0, 1.0]), False, context)[0][-1]

    def trajectory(self, points, times, log_det=False, context=None):
        """The points carried by the ODE from ``times[0]`` to each of ``times`` (a 1D increasing
        or decreasing sequence in [0, 1]), in one solve: a (len(times), batch, dim) tensor and,
        with ``log_det=True``, the (len(times), batch) log|det| of the map from times[0] to each
        time. E.g. times = linspace(0, 1, K + 1) gives the path from the base to the data.
        ``context``: for a conditional flow, as in ``forward``."""
        points = self.checked(points, "points")
        context = self.checked_context(context, len(points))
        check_flag(log_det, "log_det")
        times = _times(times)
        if len(times) < 2 or not ((times >= 0) & (times <= 1)).all():
            raise ValueError("times must hold at least two times in [0, 1]")
        steps = times.diff()
        if not ((steps > 0).all() or (steps < 0).all()):
            raise ValueError("times must be strictly increasing or strictly decreasing")
        out = self._solve(points, times, log_det, context)
        return out if log_det else out[0]

    def stages(self, time_steps=16, solver=None):
        """The stages along the ODE time, for plots (``TimeStages``, see ``Flow.stages``):
        stage k is the solution at time k / K (K = ``time_steps``), solved with the settings
        ``solver`` (as in ``solver(...)``; None: the flow's own)."""
        return TimeStages(self, time_steps, solver)

    def _solve(self, x, times, log_det, context=None):
        """Solve from times[0] through the other times, with the velocity v(x, t) (v(x, t, c) for
        a conditional flow); returns (points at every time, log-dets from times[0] to every
        time, or None without log_det)."""
        times = times.to(dtype=x.dtype, device=x.device)
        create_graph = torch.is_grad_enabled()
        noise = None
        if log_det and self.divergence == "hutchinson":
            noise = rademacher(x.shape, dtype=x.dtype, device=x.device)
        self.nfe = 0

        def rhs(t, state):
            self.nfe += 1
            if not log_det:
                v = self.velocity(state, t) if context is None else self.velocity(state, t, context)
                return checked_velocity(v, state)
            return velocity_and_divergence(self.velocity, state[0], t, noise, create_graph, context)

        state = (x, x.new_zeros(x.shape[0])) if log_det else x
        options = None
        if self.method in FIXED_METHODS:
            options = {"grid_constructor": self._grid}
        from torchdiffeq import odeint  # here, not at import: it loads scipy.integrate (about 0.4 s)

        out = odeint(rhs, state, times, rtol=self.rtol, atol=self.atol, method=self.method, options=options)
        return (out[0], out[1]) if log_det else (out, None)

    def _grid(self, func, y0, times):
        """A fixed-step method's time grid: every requested time, and between two of them
        ceil(steps * |gap|) equal steps (``steps`` per unit of time, at least one; a gap that
        float32 rounding makes a hair longer than a whole number of steps takes that number)."""
        pieces = [times[:1]]
        for a, b in zip(times[:-1], times[1:]):
            n = max(1, math.ceil(self.steps * abs(float(b - a)) - 1e-5))
            pieces.append(torch.linspace(float(a), float(b), n + 1, dtype=times.dtype, device=times.device)[1:])
        return torch.cat(pieces)

    def extra_repr(self):
        solver = f"steps={self.steps}" if self.method in FIXED_METHODS else f"rtol={self.rtol:g}, atol={self.atol:g}"
        divergence = "exact" if self.exact else "hutchinson (an estimate)"
        return f"dim={self.dim}, method={self.method}, {solver}, divergence={divergence}"


class GuidedVelocity(nn.Module):
    """Classifier-free guidance (Ho & Salimans, 2022) of a conditional velocity v(x, t, c):

        v_w(x, t, c) = (1 + w) v(x, t, c) - w v(x, t, null) = v(x, t, c) + w (v(x, t, c) - v(x, t, null))

    with w = ``weight`` (any finite number: w = 0 gives v itself, without the second pass;
    w = -1 the null context's velocity; w > 0 guides, the usual choice) and ``null_context`` the
    (k,) context that stands for "no condition" (None: zeros of the context's width). A velocity
    v(x, t, c) like any other, usable as a ``ContinuousFlow``'s (``ContinuousFlow.guided`` builds
    that flow). Both velocities come from one pass of v over the batch stacked twice. ``velocity``
    is kept as a submodule when it is one, so its parameters are shared, not copied. ``context``:
    the context's width k, read from ``velocity.context_size`` when not given."""

    def __init__(self, velocity, weight, null_context=None, context=None):
        super().__init__()
        check_callable(velocity, "velocity", "a conditional velocity v(x, t, c), e.g. a VelocityMLP(dim, context=k)")
        width = getattr(velocity, "context_size", None)
        if context is not None:
            check_int(context, "context")
            if width is not None and width != context:
                raise ValueError(f"the velocity reads a context of width {width} but context = {context}")
            width = context
        if null_context is not None and width is None:
            width = len(null_context) if isinstance(null_context, torch.Tensor) and null_context.dim() == 1 else None
        if not width:
            raise ValueError("classifier-free guidance needs a conditional velocity v(x, t, c) (context width k > 0, "
                             "e.g. VelocityMLP(dim, context=k)); for a plain callable, pass context=k")
        self.weight = check_number(weight, "weight")
        self.context_size = width
        if getattr(velocity, "dim", None) is not None:
            self.dim = velocity.dim
        dtype = _dtype_of(velocity)
        if null_context is None:
            null_context = torch.zeros(width, dtype=dtype or torch.get_default_dtype())
        elif not isinstance(null_context, torch.Tensor):
            raise TypeError(f"null_context must be a tensor of shape ({width},), got {type(null_context).__name__}")
        elif null_context.shape != (width,):
            raise ValueError(f"null_context must have shape ({width},), one row of the context, got shape "
                             f"{tuple(null_context.shape)}")
        elif not null_context.is_floating_point():
            raise TypeError(f"null_context must have a floating dtype, got {null_context.dtype}")
        elif dtype is not None and null_context.dtype != dtype:
            raise TypeError(f"null_context is {str(null_context.dtype)[6:]} but the velocity computes in "
                            f"{str(dtype)[6:]}: convert one of them; nothing is cast silently")
        elif not torch.isfinite(null_context).all():
            raise ValueError("null_context has NaN or inf entries")
        self.velocity = velocity
        self.register_buffer("null_context", null_context.detach().clone())

    def forward(self, x, t, context=None):
        if context is None:
            raise ValueError(f"a guided velocity needs the context c of the points, (batch, {self.context_size}): "
                             "it mixes v(x, t, c) with v(x, t, null)")
        context = check_batch(context, self.context_size, "context", owner="guided velocity's context", dtype=x.dtype)
        if len(context) != len(x):
            raise ValueError(f"context has {len(context)} rows for {len(x)} points")
        if self.weight == 0:
            return self.velocity(x, t, context)
        n = len(x)
        if isinstance(t, torch.Tensor) and t.dim() == 1 and t.numel() == n:
            t = torch.cat([t, t])  # one time per point: the stacked batch needs them twice
        both = torch.cat([x, x])
        v = checked_velocity(self.velocity(both, t, torch.cat([context, self.null_context.expand(n, -1)])), both)
        conditional, unconditional = v[:n], v[n:]
        return conditional + self.weight * (conditional - unconditional)

    def extra_repr(self):
        return f"weight={self.weight:g}, null_context={self.null_context.tolist()}"


def _dtype_of(module):
    """The floating dtype of a module's parameters (None for a plain callable or none at all)."""
    if isinstance(module, nn.Module):
        for p in module.parameters():
            if p.is_floating_point():
                return p.dtype
    return None


class TimeStages:
    """The stages of a ContinuousFlow: stage k is the ODE's solution at time k / K (K =
    ``count``), computed by the flow's solver with the ``solver`` settings, if given; the
    stages run over the ODE time, from 0 to ``end`` = 1 (see ``Flow.stages``)."""

    end = 1

    def __init__(self, ode, time_steps, solver=None):
        self.ode, self.count = ode, check_positive_int(time_steps, "time_steps")
        self.times = torch.linspace(0.0, 1.0, time_steps + 1, dtype=torch.float64)
        if solver is not None and not isinstance(solver, dict):
            raise TypeError(f"solver must be a dict of solver settings such as {{'method': 'rk4', 'steps': 10}} or "
                            f"None, got {type(solver).__name__} {solver!r}")
        self.settings = dict(solver or {})
        with ode.solver(**self.settings):  # bad settings fail here
            pass

    @torch.no_grad()
    def points(self, x, inverse=False, log_det=False, context=None):
        """[x(0), x(1/K), ..., x(1)] from x(0) = ``x`` (with ``inverse=True``: [x(1), x(1 - 1/K),
        ..., x(0)] from x(1) = ``x``) and, with ``log_det``, the log|det| from the first time to
        each, in one solve (``ContinuousFlow.trajectory``)."""
        with self.ode.solver(**self.settings):
            out = self.ode.trajectory(x, self.times.flip(0) if inverse else self.times, log_det, context)
        return tuple(list(part) for part in out) if log_det else list(out)

    @torch.no_grad()
    def back_from(self, k, x, context=None):
        """(x(0), log|det dx(0)/dx(k / K)|) for x(k / K) = ``x``: stage k carried back to time 0
        (for the ``context`` of a conditional flow)."""
        if check_stage(k, self.count) == 0:
            return x, x.new_zeros(x.shape[0])
        with self.ode.solver(**self.settings):
            back, log_det = self.ode.trajectory(x, self.times[[k, 0]], log_det=True, context=context)
        return back[-1], log_det[-1]

    def name(self, t):
        """'the base', 'along the ODE' or 'the data: the ODE solved to t = 1'."""
        if t <= 0:
            return "the base"
        return "the data: the ODE solved to t = 1" if t >= 1 else "along the ODE"


def flow_matching_loss(velocity, x, z, t, sigma_min=0.0, context=None):
    """Conditional flow matching with straight paths from base noise ``z`` to data ``x`` (both
    (batch, dim)) at times ``t`` (batch,): the batch mean of || v(x_t, t) - u ||^2 with
    x_t = (1 - (1 - sigma_min) t) z + t x and u = dx_t/dt = x - (1 - sigma_min) z.
    ``sigma_min`` > 0 leaves the data smoothed by a Gaussian of that width at t = 1 (Lipman et
    al. 2023); 0 is the rectified-flow path of Liu et al. 2023. With a ``context`` c ((batch, k),
    paired with x) the velocity is v(x_t, t, c): conditional flow matching."""
    check_callable(velocity, "velocity", "a function v(x, t), e.g. a VelocityMLP")
    x = check_batch(x, None, "x")
    if len(x) == 0:
        raise ValueError("x is empty: the loss is a mean over at least one point")
    z = check_batch(z, x.shape[1], "z", owner="data x", dtype=x.dtype)
    if len(z) != len(x) or not isinstance(t, torch.Tensor) or t.shape != (len(x),):
        raise ValueError(f"flow_matching_loss pairs each point with one noise and one time: x, z and t must have "
                         f"{len(x)} rows, got z of shape {tuple(z.shape)} and t of shape "
                         f"{tuple(getattr(t, 'shape', ()))}")
    if not ((t >= 0) & (t <= 1)).all():
        raise ValueError("t must hold times in [0, 1], the path's start (the noise) and end (the data)")
    check_number(sigma_min, "sigma_min", low=0, high=1, high_open=True)
    t = t.reshape(-1, 1)
    shrink = 1 - sigma_min
    x_t = (1 - shrink * t) * z + t * x
    v = velocity(x_t, t[:, 0]) if context is None else velocity(x_t, t[:, 0], context)
    return (checked_velocity(v, x_t) - (x - shrink * z)).square().sum(-1).mean()
