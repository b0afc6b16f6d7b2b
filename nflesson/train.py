"""Training loops: maximum likelihood on samples (``fit``), reverse KL against an
unnormalised log-density (``fit_reverse_kl``) and conditional flow matching of a continuous-time
flow's velocity (``fit_flow_matching``). All three run one loop (``_train``) with one set of
settings (``TrainingSettings``); the loop reports its losses and snapshot steps to a recorder
(nflesson.history.SnapshotRecorder), which makes the ``History`` for plots, widgets and GIFs."""

import dataclasses
import math
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import trange

from .bijector import Bijector
from .checks import (check_batch, check_bounds, check_callable, check_finite_rows, check_flag, check_number,
                     check_positive, check_positive_int, check_seed)
from .continuous import ContinuousFlow, flow_matching_loss
from .flow import Flow, continuous_of
from .history import SnapshotRecorder
from .threads import one_thread as _one_thread  # training runs on one CPU thread


class TrainingError(RuntimeError):
    """Raised when the loss stops being a finite number. ``history`` holds what the run recorded
    until then (its losses and snapshots), as an interrupted run's History does."""

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


class TrainingWarning(UserWarning):
    """Issued when a run's loss blows up or ends above where it started (the learning rate is
    probably too large), and when a run is stopped before its last step. The message is also
    kept in the History's ``notes``."""


warnings.filterwarnings("always", category=TrainingWarning)  # every run's warning, not only the first


@dataclass(frozen=True)
class TrainingSettings:
    """The settings of every training loop, checked in one place: ``steps`` steps of Adam at
    learning rate ``lr`` (cosine decay to lr / 100) on minibatches of ``batch_size``, seeded by
    ``seed``, with a progress bar if ``progress``; a snapshot every ``snapshot_every`` steps
    (None: ``frames`` snapshots over the run) and after the last, each with ``n_samples``
    samples from fixed base noise and, for 1D and 2D flows, the density on a ``grid_size``-point
    grid per axis over ``bounds`` (one (low, high) per dimension; None: the target's box, or the
    data's range with a margin). A conditional flow's snapshots draw its m (up to 4) contexts,
    so its loops default to ``CONDITIONAL_SNAPSHOTS`` (a coarser grid and fewer samples per
    context: a snapshot of 3 contexts then costs about what one of an unconditional flow does)."""

    steps: int = 1000
    batch_size: int = 256
    lr: float = 3e-3
    snapshot_every: int = None
    frames: int = 50
    seed: int = 0
    progress: bool = True
    bounds: tuple = None
    grid_size: int = 64
    n_samples: int = 1000

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive(self.lr, "lr")
        if self.snapshot_every is not None:
            check_positive_int(self.snapshot_every, "snapshot_every")
        check_positive_int(self.frames, "frames")
        check_seed(self.seed)
        check_flag(self.progress, "progress")
        check_positive_int(self.grid_size, "grid_size")
        check_positive_int(self.n_samples, "n_samples")

    @classmethod
    def of(cls, loop, given, **defaults):
        """The settings a training loop was ``given`` (a dict of keyword arguments), over the
        loop's own ``defaults`` and then the class's; an unknown name is refused, naming the
        settings there are."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise TypeError(f"{loop}() got unknown settings {unknown}; its settings are {names}")
        return cls(**{**defaults, **given})

    @property
    def every(self):
        """Steps between two snapshots."""
        return self.snapshot_every or max(1, self.steps // self.frames)


def fit(flow, data, transform=None, context=None, **settings):
    """Maximum likelihood: minimise NLL = -mean log p(x) over minibatches of ``data`` with Adam
    and a cosine learning-rate decay. ``data`` is a target (fresh samples every step) or a
    (n, dim) tensor (minibatches drawn from it). ``transform``, if given, is applied to every
    minibatch before scoring: ``transform=nflesson.dequantize`` adds fresh uniform noise at
    every step (``History.target_samples`` keeps the untransformed points). ``settings``:
    those of ``TrainingSettings`` (steps=1000, batch_size=256, lr=3e-3, 50 snapshots, ...).
    Returns a History. For a Flow holding a ContinuousFlow this is maximum likelihood through
    the ODE (FFJORD): each step solves it with its divergence and backpropagates through the
    solver, so a fixed-step solver (e.g. method="rk4", steps=10) keeps steps affordable.

    A conditional flow q(x | c) trains on pairs: ``data`` a conditional target (whose ``sample``
    draws (x, c) pairs), or a tensor of points with ``context`` the (n, k) tensor of their
    contexts; the loss is -mean log q(x | c). Its snapshots are drawn for a few fixed contexts
    (``History.context``, (m, k)): a target's ``snapshot_contexts`` (their first, middle and
    last if it has more than 4), or up to 3 distinct rows of ``context`` (the first, middle and
    last in sorted order), with the target's samples given each (``History.target_samples``)."""
    settings = TrainingSettings.of("fit", settings, **_snapshot_defaults(flow))
    _check_flow(flow, "fit")
    transformed = _transformer(flow, transform)
    batch, target_samples, bounds, snapshot_contexts = _minibatches(data, flow, settings, context)

    def loss():
        x, c = batch()
        return -flow.log_prob(transformed(x), c).mean()

    recorder = _recorder(flow, "maximum likelihood", bounds, target_samples, settings, context=snapshot_contexts)
    return _train(flow, loss, settings, recorder)


