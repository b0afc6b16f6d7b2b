"""Training loops: maximum likelihood on samples (``fit``), reverse KL against an
unnormalised log-density (``fit_reverse_kl``) and conditional flow matching of a continuous-time
flow's velocity (``fit_flow_matching``). All three run one loop (``_train``) with the settings
they share (``TrainingSettings``) and record a ``History`` for plots, widgets and GIFs."""

import contextlib
import dataclasses
from dataclasses import dataclass, field

import torch
from tqdm.auto import trange

from .bijector import Bijector
from .checks import check_batch, check_positive, check_positive_int
from .continuous import ContinuousFlow, flow_matching_loss
from .flow import Flow
from .threads import one_thread as _one_thread  # training runs on one CPU thread


class TrainingError(RuntimeError):
    """Raised when the loss stops being a finite number."""


@dataclass
class Snapshot:
    """The model at one step: its loss, samples from fixed base noise (so that frames move
    smoothly), its log-density on the history's grid (None without a grid), and a copy of its
    parameters."""

    step: int
    loss: float
    samples: torch.Tensor
    log_density: torch.Tensor
    state: dict


@dataclass
class History:
    """What a training run recorded. ``losses[k]`` is the loss at step k. ``grid`` is the list
    of 1D tick tensors (one per dimension) on which snapshot densities are evaluated, for 1D
    and 2D flows only (None above: a grid would not fit in memory); ``data`` holds reference
    samples of the target for plots (None if it has none)."""

    objective: str
    bounds: tuple
    grid: list
    data: torch.Tensor = None
    losses: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)

    def save_gif(self, path, fps=8, dpi=72, reference=None, figsize=(10, 3.2)):
        """Write the run as an animated GIF, one frame per snapshot: samples against the target,
        the model density, the loss (``reference``: a horizontal line on it, e.g. the target's
        entropy). Frames are blitted from one matplotlib figure (only the moving artists are
        redrawn) and written by Pillow, as matplotlib's PillowWriter does. Returns ``path``."""
        from .viz import SnapshotFigure, write_gif

        frame = SnapshotFigure(self, reference, figsize=figsize, dpi=dpi)
        return write_gif([frame.render(k) for k in range(len(self.snapshots))], path, fps)


