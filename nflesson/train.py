"""Training loops: maximum likelihood on samples (``fit``), reverse KL against an
unnormalised log-density (``fit_reverse_kl``) and conditional flow matching of a continuous-time
flow's velocity (``fit_flow_matching``). All three run one loop (``_train``) with one set of
settings (``TrainingSettings``); the loop reports its losses and snapshot steps to a recorder
(nflesson.history.SnapshotRecorder), which makes the ``History`` for plots, widgets and GIFs."""

import dataclasses
from dataclasses import dataclass

import torch
from tqdm.auto import trange

from .bijector import Bijector
from .checks import check_batch, check_positive, check_positive_int
from .continuous import ContinuousFlow, flow_matching_loss
from .flow import Flow, continuous_of
from .history import SnapshotRecorder
from .threads import one_thread as _one_thread  # training runs on one CPU thread


class TrainingError(RuntimeError):
    """Raised when the loss stops being a finite number."""


@dataclass(frozen=True)
class TrainingSettings:
    """The settings of every training loop, checked in one place: ``steps`` steps of Adam at
    learning rate ``lr`` (cosine decay to lr / 100) on minibatches of ``batch_size``, seeded by
    ``seed``, with a progress bar if ``progress``; a snapshot every ``snapshot_every`` steps
    (None: ``frames`` snapshots over the run) and after the last, each with ``n_samples``
    samples from fixed base noise and, for 1D and 2D flows, the density on a ``grid_size``-point
    grid per axis over ``bounds`` (one (low, high) per dimension; None: the target's box, or the
    data's range with a margin)."""

    steps: int = 1000
    batch_size: int = 256
    lr: float = 3e-3
    snapshot_every: int = None
    frames: int = 50
    seed: int = 0
    progress: bool = True
    bounds: tuple = None
    grid_size: int = 80
    n_samples: int = 1000

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive(self.lr, "lr")
        if self.snapshot_every is not None:
            check_positive_int(self.snapshot_every, "snapshot_every")
        check_positive_int(self.frames, "frames")
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


def fit(flow, data, transform=None, **settings):
    """Maximum likelihood: minimise NLL = -mean log p(x) over minibatches of ``data`` with Adam
    and a cosine learning-rate decay. ``data`` is a target (fresh samples every step) or a
    (n, dim) tensor (minibatches drawn from it). ``transform``, if given, is applied to every
    minibatch before scoring: ``transform=nflesson.dequantize`` adds fresh uniform noise at
    every step (``History.target_samples`` keeps the untransformed points). ``settings``:
    those of ``TrainingSettings`` (steps=1000, batch_size=256, lr=3e-3, 50 snapshots, ...).
    Returns a History. For a Flow holding a ContinuousFlow this is maximum likelihood through
    the ODE (FFJORD): each step solves it with its divergence and backpropagates through the
    solver, so a fixed-step solver (e.g. method="rk4", steps=10) keeps steps affordable."""
    settings = TrainingSettings.of("fit", settings)
    batch, target_samples, bounds = _minibatches(data, flow.dim, settings)

    def loss():
        x = batch()
        return -flow.log_prob(x if transform is None else transform(x)).mean()

    return _train(flow, loss, settings, _recorder(flow, "maximum likelihood", bounds, target_samples, settings))


def fit_reverse_kl(flow, log_density, **settings):
    """Variational inference: minimise mean(log q(x) - log p~(x)) over x ~ q (the flow, sampled
    with the reparametrisation trick), which is KL(q || p) - log Z for p = p~ / Z.
    ``log_density`` is a callable or an object with ``log_prob`` (e.g. an energy from
    ``nflesson.data``), whose ``bounds`` and ``sample`` the pictures use when it has them; a 1D
    or 2D flow needs ``bounds`` for its density grid otherwise. ``settings``: those of
    ``TrainingSettings``. Returns a History."""
    settings = TrainingSettings.of("fit_reverse_kl", settings)
    log_p = getattr(log_density, "log_prob", log_density)
    bounds = settings.bounds or getattr(log_density, "bounds", None)
    if bounds is None:
        if flow.dim <= 2:
            raise ValueError("pass bounds=((xmin, xmax), (ymin, ymax)) for the plotting grid")
        bounds = ((-3.0, 3.0),) * flow.dim  # nothing is drawn on a grid above 2D
    target_samples = None
    if hasattr(log_density, "sample"):
        target_samples = log_density.sample(settings.n_samples, generator=torch.Generator().manual_seed(settings.seed))

    def loss():
        x, log_q = flow.sample_and_log_prob(settings.batch_size)
        return (log_q - log_p(x)).mean()

    return _train(flow, loss, settings, _recorder(flow, "reverse KL", bounds, target_samples, settings))


SNAPSHOT_SOLVER = {"method": "rk4", "steps": 4}