def fit_reverse_kl(flow, log_density, **settings):
    """Variational inference: minimise mean(log q(x) - log p~(x)) over x ~ q (the flow, sampled
    with the reparametrisation trick), which is KL(q || p) - log Z for p = p~ / Z.
    ``log_density`` is a callable or an object with ``log_prob`` (e.g. an energy from
    ``nflesson.data``), whose ``bounds`` and ``sample`` the pictures use when it has them; a 1D
    or 2D flow needs ``bounds`` for its density grid otherwise. ``settings``: those of
    ``TrainingSettings``. Returns a History."""
    settings = TrainingSettings.of("fit_reverse_kl", settings)
    _check_flow(flow, "fit_reverse_kl")
    if isinstance(log_density, type):
        raise TypeError(f"log_density must be an object or a function, got the class {log_density.__name__} itself: "
                        "e.g. nflesson.data.get('u1')")
    log_p = getattr(log_density, "log_prob", log_density)
    check_callable(log_p, "log_density", "a function of the points (batch, dim) or an object with log_prob")
    if getattr(log_density, "dim", flow.dim) != flow.dim:
        raise ValueError(f"the target has dim = {log_density.dim} but the flow has dim = {flow.dim}")
    bounds = settings.bounds or getattr(log_density, "bounds", None)
    if bounds is None:
        if flow.dim <= 2:
            raise ValueError("pass bounds=((xmin, xmax), (ymin, ymax)) for the plotting grid")
        bounds = ((-3.0, 3.0),) * flow.dim  # nothing is drawn on a grid above 2D
    bounds = check_bounds(bounds, flow.dim)
    target_samples = None
    if hasattr(log_density, "sample"):
        target_samples = log_density.sample(settings.n_samples, generator=torch.Generator().manual_seed(settings.seed))

    def loss():
        x, log_q = flow.sample_and_log_prob(settings.batch_size)
        log_p_x = log_p(x)
        if not isinstance(log_p_x, torch.Tensor) or log_p_x.shape != log_q.shape:
            raise ValueError(f"log_density must return one log-density per point, shape ({len(x)},) for points of "
                             f"shape {tuple(x.shape)}, got {_shape_of(log_p_x)}")
        return (log_q - log_p_x).mean()

    return _train(flow, loss, settings, _recorder(flow, "reverse KL", bounds, target_samples, settings))


SNAPSHOT_SOLVER = {"method": "rk4", "steps": 4}