@dataclass(frozen=True)
class TrainingSettings:
    """The settings every training loop shares, checked in one place: ``steps`` steps of Adam
    at learning rate ``lr`` (cosine decay to lr / 100) on minibatches of ``batch_size``; a
    snapshot every ``snapshot_every`` steps (None: 50 over the run) and after the last, each
    with ``n_samples`` samples from fixed base noise and, for 1D and 2D flows, the density on a
    ``grid_size``-point grid per axis; the run is seeded by ``seed``; ``progress`` shows a bar."""

    steps: int = 1000
    batch_size: int = 256
    lr: float = 3e-3
    snapshot_every: int = None
    seed: int = 0
    progress: bool = True
    grid_size: int = 80
    n_samples: int = 1000

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive(self.lr, "lr")
        if self.snapshot_every is not None:
            check_positive_int(self.snapshot_every, "snapshot_every")
        check_positive_int(self.grid_size, "grid_size")
        check_positive_int(self.n_samples, "n_samples")

    @property
    def every(self):
        """Steps between two snapshots."""
        return self.snapshot_every or max(1, self.steps // 50)


def fit(flow, data, steps=1000, batch_size=256, lr=3e-3, snapshot_every=None, seed=0, progress=True,
        bounds=None, grid_size=80, n_samples=1000, transform=None):
    """Maximum likelihood: minimise NLL = -mean log p(x) over minibatches of ``data`` with Adam
    and a cosine learning-rate decay. ``data`` is a target (fresh samples every step) or a
    (n, dim) tensor (minibatches drawn from it). ``transform``, if given, is applied to every
    minibatch before scoring: ``transform=nflesson.dequantize`` adds fresh uniform noise at
    every step (``History.data`` keeps the untransformed points). Returns a History with a
    snapshot every ``snapshot_every`` steps (default: 50 frames over the run) and at the last
    step. For a Flow holding a ContinuousFlow this is maximum likelihood through the ODE
    (FFJORD): each step solves it with its divergence and backpropagates through the solver,
    so a fixed-step solver (e.g. method="rk4", steps=10) keeps steps affordable."""
    settings = TrainingSettings(steps=steps, batch_size=batch_size, lr=lr, snapshot_every=snapshot_every, seed=seed,
                                progress=progress, grid_size=grid_size, n_samples=n_samples)
    batch, reference, bounds = _minibatches(data, flow.dim, settings, bounds)

    def loss():
        x = batch()
        return -flow.log_prob(x if transform is None else transform(x)).mean()

    return _train(flow, loss, "maximum likelihood", reference, bounds, settings)


def fit_reverse_kl(flow, log_density, steps=1000, batch_size=256, lr=3e-3, snapshot_every=None, seed=0,
                   progress=True, bounds=None, grid_size=80, n_samples=1000):
    """Variational inference: minimise mean(log q(x) - log p~(x)) over x ~ q (the flow, sampled
    with the reparametrisation trick), which is KL(q || p) - log Z for p = p~ / Z.
    ``log_density`` is a callable or an object with ``log_prob`` (e.g. an energy from
    ``nflesson.data``); its ``bounds`` are used for the grid when it has them."""
    settings = TrainingSettings(steps=steps, batch_size=batch_size, lr=lr, snapshot_every=snapshot_every, seed=seed,
                                progress=progress, grid_size=grid_size, n_samples=n_samples)
    log_p = getattr(log_density, "log_prob", log_density)
    bounds = bounds or getattr(log_density, "bounds", None)
    if bounds is None:
        raise ValueError("pass bounds=((xmin, xmax), (ymin, ymax)) for the plotting grid")
    reference = None
    if hasattr(log_density, "sample"):
        reference = log_density.sample(n_samples, generator=torch.Generator().manual_seed(seed))

    def loss():
        x, log_q = flow.sample_and_log_prob(batch_size)
        return (log_q - log_p(x)).mean()

    return _train(flow, loss, "reverse KL", reference, bounds, settings)


SNAPSHOT_SOLVER = {"method": "rk4", "steps": 4}


def fit_flow_matching(flow_or_velocity, data, steps=2000, batch_size=512, lr=1e-2, snapshot_every=None, seed=0,
                      progress=True, bounds=None, grid_size=60, n_samples=1000, sigma_min=0.0, snapshot_solver=None):
    """Conditional flow matching (Lipman et al. 2023; Liu et al. 2023): fit the velocity v of a
    continuous-time flow by minimising ``flow_matching_loss``, the mean of
    || v(x_t, t) - (x - z) ||^2 over t ~ U[0, 1], z ~ the flow's base and x ~ ``data``, on the
    straight path x_t = (1 - t) z + t x (``sigma_min`` > 0: Lipman's path, which ends on the
    data smoothed by N(0, sigma_min^2)). No ODE is solved while training: a step costs one pass
    of v. ``flow_or_velocity``: a Flow holding one ContinuousFlow, a ContinuousFlow, or a
    velocity module with a ``dim`` (e.g. ``VelocityMLP``), trained in place. ``data`` is a
    target or a tensor, as for ``fit``; the other settings are ``TrainingSettings``.

    Returns a History like ``fit``'s (objective "flow matching"; the states are those of
    ``Flow([the ContinuousFlow])``), with a snapshot every ``snapshot_every`` steps (default:
    25 frames over the run) and at the last step. The snapshots are what costs: each solves
    the ODE with its divergence on the grid, with ``snapshot_solver`` (default
    ``{"method": "rk4", "steps": 4}``: cheap, and only for the pictures); the flow keeps its
    own solver for everything else."""
    settings = TrainingSettings(steps=steps, batch_size=batch_size, lr=lr, snapshot_every=snapshot_every, seed=seed,
                                progress=progress, grid_size=grid_size, n_samples=n_samples)
    if snapshot_every is None:
        settings = dataclasses.replace(settings, snapshot_every=max(1, steps // 25))
    flow, continuous = _flow_of(flow_or_velocity)
    if isinstance(sigma_min, bool) or not isinstance(sigma_min, (int, float)) or not 0 <= sigma_min < 1:
        raise ValueError(f"sigma_min must be a number in [0, 1), got {sigma_min!r}")
    snapshot_solver = dict(SNAPSHOT_SOLVER if snapshot_solver is None else snapshot_solver)
    with continuous.solver(**snapshot_solver):  # a bad setting fails now, not at the first snapshot
        pass
    batch, reference, bounds = _minibatches(data, flow.dim, settings, bounds)
    dtype = flow.base_loc.dtype

    def loss():
        x = batch().to(dtype)
        z = flow.base.sample((len(x),)).to(dtype)
        t = torch.rand(len(x), dtype=dtype)
        return flow_matching_loss(continuous.velocity, x, z, t, sigma_min)

    return _train(flow, loss, "flow matching", reference, bounds, settings,
                  snapshot_context=lambda: continuous.solver(**snapshot_solver))


def _flow_of(model):
    """(the Flow, its ContinuousFlow) for what fit_flow_matching was given."""
    if isinstance(model, Flow) and len(model.layers) == 1 and isinstance(model.layers[0], ContinuousFlow):
        return model, model.layers[0]
    if isinstance(model, ContinuousFlow):
        return Flow([model]), model
    is_velocity = isinstance(model, torch.nn.Module) and not isinstance(model, Bijector)
    if is_velocity and isinstance(getattr(model, "dim", None), int):
        continuous = ContinuousFlow(model.dim, model)
        return Flow([continuous]), continuous
    raise ValueError("flow matching trains the velocity of a continuous-time flow: pass a Flow holding one "
                     "nflesson.ContinuousFlow, a ContinuousFlow or a velocity module with a dim, "
                     f"got {type(model).__name__}")


def _minibatches(data, dim, settings, bounds=None):
    """(batch(), reference samples, bounds) for a target (fresh samples every call) or an
    (n, dim) tensor (minibatches drawn from it; all of it when batch_size >= n)."""
    generator = torch.Generator().manual_seed(settings.seed)
    batch_size = settings.batch_size
    if hasattr(data, "sample"):
        target_dim, bounds = data.dim, bounds or data.bounds
        reference = data.sample(settings.n_samples, generator=generator)

        def batch():
            return data.sample(batch_size, generator=generator)
    else:
        data = check_batch(data, dim, "data")
        target_dim, bounds = data.shape[1], bounds or _padded_bounds(data)
        reference = data[: settings.n_samples]

        def batch():
            if batch_size >= len(data):
                return data
            return data[torch.randint(len(data), (batch_size,), generator=generator)]

    if target_dim != dim:
        raise ValueError(f"the data has dim = {target_dim} but the flow has dim = {dim}")
    return batch, reference, bounds


def _train(flow, loss_fn, objective, reference, bounds, settings, snapshot_context=contextlib.nullcontext):
    """The loop all three objectives share: Adam on ``loss_fn()`` for ``settings.steps`` steps on
    one thread, seeded, with a progress bar and snapshots (taken inside ``snapshot_context()``)."""
    parameters = [p for p in flow.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("this flow has no trainable parameters")
    steps, grid_size = settings.steps, settings.grid_size
    dtype = parameters[0].dtype
    ticks, grid_points = None, None
    if len(bounds) <= 2:
        ticks = [torch.linspace(lo, hi, grid_size, dtype=dtype) for lo, hi in bounds]
        grid_points = torch.stack([t.flatten() for t in torch.meshgrid(*ticks, indexing="xy")], -1)
    history = History(objective, tuple(map(tuple, bounds)), ticks, reference)
    optimizer, schedule = optimizer_and_schedule(parameters, settings.lr, steps)

    def snapshot(step, loss):
        with snapshot_context():
            history.snapshots.append(_snapshot(flow, step, loss, noise, grid_points, grid_size))

    flow.train()
    with torch.random.fork_rng(), _one_thread():
        torch.manual_seed(settings.seed)
        noise = flow.base.sample((settings.n_samples,))
        bar = trange(steps, disable=not settings.progress, desc=objective)
        for step in bar:
            loss = loss_fn()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at step {step}: try a smaller lr (now {settings.lr}), "
                    "fewer or smaller layers, or data scaled to about unit size"
                )
            if step % settings.every == 0:
                snapshot(step, loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            history.losses.append(loss.item())
            if step % max(1, steps // 100) == 0:
                bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        with torch.no_grad():
            final = loss_fn().item()
        snapshot(steps, final)
    return history


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


@torch.no_grad()
def _snapshot(flow, step, loss, noise, grid_points, grid_size):
    samples = flow(noise)[0]
    log_density = None
    if grid_points is not None:
        log_density = flow.log_prob(grid_points).reshape((grid_size,) * grid_points.shape[1])
    state = {k: v.detach().clone() for k, v in flow.state_dict().items()}
    return Snapshot(step, loss, samples, log_density, state)


def _padded_bounds(data, margin=0.15):
    lo, hi = data.min(0).values, data.max(0).values
    pad = (hi - lo) * margin
    return tuple((float(a - p), float(b + p)) for a, b, p in zip(lo, hi, pad))