def fit_flow_matching(flow_or_velocity, data, sigma_min=0.0, snapshot_solver=None, **settings):
    """Conditional flow matching (Lipman et al. 2023; Liu et al. 2023): fit the velocity v of a
    continuous-time flow by minimising ``flow_matching_loss``, the mean of
    || v(x_t, t) - (x - z) ||^2 over t ~ U[0, 1], z ~ the flow's base and x ~ ``data``, on the
    straight path x_t = (1 - t) z + t x (``sigma_min`` > 0: Lipman's path, which ends on the
    data smoothed by N(0, sigma_min^2)). No ODE is solved while training: a step costs one pass
    of v. ``flow_or_velocity``: a Flow holding one ContinuousFlow, a ContinuousFlow, or a
    velocity module with a ``dim`` (e.g. ``VelocityMLP``), trained in place. ``data`` is a
    target or a tensor, as for ``fit``. ``settings``: those of ``TrainingSettings``, with
    defaults of their own here (steps=2000, batch_size=512, lr=1e-2, 25 snapshots,
    grid_size=60: steps are cheap).

    Returns a History like ``fit``'s (objective "flow matching"; the states are those of
    ``Flow([the ContinuousFlow])``). The snapshots are what costs: each solves the ODE with its
    divergence on the grid, with ``snapshot_solver`` (default ``{"method": "rk4", "steps": 4}``:
    cheap, and only for the pictures); the flow keeps its own solver for everything else."""
    settings = TrainingSettings.of("fit_flow_matching", settings, steps=2000, batch_size=512, lr=1e-2, frames=25,
                                   grid_size=60)
    flow, continuous = _flow_of(flow_or_velocity)
    if isinstance(sigma_min, bool) or not isinstance(sigma_min, (int, float)) or not 0 <= sigma_min < 1:
        raise ValueError(f"sigma_min must be a number in [0, 1), got {sigma_min!r}")
    snapshot_solver = dict(SNAPSHOT_SOLVER if snapshot_solver is None else snapshot_solver)
    with continuous.solver(**snapshot_solver):  # a bad setting fails now, not at the first snapshot
        pass
    batch, target_samples, bounds = _minibatches(data, flow.dim, settings)
    dtype = flow.base_loc.dtype

    def loss():
        x = batch().to(dtype)
        z = flow.base.sample((len(x),)).to(dtype)
        t = torch.rand(len(x), dtype=dtype)
        return flow_matching_loss(continuous.velocity, x, z, t, sigma_min)

    recorder = _recorder(flow, "flow matching", bounds, target_samples, settings,
                         context=lambda: continuous.solver(**snapshot_solver))
    return _train(flow, loss, settings, recorder)


def _flow_of(model):
    """(the Flow, its ContinuousFlow) for what fit_flow_matching was given."""
    if isinstance(model, Flow) and continuous_of(model) is not None:
        return model, continuous_of(model)
    if isinstance(model, ContinuousFlow):
        return Flow([model]), model
    is_velocity = isinstance(model, torch.nn.Module) and not isinstance(model, Bijector)
    if is_velocity and isinstance(getattr(model, "dim", None), int):
        continuous = ContinuousFlow(model.dim, model)
        return Flow([continuous]), continuous
    raise ValueError("flow matching trains the velocity of a continuous-time flow: pass a Flow holding one "
                     "nflesson.ContinuousFlow, a ContinuousFlow or a velocity module with a dim, "
                     f"got {type(model).__name__}")


def _minibatches(data, dim, settings):
    """(batch(), samples of the target for the pictures, bounds) for a target (fresh samples
    every call) or an (n, dim) tensor (minibatches drawn from it; all of it when
    batch_size >= n)."""
    generator = torch.Generator().manual_seed(settings.seed)
    batch_size = settings.batch_size
    if hasattr(data, "sample"):
        target_dim, bounds = data.dim, settings.bounds or data.bounds
        target_samples = data.sample(settings.n_samples, generator=generator)

        def batch():
            return data.sample(batch_size, generator=generator)
    else:
        data = check_batch(data, dim, "data")
        target_dim, bounds = data.shape[1], settings.bounds or _padded_bounds(data)
        target_samples = data[: settings.n_samples]

        def batch():
            if batch_size >= len(data):
                return data
            return data[torch.randint(len(data), (batch_size,), generator=generator)]

    if target_dim != dim:
        raise ValueError(f"the data has dim = {target_dim} but the flow has dim = {dim}")
    return batch, target_samples, bounds


def _recorder(flow, objective, bounds, target_samples, settings, **options):
    return SnapshotRecorder(flow, objective, bounds, target_samples, settings.grid_size, settings.n_samples, **options)


def _train(flow, loss_fn, settings, recorder):
    """The loop all three objectives share: Adam on ``loss_fn()`` for ``settings.steps`` steps on
    one thread, seeded, with a progress bar; it tells ``recorder`` each loss and asks it for a
    snapshot every ``settings.every`` steps and after the last. Returns ``recorder.history``."""
    steps = settings.steps
    parameters = [p for p in flow.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("this flow has no trainable parameters")
    optimizer, schedule = optimizer_and_schedule(parameters, settings.lr, steps)
    flow.train()
    with torch.random.fork_rng(), _one_thread():
        torch.manual_seed(settings.seed)
        recorder.start()
        bar = trange(steps, disable=not settings.progress, desc=recorder.history.objective)
        for step in bar:
            loss = loss_fn()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at step {step}: try a smaller lr (now {settings.lr}), "
                    "fewer or smaller layers, or data scaled to about unit size"
                )
            if step % settings.every == 0:
                recorder.snapshot(step, loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            recorder.loss(loss.item())
            if step % max(1, steps // 100) == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        with torch.no_grad():
            final = loss_fn().item()
        recorder.snapshot(steps, final)
    return recorder.history


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
    lo, hi = data.min(0).values, data.max(0).values
    pad = (hi - lo) * margin
    return tuple((float(a - p), float(b + p)) for a, b, p in zip(lo, hi, pad))