def fit_flow_matching(flow_or_velocity, data, sigma_min=0.0, snapshot_solver=None, context=None, transform=None,
                      **settings):
    """Conditional flow matching (Lipman et al. 2023; Liu et al. 2023): fit the velocity v of a
    continuous-time flow by minimising ``flow_matching_loss``, the mean of
    || v(x_t, t) - (x - z) ||^2 over t ~ U[0, 1], z ~ the flow's base and x ~ ``data``, on the
    straight path x_t = (1 - t) z + t x (``sigma_min`` > 0: Lipman's path, which ends on the
    data smoothed by N(0, sigma_min^2)). No ODE is solved while training: a step costs one pass
    of v. ``flow_or_velocity``: a Flow holding one ContinuousFlow, a ContinuousFlow, or a
    velocity module with a ``dim`` (e.g. ``VelocityMLP``), trained in place. ``data`` is a
    target or a tensor, as for ``fit``. ``settings``: those of ``TrainingSettings``, with
    defaults of their own here (steps=2000, batch_size=512, lr=1e-2, 25 snapshots,
    grid_size=48: steps are cheap, and each snapshot solves an ODE).

    Returns a History like ``fit``'s (objective "flow matching"; the states are those of
    ``Flow([the ContinuousFlow])``). Drawing the snapshots is what costs, when their pictures
    are first read: each solves the ODE with its divergence on the grid, with ``snapshot_solver``
    (default ``{"method": "rk4", "steps": 4}``: cheap, and only for the pictures); the flow keeps
    its own solver for everything else. A
    conditional flow (its velocity v(x, t, c)) trains on pairs, as in ``fit``: conditional flow
    matching, with snapshots for a few fixed contexts as there. ``transform`` is applied to
    every minibatch of data, as in ``fit`` (e.g. fresh dequantization noise at every step)."""
    settings = TrainingSettings.of("fit_flow_matching", settings, **{
        "steps": 2000, "batch_size": 512, "lr": 1e-2, "frames": 25, "grid_size": 48,
        **_snapshot_defaults(flow_or_velocity, grid_size=40)})
    flow, continuous = _flow_of(flow_or_velocity)
    transformed = _transformer(flow, transform)
    check_number(sigma_min, "sigma_min", low=0, high=1, high_open=True)
    if snapshot_solver is not None and not isinstance(snapshot_solver, dict):
        raise TypeError(f"snapshot_solver must be a dict of solver settings, e.g. {SNAPSHOT_SOLVER}, got "
                        f"{type(snapshot_solver).__name__}")
    snapshot_solver = dict(SNAPSHOT_SOLVER if snapshot_solver is None else snapshot_solver)
    with continuous.solver(**snapshot_solver):  # a bad setting fails now, not at the first snapshot
        pass
    batch, target_samples, bounds, snapshot_contexts = _minibatches(data, flow, settings, context)

    def loss():
        x, c = batch()
        x = transformed(x)
        z = flow.base.sample((len(x),))
        t = torch.rand(len(x), dtype=x.dtype)
        return flow_matching_loss(continuous.velocity, x, z, t, sigma_min, context=c)

    recorder = _recorder(flow, "flow matching", bounds, target_samples, settings,
                         scope=lambda copy: continuous_of(copy).solver(**snapshot_solver), context=snapshot_contexts)
    return _train(flow, loss, settings, recorder)


def _transformer(flow, transform):
    """The function applied to every minibatch: ``transform`` (checked to be callable, and its
    output to be a batch of the flow's points), or the identity for None."""
    if transform is None:
        return lambda x: x
    check_callable(transform, "transform", "a function of a minibatch (e.g. nflesson.dequantize) or None")
    return lambda x: flow.checked(transform(x), "the output of transform")


CONDITIONAL_SNAPSHOTS = {"grid_size": 48, "n_samples": 500}


def _snapshot_defaults(model, **options):
    """The snapshot settings a conditional ``model`` (anything with a context_size > 0) defaults
    to (``CONDITIONAL_SNAPSHOTS``, updated by ``options``); none for an unconditional one."""
    k = getattr(model, "context_size", 0)
    if isinstance(model, type) or not isinstance(k, int) or k <= 0:
        return {}
    return {**CONDITIONAL_SNAPSHOTS, **options}


def _flow_of(model):
    """(the Flow, its ContinuousFlow) for what fit_flow_matching was given."""
    if isinstance(model, Flow) and continuous_of(model) is not None:
        return model, continuous_of(model)
    if isinstance(model, ContinuousFlow):
        return Flow([model]), model
    is_velocity = isinstance(model, torch.nn.Module) and not isinstance(model, Bijector)
    if is_velocity and isinstance(getattr(model, "dim", None), int):
        continuous = ContinuousFlow(model.dim, model, context=getattr(model, "context_size", 0))
        return Flow([continuous]), continuous
    raise TypeError("flow matching trains the velocity of a continuous-time flow: pass a Flow holding one "
                    "nflesson.ContinuousFlow, a ContinuousFlow or a velocity module with a dim (e.g. "
                    f"nflesson.VelocityMLP(2)), got {type(model).__name__}")


def _check_flow(flow, loop):
    if isinstance(flow, type):
        raise TypeError(f"{loop} trains a flow, got the class {flow.__name__} itself: build one first, e.g. "
                        "nflesson.flows.realnvp(2)")
    if not isinstance(flow, Flow):
        raise TypeError(f"{loop} trains an nflesson.Flow (e.g. nflesson.flows.realnvp(2)), got "
                        f"{type(flow).__name__}; a single bijector b trains as nflesson.Flow([b])")


def _shape_of(value):
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


def _minibatches(data, flow, settings, context=None):
    """(batch(), samples of the target for the pictures, bounds, the contexts of the pictures)
    for a target (fresh samples every call, drawn in the flow's dtype) or an (n, dim) tensor of
    the flow's dtype (minibatches drawn from it; all of it when batch_size >= n), checked before
    training. batch() gives (x, c): c is None for an unconditional flow, else the contexts of x
    (a conditional target's pairs, or the rows of ``context`` that go with the rows of data).
    For a conditional flow the contexts of the pictures are an (m, k) tensor and the target's
    samples a list of m tensors, one per context (``snapshot_contexts``, ``samples_near``)."""
    generator = torch.Generator().manual_seed(settings.seed)
    batch_size, dim, dtype, k = settings.batch_size, flow.dim, flow.dtype, flow.context_size
    conditional_target = getattr(data, "context_size", 0) > 0
    if k and not isinstance(data, torch.Tensor) and not conditional_target:
        raise TypeError(f"this flow is conditional (context of width {k}): train it on pairs, a conditional target "
                        "(e.g. nflesson.data.get('rotated_moons')) or a tensor of points with context=their contexts")
    if not k and (conditional_target or context is not None):
        raise ValueError("this flow is unconditional: to train on pairs (x, c), build it with context=k, e.g. "
                         "nflesson.flows.realnvp(2, context=1)")
    if context is not None and not isinstance(data, torch.Tensor):
        raise ValueError("context goes with a tensor of points; a conditional target draws its own pairs")
    snapshot_contexts, target_samples = None, None
    if isinstance(data, torch.Tensor):
        data = check_batch(data, dim, "data", dtype=dtype)
        if len(data) == 0:
            raise ValueError("data is empty: training needs at least one point")
        check_finite_rows(data, "data")
        if k:
            context = flow.checked_context(context, len(data))
            check_finite_rows(context, "context")
            snapshot_contexts = distinct_contexts(context)
        bounds = check_bounds(settings.bounds or _padded_bounds(data), dim)
        if k:
            target_samples = [samples_near(data, context, c, settings.n_samples, len(snapshot_contexts))
                              for c in snapshot_contexts]
        else:
            target_samples = data[: settings.n_samples]

        def batch():
            if batch_size >= len(data):
                return data, context
            rows = torch.randint(len(data), (batch_size,), generator=generator)
            return data[rows], None if context is None else context[rows]
    elif isinstance(data, type):
        raise TypeError(f"data must be a tensor or a target, got the class {data.__name__} itself: e.g. "
                        "nflesson.data.get('moons')")
    elif callable(getattr(data, "sample", None)) and hasattr(data, "dim"):
        if data.dim != dim:
            raise ValueError(f"the data has dim = {data.dim} but the flow has dim = {dim}")
        if conditional_target and data.context_size != k:
            raise ValueError(f"the target's contexts have width {data.context_size} but the flow has context = {k}")
        bounds = check_bounds(settings.bounds or data.bounds, dim)
        if conditional_target:
            snapshot_contexts = few_contexts(data.snapshot_contexts).to(dtype)
            target_samples = [data.sample_given(c.expand(settings.n_samples, k), generator=generator)
                              for c in snapshot_contexts]

            def batch():
                x, c = data.sample(batch_size, generator=generator)
                return x.to(dtype), c.to(dtype)
        else:
            target_samples = data.sample(settings.n_samples, generator=generator)

            def batch():
                return data.sample(batch_size, generator=generator).to(dtype), None
    else:
        raise TypeError("data must be a tensor of points (n, dim) or a target with sample() and dim (e.g. "
                        f"nflesson.data.get('moons')), got {type(data).__name__}")
    return batch, target_samples, bounds, snapshot_contexts


MAX_SNAPSHOT_CONTEXTS = 4  # more contexts per snapshot make every snapshot and every frame slower


def few_contexts(contexts):
    """The contexts a conditional run's snapshots are drawn for, from a target's
    ``snapshot_contexts`` (m, k): all of them if m <= 4, else the first, middle and last."""
    return first_middle_last(contexts, MAX_SNAPSHOT_CONTEXTS)


def distinct_contexts(context, most=3):
    """Up to ``most`` (3) distinct rows of the contexts ``context`` (n, k) of a data set: the
    first, middle and last of its distinct rows in sorted order (one-hot class contexts in class
    order: the lowest, a middle and the highest class present), as an (m, k) tensor."""
    rows = torch.unique(context, dim=0)  # sorted row by row, lexicographically
    one_hot = len(rows[0]) > 1 and bool(((rows == 0) | (rows == 1)).all()) and bool((rows.sum(1) == 1).all())
    if one_hot:
        rows = rows[rows.argmax(1).argsort()]
    return first_middle_last(rows, most)


def first_middle_last(rows, most):
    """All the ``rows`` if there are at most ``most``, else the first, middle and last."""
    m = len(rows)
    return rows if m <= most else rows[[0, (m - 1) // 2, m - 1]]


def samples_near(data, context, c, n_samples, m):
    """The points of ``data`` to draw as the target given context ``c``: those whose row of
    ``context`` is exactly c (up to ``n_samples``), or, when fewer than len(data) // (5 m) share it
    (continuous contexts), that many points whose contexts lie nearest to c (in data order among
    equals)."""
    distance = (context - c).square().sum(1)
    exact = int((distance == 0).sum())
    count = min(n_samples, max(exact, len(data) // (5 * m), 1))
    return data[torch.argsort(distance, stable=True)[:count]]


def _recorder(flow, objective, bounds, target_samples, settings, **options):
    return SnapshotRecorder(flow, objective, bounds, target_samples, settings.grid_size, settings.n_samples, **options)


def _train(flow, loss_fn, settings, recorder):
    """The loop all three objectives share: Adam on ``loss_fn()`` for ``settings.steps`` steps on
    one thread, seeded, with a progress bar; it tells ``recorder`` each loss and asks it for a
    snapshot every ``settings.every`` steps and after the last. Returns ``recorder.history``.

    A run stopped early keeps what it recorded: when the learner interrupts it (KeyboardInterrupt,
    the notebook's Stop button) the History comes back with ``interrupted`` set and a note; when
    the loss stops being finite, TrainingError carries it. A loss that blows up or ends above
    where it started gives a TrainingWarning (``LossWatch``). The flow is left in eval mode."""
    steps = settings.steps
    parameters = [p for p in flow.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("this flow has no trainable parameters")
    optimizer, schedule = optimizer_and_schedule(parameters, settings.lr, steps)
    history, watch = recorder.history, LossWatch(settings.lr)
    flow.train()
    try:
        with torch.random.fork_rng(), _one_thread():
            torch.manual_seed(settings.seed)
            recorder.start()
            with trange(steps, disable=not settings.progress, desc=history.objective) as bar:
                for step in bar:
                    loss = _finite(loss_fn(), step, flow, history, settings.lr)
                    value = loss.item()
                    if step % settings.every == 0:
                        recorder.snapshot(step, value)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    recorder.loss(value)
                    watch.step(step, value, history)
                    if step % max(1, steps // 100) == 0:
                        bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            with torch.no_grad():
                final = _finite(loss_fn(), steps, flow, history, settings.lr).item()
            recorder.snapshot(steps, final)
        watch.end(history)
    except KeyboardInterrupt:
        history.interrupted = True
        note(history, f"training was stopped at step {len(history.losses)} of {steps}: the History keeps the "
                      f"{len(history.losses)} losses and {len(history.snapshots)} snapshots recorded until then, "
                      "and the flow the parameters it had when stopped")
    finally:
        flow.eval()
    return history


def note(history, message):
    """Keep ``message`` in the History's notes and show it as a TrainingWarning."""
    history.notes.append(message)
    warnings.warn(message, TrainingWarning, stacklevel=4)


def _finite(loss, step, flow, history, lr):
    """``loss`` if it is finite, else TrainingError carrying ``history``. If the parameters
    themselves are no longer finite, the flow is put back to its last snapshot first."""
    if torch.isfinite(loss):
        return loss
    message = f"the loss became {loss.item()} at step {step}"
    if all(torch.isfinite(p).all() for p in flow.parameters()):
        message += f"; the flow keeps its parameters of step {step}"
    elif history.snapshots:
        flow.load_state_dict(history.snapshots[-1].state)
        message += (f"; its parameters had become NaN or inf, so the flow was put back to its last snapshot "
                    f"(step {history.snapshots[-1].step})")
    raise TrainingError(f"{message}. Try a smaller lr (now {lr}), fewer or smaller layers, or data scaled to about "
                        "unit size; the error's .history holds what was recorded", history)


class LossWatch:
    """Tells a run whose loss blows up from a noisy one, from its losses alone. Two signs, each
    noted once (``note``): a loss more than 10 max(1, |L_0|) above the first loss L_0 (a jump
    of that size is a step that overshot, not noise), and, for runs of 50 steps or more, a final
    mean loss (the last tenth of the steps) more than 3 standard deviations of those last losses
    above L_0 (training made the model worse)."""

    def __init__(self, lr):
        self.lr, self.first, self.warned = lr, None, False

    def step(self, step, value, history):
        if self.first is None:
            self.first = value
        elif not self.warned and value > self.first + 10 * max(1.0, abs(self.first)):
            self.warned = True
            note(history, f"the loss jumped to {value:.4g} at step {step} (it started at {self.first:.4g}): the "
                          f"learning rate (lr = {self.lr:g}) is probably too large for this flow; try lr = "
                          f"{self.lr / 10:g}")

    def end(self, history):
        losses = history.losses
        if len(losses) < 50:
            return
        last = torch.tensor(losses[-max(5, len(losses) // 10):], dtype=torch.float64)
        mean, spread = last.mean().item(), last.std().item()
        if mean > self.first + 3 * spread and math.isfinite(mean):
            note(history, f"the loss ended at {mean:.4g} (the mean of the last {len(last)} steps), above where it "
                          f"started ({self.first:.4g}): training made the model worse; the learning rate "
                          f"(lr = {self.lr:g}) is probably too large, try lr = {self.lr / 10:g}")


def optimizer_and_schedule(parameters, lr, steps):
    """Adam with a cosine decay of the learning rate from lr to lr / 100 over ``steps``.
    Adam runs its fused kernel, which updates all parameters in one call (on the course's
    flows a training step takes about 20% less time than with the default per-tensor loop),
    where this torch has one for the parameters' device (CPU since torch 2.4, CUDA before);
    elsewhere (e.g. MPS on some versions) Adam refuses it and the default loop runs."""
    parameters = list(parameters)
    try:
        optimizer = torch.optim.Adam(parameters, lr=lr, fused=True)
    except RuntimeError:  # "`fused=True` requires all the params to be ... of supported devices"
        optimizer = torch.optim.Adam(parameters, lr=lr)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 100)


def _padded_bounds(data, margin=0.15):
    """The data's range with ``margin`` of its width on each side (1 on each side of a column
    that does not vary)."""
    lo, hi = data.min(0).values, data.max(0).values
    pad = (hi - lo) * margin
    pad = torch.where(pad > 0, pad, torch.ones_like(pad))
    return tuple((float(a - p), float(b + p)) for a, b, p in zip(lo, hi, pad))
